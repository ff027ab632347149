//! The warehouse: stage the object in S3, then COPY it (PostgreSQL or Redshift).

mod sink;

pub use sink::{Loader, WarehouseSink};

use std::sync::Arc;

use hydrant_destinations::warehouse::{
    CredentialsClause, PostgresLoader, RedshiftLoader, Target as LoadTarget, WarehouseSettings,
};

use super::{Descriptor, DestinationPlan, Endpoint, Kept, PlanError, S3Output, Secret, Target};
use crate::config::{
    CompressionFormat, DestinationKind, Issue, RedshiftConfig, RetryOptions, S3BackupMode,
};
use crate::delivery::sink::Sink;

/// `!{firehose:error-output-type}` of rows the warehouse refused.
pub const REDSHIFT_FAILED: &str = "redshift-failed";

pub const DESCRIPTOR: Descriptor = Descriptor {
    kind: DestinationKind::Redshift,
    update_members: &["RedshiftDestinationUpdate"],
    description_member: "RedshiftDestinationDescription",
    metric: "redshift",
    log_name: "warehouse",
    error_output_type: Some(REDSHIFT_FAILED),
    secret: Some(Secret { endpoint: &["/ClusterJDBCURL"], kept: Kept::InBlock("/Password") }),
    switchable: true,
};

/// A checked warehouse destination.
#[derive(Debug)]
pub(super) struct WarehousePlan {
    settings: WarehouseSettings,
    /// `RoleARN`, for a Redshift target's `CREDENTIALS`.
    role_arn: String,
    /// The staged objects are GZIP.
    gzip: bool,
    /// `S3Configuration.Prefix` (no expressions).
    prefix: String,
}

/// Checks the fields of the block at `block` (its path) other than its `S3Configuration`
/// (which has the S3 rules, checked by `plan`), and what the warehouse asks of that bucket;
/// the plan when its settings are valid.
pub(super) fn check(
    r: &RedshiftConfig,
    block: &str,
    issues: &mut Vec<Issue>,
) -> Option<WarehousePlan> {
    let mut plan = None;
    let mut push = |field: &str, message: String| {
        issues.push(Issue::new(format!("{block}.{field}"), message));
    };
    let gzip = r.s3_configuration.compression_format == CompressionFormat::Gzip;
    match r.settings() {
        Ok(settings) => {
            for (field, message) in settings.check_compression(gzip) {
                push(field, message);
            }
            let redshift = matches!(settings.target, LoadTarget::Redshift { .. });
            if redshift && r.role_arn.is_none() {
                push(
                    "RoleARN",
                    "is required for a jdbc:redshift:// target: Redshift reads the \
                     staged objects with CREDENTIALS 'aws_iam_role=<RoleARN>'"
                        .into(),
                );
            }
            plan = Some(WarehousePlan {
                settings,
                role_arn: r.role_arn.clone().unwrap_or_default(),
                gzip,
                prefix: r.s3_configuration.prefix.clone().unwrap_or_default(),
            });
        }
        Err(errors) => {
            for (field, message) in errors {
                push(field, message);
            }
        }
    }
    let s3 = &r.s3_configuration;
    if !matches!(s3.compression_format, CompressionFormat::Uncompressed | CompressionFormat::Gzip) {
        push(
            "S3Configuration.CompressionFormat",
            format!(
                "{} cannot be loaded by COPY; use UNCOMPRESSED or GZIP (Firehose allows only these two here)",
                s3.compression_format
            ),
        );
    }
    if s3.prefix.as_deref().is_some_and(|p| p.contains("!{")) {
        push(
            "S3Configuration.Prefix",
            "may not contain !{...} expressions for a Redshift destination (Firehose \
             rule); use a plain prefix such as staging/"
                .into(),
        );
    }
    if r.s3_backup_mode == S3BackupMode::Enabled && r.s3_backup_configuration.is_none() {
        push(
            "S3BackupConfiguration",
            "is required when S3BackupMode is Enabled; add a bucket for the source \
             records or set S3BackupMode: Disabled"
                .into(),
        );
    }
    check_retry(r.retry_options, block, issues);
    plan
}

/// `RetryOptions.DurationInSeconds`: 0..=7200 (Firehose).
fn check_retry(retry: Option<RetryOptions>, path: &str, issues: &mut Vec<Issue>) {
    if let Some(d) = retry.and_then(|r| r.duration_in_seconds) {
        if d > 7200 {
            issues.push(Issue::new(
                format!("{path}.RetryOptions.DurationInSeconds"),
                format!("must be 0..=7200 seconds, got {d}"),
            ));
        }
    }
}

impl DestinationPlan for WarehousePlan {
    fn descriptor(&self) -> &'static Descriptor {
        &DESCRIPTOR
    }

    fn build(&self, output: S3Output) -> Result<Arc<dyn Sink>, PlanError> {
        let settings = self.settings.clone();
        let loader = match &settings.target {
            LoadTarget::Postgres(options) => {
                let options = options.clone();
                Loader::Postgres { loader: PostgresLoader::new(settings)?, options }
            }
            LoadTarget::Redshift { .. } => {
                let credentials =
                    CredentialsClause::iam_role(&self.role_arn).map_err(PlanError::Credentials)?;
                let store = output.destination.store().clone();
                let bucket = output.destination.bucket().to_string();
                Loader::Redshift(RedshiftLoader::new(settings, credentials, store, bucket))
            }
        };
        Ok(Arc::new(WarehouseSink {
            gzip: self.gzip,
            prefix: self.prefix.clone(),
            staging: output,
            loader,
        }))
    }
}

/// The hosts (each with its port) and `hostaddr`s of the `ClusterJDBCURL`, when it parses.
pub(super) fn endpoints(block: &RedshiftConfig) -> Vec<Endpoint> {
    use tokio_postgres::config::Host;
    let Ok(settings) = block.settings() else { return Vec::new() };
    let endpoint = |target| Endpoint {
        member: format!("{}.ClusterJDBCURL", DESCRIPTOR.kind.config_member()),
        target,
    };
    let connection = &settings.connection;
    let ports = connection.get_ports();
    // One port applies to every host; otherwise there is one per host (5432 when none).
    let port_of = |i: usize| match ports {
        [] => 5432,
        [one] => *one,
        many => many.get(i).copied().unwrap_or(5432),
    };
    let mut out: Vec<Endpoint> = connection
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| match host {
            Host::Tcp(name) => endpoint(Target::Tcp { host: name.clone(), port: port_of(i) }),
            #[cfg(unix)]
            Host::Unix(_) => endpoint(Target::Unix),
        })
        .collect();
    for (i, addr) in connection.get_hostaddrs().iter().enumerate() {
        out.push(endpoint(Target::Tcp { host: addr.to_string(), port: port_of(i) }));
    }
    out
}
