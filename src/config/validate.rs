//! Semantic checks of a parsed configuration: ranges, patterns and cross-field rules, as
//! Firehose enforces them, plus Hydrant's own.
//!
//! Every check runs and every problem is reported, each as an [`Issue`] with the full path of
//! the field and a message that says what is wrong, the value given and how to fix it.
//! Features that this Hydrant version does not implement yet are rejected in one place,
//! [`unsupported_features`], so that supporting one means deleting its lines there.

use std::collections::HashMap;
use std::path::Path;

use super::model::{
    BufferingHints, Config, DeliveryStreamConfig, DeliveryStreamType, EncryptionConfig,
    ExtendedS3Config, FsyncSetting, ObjectStoreConfig, S3BackupMode, S3DestinationConfig, Tag,
};
use super::{AuthConfig, Issue};
use crate::naming::check_prefixes;

/// Smallest accepted `storage.segment_bytes`.
pub const MIN_SEGMENT_BYTES: u64 = 4096;
/// Largest accepted `storage.fsync.interval_ms`.
pub const MAX_FSYNC_INTERVAL_MS: u64 = 60_000;
/// Range of `hydrant.shards`.
pub const SHARDS_RANGE: std::ops::RangeInclusive<u32> = 1..=64;
/// Range of `BufferingHints.SizeInMBs` for S3 (Firehose).
pub const SIZE_IN_MBS_RANGE: std::ops::RangeInclusive<u32> = 1..=128;
/// Range of `BufferingHints.IntervalInSeconds` for S3 (Firehose).
pub const INTERVAL_IN_SECONDS_RANGE: std::ops::RangeInclusive<u32> = 0..=900;
/// Largest accepted `shutdown_timeout_seconds`.
pub const MAX_SHUTDOWN_TIMEOUT_SECONDS: u64 = 3600;
/// Most tags a stream may have (Firehose).
pub const MAX_TAGS: usize = 50;

/// Checks a whole configuration and returns every problem found (empty when it is valid).
///
/// To check a change (for example a stream created through the API), validate the config as
/// it would be after the change: that also catches a duplicate stream name.
pub fn validate(config: &Config) -> Vec<Issue> {
    let mut issues = Vec::new();
    check_server(config, &mut issues);
    config.limits.check(config, &mut issues);
    check_auth(config, &mut issues);
    super::api_streams::check(config, &mut issues);
    check_tls(config, &mut issues);
    issues.extend(config.http.issues());
    check_admin_listen(config, &mut issues);
    for (name, store) in &config.object_stores {
        check_object_store(name, store, &mut issues);
    }

    let mut first_use: HashMap<&str, usize> = HashMap::new();
    for (i, stream) in config.delivery_streams.iter().enumerate() {
        let path = format!("delivery_streams[{i}]");
        let name = stream.delivery_stream_name.as_str();
        if let Some(first) = first_use.get(name) {
            issues.push(Issue::new(
                format!("{path}.DeliveryStreamName"),
                format!(
                    "{name:?} is already the name of delivery_streams[{first}]; stream names \
                     must be unique, rename one of them"
                ),
            ));
        } else {
            first_use.insert(name, i);
        }
        check_stream(config, stream, &path, &mut issues);
        check_encryption(config, stream, &path, &mut issues);
        check_conversion(stream, &path, &mut issues);
        check_processing(config, stream, &path, &mut issues);
    }

    issues.extend(unsupported_features(config));
    issues
}

/// `RetryOptions.DurationInSeconds`: 0..=7200 (Firehose).
pub(super) fn check_retry(
    retry: Option<crate::config::RetryOptions>,
    path: &str,
    issues: &mut Vec<Issue>,
) {
    if let Some(d) = retry.and_then(|r| r.duration_in_seconds) {
        if d > 7200 {
            issues.push(Issue::new(
                format!("{path}.RetryOptions.DurationInSeconds"),
                format!("must be 0..=7200 seconds, got {d}"),
            ));
        }
    }
}

/// A destination's own `BufferingHints` (search: 1-100 MiB; both: 0-900 s).
pub(super) fn check_hints(
    hints: Option<BufferingHints>,
    sizes: std::ops::RangeInclusive<u32>,
    path: &str,
    issues: &mut Vec<Issue>,
) {
    let Some(hints) = hints else { return };
    if let Some(size) = hints.size_in_mbs {
        if !sizes.contains(&size) {
            issues.push(Issue::new(
                format!("{path}.BufferingHints.SizeInMBs"),
                format!("must be {}..={} MiB here, got {size}", sizes.start(), sizes.end()),
            ));
        }
    }
    if let Some(interval) = hints.interval_in_seconds {
        if !INTERVAL_IN_SECONDS_RANGE.contains(&interval) {
            issues.push(Issue::new(
                format!("{path}.BufferingHints.IntervalInSeconds"),
                format!("must be 0..=900 seconds, got {interval}"),
            ));
        }
    }
}

/// A key ring block (`hydrant.encryption`, `storage.encryption`) at `path`: its fields, then
/// its key files. True when it is usable.
fn check_key_ring(
    encryption: &crate::codec::encryption::EncryptionConfig,
    path: &str,
    issues: &mut Vec<Issue>,
) -> bool {
    let problems = encryption.validate();
    if !problems.is_empty() {
        for (field, message) in problems {
            issues.push(Issue::new(format!("{path}.{field}"), message));
        }
        return false;
    }
    // Key files are resolved against the config's directory by now: load them.
    if let Err(e) = encryption.key_ring(Path::new("/")) {
        issues.push(Issue::new(format!("{path}.keys"), e.to_string()));
        return false;
    }
    true
}

/// Encryption settings: client-side keys, log encryption at rest, server-side encryption.
fn check_encryption(
    config: &Config,
    stream: &DeliveryStreamConfig,
    path: &str,
    issues: &mut Vec<Issue>,
) {
    let hydrant = &stream.hydrant;
    let own_keys_ok = match &hydrant.encryption {
        Some(encryption) => {
            check_key_ring(encryption, &format!("{path}.hydrant.encryption"), issues)
        }
        None => true,
    };
    let server_keys_ok =
        config.storage.encryption.as_ref().is_none_or(|e| e.key_ring(Path::new("/")).is_ok());
    let input = stream.delivery_stream_encryption_configuration_input.as_ref();
    if input.is_some() && own_keys_ok && server_keys_ok {
        if let Err(e) = config.log_keys(stream, input) {
            issues.push(Issue::new(format!("{path}.{}", e.field()), e.to_string()));
        }
    }
    let kms = [
        &stream
            .extended_s3_destination_configuration
            .as_ref()
            .and_then(|s| s.encryption_configuration.clone()),
        &stream
            .s3_destination_configuration
            .as_ref()
            .and_then(|s| s.encryption_configuration.clone()),
    ]
    .into_iter()
    .any(|e| e.as_ref().is_some_and(|e| e.kms_encryption_config.is_some()));
    let sse_s3 = hydrant.server_side_encryption.is_some();
    if kms && sse_s3 {
        issues.push(Issue::new(
            format!("{path}.hydrant.server_side_encryption"),
            "choose one server-side encryption: KMSEncryptionConfig (SSE-KMS) or hydrant.server_side_encryption: \
             AES256 (SSE-S3), not both",
        ));
    }
    let local = matches!(
        config.object_stores.get(&hydrant.object_store),
        Some(ObjectStoreConfig::Local { .. })
    );
    if (kms || sse_s3) && local {
        issues.push(Issue::new(
            format!("{path}.hydrant.object_store"),
            format!(
                "server-side encryption needs an s3 object store, but {:?} is a local directory; use \
                 hydrant.encryption for client-side encryption instead",
                hydrant.object_store
            ),
        ));
    }
}

/// `ProcessingConfiguration` (processors, the Lambda transform) and dynamic partitioning.
fn check_processing(
    config: &Config,
    stream: &DeliveryStreamConfig,
    path: &str,
    issues: &mut Vec<Issue>,
) {
    let Some((block, processing)) = processing_block(stream) else { return };
    let ext_path = format!("{path}.{block}");
    let mut lambda = None;
    if let Some(processing) = processing {
        match crate::processors::Processors::from_config(processing) {
            Ok(processors) => lambda = processors.lambda().cloned(),
            Err(problems) => {
                for (field, message) in problems {
                    issues.push(Issue::new(
                        format!("{ext_path}.ProcessingConfiguration.{field}"),
                        message,
                    ));
                }
            }
        }
    }
    let enabled = processing.and_then(|p| p.enabled).unwrap_or(false);
    if let Some(spec) = lambda.filter(|_| enabled) {
        // Streams created through the API are held to DefinedBy::Api by their own policy
        // (control::api_policy) before they get here.
        if let Err(message) = crate::wasm_host::resolve_module(
            &spec.lambda_arn,
            &config.functions,
            &config.base_dir,
            crate::wasm_host::DefinedBy::ConfigFile,
        ) {
            issues.push(Issue::new(
                format!("{ext_path}.ProcessingConfiguration.Processors"),
                message.to_string(),
            ));
        }
    }
    if let Some(Err(message)) = stream.hydrant.transform.map(|t| t.validate()) {
        // `field: what is wrong`
        let (field, message) = message.split_once(": ").unwrap_or(("", &message));
        issues.push(Issue::new(format!("{path}.hydrant.transform.{field}"), message));
    }
    if stream.hydrant.max_partitions == 0 {
        issues.push(Issue::new(
            format!("{path}.hydrant.max_partitions"),
            "must be at least 1, got 0",
        ));
    }
}

/// The destination block that holds the stream's `ProcessingConfiguration`, and that block.
pub(crate) fn processing_block(
    stream: &DeliveryStreamConfig,
) -> Option<(&'static str, Option<&crate::config::ProcessingConfig>)> {
    stream.destination().processing()
}

/// `DataFormatConversionConfiguration` (JSON to Parquet) with its `hydrant.schema`.
fn check_conversion(stream: &DeliveryStreamConfig, path: &str, issues: &mut Vec<Issue>) {
    let Some(ext) = &stream.extended_s3_destination_configuration else { return };
    let ext_path = format!("{path}.ExtendedS3DestinationConfiguration");
    let Some(conversion) = &ext.data_format_conversion_configuration else {
        if stream.hydrant.schema.is_some() {
            issues.push(Issue::new(
                format!("{path}.hydrant.schema"),
                "a schema is only used by DataFormatConversionConfiguration; add one or remove the schema",
            ));
        }
        return;
    };
    for (field, message) in
        crate::codec::parquet::validate(conversion, stream.hydrant.schema.as_ref())
    {
        let full = if field.starts_with(crate::codec::parquet::config::SCHEMA_PATH) {
            format!("{path}.{field}")
        } else {
            format!("{ext_path}.DataFormatConversionConfiguration.{field}")
        };
        issues.push(Issue::new(full.trim_end_matches('.').to_string(), message));
    }
    if conversion.is_enabled()
        && ext.compression_format != crate::config::CompressionFormat::Uncompressed
    {
        issues.push(Issue::new(
            format!("{ext_path}.CompressionFormat"),
            format!(
                "must be UNCOMPRESSED when DataFormatConversionConfiguration is enabled (got {}); \
                 compress inside Parquet with OutputFormatConfiguration.Serializer.ParquetSerDe.Compression",
                ext.compression_format
            ),
        ));
    }
}

/// NOT YET IMPLEMENTED IN THIS HYDRANT VERSION.
///
/// Settings that are valid Firehose (or planned Hydrant) configuration but that this version
/// cannot honour yet. They are rejected instead of silently ignored, so nobody believes their
/// data is being compressed, transformed, partitioned, backed up or encrypted when it is not.
/// When a feature lands, delete its lines here.
pub fn unsupported_features(config: &Config) -> Vec<Issue> {
    let mut issues = Vec::new();
    let mut not_yet = |path: String, message: String| issues.push(Issue::new(path, message));

    for (i, stream) in config.delivery_streams.iter().enumerate() {
        let path = format!("delivery_streams[{i}]");

        if let Some(t) = stream.delivery_stream_type {
            if t != DeliveryStreamType::DirectPut {
                not_yet(
                    format!("{path}.DeliveryStreamType"),
                    format!(
                        "{} is not supported; Hydrant streams receive records through \
                         PutRecord/PutRecordBatch only: use DirectPut or leave \
                         DeliveryStreamType out",
                        t.as_firehose_str()
                    ),
                );
            }
        }
    }
    issues
}

/// `auth:` with `mode: sigv4`: at least one key, unique ids that fit in a SigV4 `Credential=`,
/// non-empty secrets, and allow-lists of valid stream names.
fn check_auth(config: &Config, issues: &mut Vec<Issue>) {
    let AuthConfig::Sigv4 { credentials } = &config.auth else { return };
    if credentials.is_empty() {
        issues.push(Issue::new(
            "auth.credentials",
            "sigv4 needs at least one access key: add credentials: [{ access_key_id: ..., \
             secret_access_key: ${HYDRANT_SECRET} }]",
        ));
    }
    let mut first_use: HashMap<&str, usize> = HashMap::new();
    for (i, credential) in credentials.iter().enumerate() {
        let path = format!("auth.credentials[{i}]");
        let id = credential.access_key_id.as_str();
        if id.is_empty()
            || !id.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'/' | b',' | b'='))
        {
            issues.push(Issue::new(
                format!("{path}.access_key_id"),
                format!(
                    "{id:?} cannot appear in a SigV4 Credential; use letters and digits, e.g. \
                     AKIAHYDRANTEXAMPLE1"
                ),
            ));
        } else if let Some(first) = first_use.insert(id, i) {
            issues.push(Issue::new(
                format!("{path}.access_key_id"),
                format!(
                    "{id:?} is already the access key of auth.credentials[{first}]; access key \
                     ids must be unique"
                ),
            ));
        }
        if credential.secret_access_key.is_empty() {
            // Never echo the value, not even an empty one's surroundings.
            issues.push(Issue::new(
                format!("{path}.secret_access_key"),
                "is empty; give the secret, preferably as ${ENV_VAR}",
            ));
        }
        if let Some(streams) = &credential.streams {
            if streams.is_empty() {
                issues.push(Issue::new(
                    format!("{path}.streams"),
                    "is empty, so this key could not use any stream; list the streams it may \
                     use, or remove `streams` to allow every stream",
                ));
            }
            for (j, name) in streams.iter().enumerate() {
                if !crate::names::is_valid_stream_name(name) {
                    issues.push(Issue::new(
                        format!("{path}.streams[{j}]"),
                        format!(
                            "{name:?} is not a delivery stream name; names are 1-64 characters \
                             of letters, digits, `_`, `.` and `-`"
                        ),
                    ));
                }
            }
        }
        if let Some(actions) = &credential.actions {
            if actions.is_empty() {
                issues.push(Issue::new(
                    format!("{path}.actions"),
                    "is empty, so this key could call nothing; list what it may call (e.g. \
                     [\"firehose:Put*\"]), or remove `actions` for the default (PutRecord, \
                     PutRecordBatch, DescribeDeliveryStream, ListDeliveryStreams)",
                ));
            }
            for (j, action) in actions.iter().enumerate() {
                if let Err(message) = crate::operations::ActionPattern::parse(action) {
                    issues.push(Issue::new(format!("{path}.actions[{j}]"), message));
                }
            }
        }
    }
}

/// `tls:`: both PEM files load and the key belongs to the certificate.
fn check_tls(config: &Config, issues: &mut Vec<Issue>) {
    let Some(tls) = &config.tls else { return };
    for e in crate::tls::problems(tls) {
        issues.push(Issue::new(e.field(), e.to_string()));
    }
}

/// `admin_listen`: a port of its own, not the API's.
fn check_admin_listen(config: &Config, issues: &mut Vec<Issue>) {
    let Some(admin) = config.admin_listen else { return };
    if admin == config.listen {
        issues.push(Issue::new(
            "admin_listen",
            format!(
                "{admin} is also `listen`; give the admin listener a port of its own (e.g. \
                 127.0.0.1:4574), or leave admin_listen out to serve /metrics and /readyz on \
                 `listen`"
            ),
        ));
    }
}

fn check_server(config: &Config, issues: &mut Vec<Issue>) {
    if let Some(encryption) = &config.storage.encryption {
        check_key_ring(encryption, "storage.encryption", issues);
    }
    if config.data_dir.as_os_str().is_empty() {
        issues.push(Issue::new("data_dir", "is empty; give a directory, e.g. ./hydrant-data"));
    }
    let region = &config.region;
    if region.is_empty()
        || !region.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        issues.push(Issue::new(
            "region",
            format!(
                "{region:?} is not a valid region name; use letters, digits and `-`, e.g. \
                 us-east-1"
            ),
        ));
    }
    let account = &config.account_id;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        issues.push(Issue::new(
            "account_id",
            format!(
                "{account:?} is not an AWS account id; it must be exactly 12 digits, quoted so \
                 YAML keeps leading zeros, e.g. \"000000000000\""
            ),
        ));
    }

    if config.shutdown_timeout_seconds > MAX_SHUTDOWN_TIMEOUT_SECONDS {
        issues.push(Issue::new(
            "shutdown_timeout_seconds",
            format!(
                "must be at most {MAX_SHUTDOWN_TIMEOUT_SECONDS} (one hour), got {}; records not \
                 delivered by the deadline stay in the log for the next start anyway",
                config.shutdown_timeout_seconds
            ),
        ));
    }

    let storage = &config.storage;
    if let FsyncSetting::Interval { interval_ms } = storage.fsync {
        if !(1..=MAX_FSYNC_INTERVAL_MS).contains(&interval_ms) {
            issues.push(Issue::new(
                "storage.fsync.interval_ms",
                format!(
                    "must be 1..={MAX_FSYNC_INTERVAL_MS}, got {interval_ms}; or use \
                     `fsync: always`"
                ),
            ));
        }
    }
    if storage.segment_bytes < MIN_SEGMENT_BYTES {
        issues.push(Issue::new(
            "storage.segment_bytes",
            format!(
                "must be at least {MIN_SEGMENT_BYTES} bytes, got {}; the default is 64MiB",
                storage.segment_bytes
            ),
        ));
    }
    if let Some(max) = storage.max_bytes {
        if max < storage.segment_bytes {
            issues.push(Issue::new(
                "storage.max_bytes",
                format!(
                    "{max} bytes is less than one log segment (segment_bytes = {}); raise \
                     max_bytes or lower segment_bytes",
                    storage.segment_bytes
                ),
            ));
        }
    }
}

fn check_object_store(name: &str, store: &ObjectStoreConfig, issues: &mut Vec<Issue>) {
    let path = format!("object_stores.{name}");
    if name.is_empty() {
        issues.push(Issue::new(
            "object_stores",
            "an object store has an empty name; give it a name such as `minio`",
        ));
    }
    match store {
        ObjectStoreConfig::Local { root } => {
            if root.as_os_str().is_empty() {
                issues.push(Issue::new(
                    format!("{path}.root"),
                    "is empty; give the directory that holds the buckets",
                ));
            }
        }
        ObjectStoreConfig::S3 {
            endpoint,
            region,
            access_key_id,
            secret_access_key,
            allow_http,
            virtual_hosted_style: _,
        } => {
            if let Some(endpoint) = endpoint {
                let host =
                    endpoint.strip_prefix("https://").or_else(|| endpoint.strip_prefix("http://"));
                match host {
                    Some(host) if !host.is_empty() && !host.starts_with('/') => {
                        if endpoint.starts_with("http://") && !allow_http {
                            issues.push(Issue::new(
                                format!("{path}.endpoint"),
                                format!(
                                    "{endpoint:?} is plain http but allow_http is false; set \
                                     allow_http: true (e.g. for a local MinIO) or use https://"
                                ),
                            ));
                        }
                    }
                    _ => issues.push(Issue::new(
                        format!("{path}.endpoint"),
                        format!(
                            "{endpoint:?} is not an http:// or https:// URL; write e.g. \
                             http://127.0.0.1:9000, or leave endpoint out for AWS S3"
                        ),
                    )),
                }
            }
            for (field, value) in [
                ("region", region),
                ("access_key_id", access_key_id),
                ("secret_access_key", secret_access_key),
            ] {
                if value.as_deref() == Some("") {
                    issues.push(Issue::new(
                        format!("{path}.{field}"),
                        "is empty (an environment variable set to an empty value?); give a \
                         value or leave the field out",
                    ));
                }
            }
            match (access_key_id.is_some(), secret_access_key.is_some()) {
                (true, false) => issues.push(Issue::new(
                    format!("{path}.secret_access_key"),
                    "is missing while access_key_id is set; give both keys, or neither to use \
                     the AWS credential chain",
                )),
                (false, true) => issues.push(Issue::new(
                    format!("{path}.access_key_id"),
                    "is missing while secret_access_key is set; give both keys, or neither to \
                     use the AWS credential chain",
                )),
                _ => {}
            }
        }
    }
}

fn check_stream(
    config: &Config,
    stream: &DeliveryStreamConfig,
    path: &str,
    issues: &mut Vec<Issue>,
) {
    let name = &stream.delivery_stream_name;
    let name_len = name.chars().count();
    if !(1..=64).contains(&name_len)
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        issues.push(Issue::new(
            format!("{path}.DeliveryStreamName"),
            format!(
                "{name:?} is not a valid stream name; use 1 to 64 characters from a-z A-Z 0-9 \
                 _ . -"
            ),
        ));
    }

    match stream.destination_count() {
        0 => issues.push(Issue::new(
            path,
            "has no destination; add an ExtendedS3DestinationConfiguration block with at \
             least a BucketARN (or a RedshiftDestinationConfiguration, \
             AmazonopensearchserviceDestinationConfiguration, \
             ElasticsearchDestinationConfiguration or HttpEndpointDestinationConfiguration)",
        )),
        1 => {}
        _ => issues.push(Issue::new(
            path,
            "has more than one destination block; a stream delivers to exactly one \
             destination, keep one (for S3, preferably ExtendedS3DestinationConfiguration)",
        )),
    }
    // Warehouse, search and HTTP destinations: their own fields and their S3Configuration.
    stream.destination().check(config, stream, path, issues);
    if let Some(ext) = &stream.extended_s3_destination_configuration {
        check_extended_s3(ext, &format!("{path}.ExtendedS3DestinationConfiguration"), issues);
    }
    if let Some(s3) = &stream.s3_destination_configuration {
        check_s3_destination(s3, &format!("{path}.S3DestinationConfiguration"), issues);
    }

    check_tags(&stream.tags, path, issues);

    let store = &stream.hydrant.object_store;
    if !config.object_stores.contains_key(store) {
        let known: Vec<&str> = config.object_stores.keys().map(String::as_str).collect();
        issues.push(Issue::new(
            format!("{path}.hydrant.object_store"),
            format!(
                "there is no object store named {store:?}; defined: {}; add it under \
                 object_stores or use one of these",
                if known.is_empty() { "none".to_owned() } else { known.join(", ") }
            ),
        ));
    }
    let shards = stream.hydrant.shards;
    if !SHARDS_RANGE.contains(&shards) {
        issues.push(Issue::new(
            format!("{path}.hydrant.shards"),
            format!("must be {}..={}, got {shards}", SHARDS_RANGE.start(), SHARDS_RANGE.end()),
        ));
    }
}

/// Checks of the members that `ExtendedS3DestinationConfiguration` shares with
/// `S3DestinationConfiguration`.
struct CommonS3<'a> {
    role_arn: Option<&'a str>,
    bucket_arn: &'a str,
    prefix: Option<&'a str>,
    error_output_prefix: Option<&'a str>,
    buffering_hints: Option<&'a BufferingHints>,
    encryption: Option<&'a EncryptionConfig>,
    dynamic_partitioning: bool,
}

fn check_common(c: CommonS3<'_>, path: &str, issues: &mut Vec<Issue>) {
    if let Some(role) = c.role_arn {
        if !is_role_arn(role) {
            issues.push(Issue::new(
                format!("{path}.RoleARN"),
                format!(
                    "{role:?} is not an IAM role ARN; write arn:aws:iam::<12-digit account>:role/<name>, \
                     or leave RoleARN out (Hydrant does not use it)"
                ),
            ));
        }
    }
    if !is_bucket_arn(c.bucket_arn) {
        issues.push(Issue::new(
            format!("{path}.BucketARN"),
            format!(
                "{:?} is not an S3 bucket ARN; write arn:aws:s3:::<bucket>, the bucket being 1 \
                 to 255 characters from a-z A-Z 0-9 _ . -",
                c.bucket_arn
            ),
        ));
    } else if matches!(super::model::bucket_from_arn(c.bucket_arn), "." | "..") {
        issues.push(Issue::new(
            format!("{path}.BucketARN"),
            format!(
                "{:?} names the bucket `.` or `..`, which is not a bucket; use a real bucket name",
                c.bucket_arn
            ),
        ));
    }

    if let Err(problems) = check_prefixes(c.prefix, c.error_output_prefix, c.dynamic_partitioning) {
        for problem in problems {
            issues.push(Issue::new(format!("{path}.{}", problem.field()), problem.to_string()));
        }
    }

    if let Some(hints) = c.buffering_hints {
        let hints_path = format!("{path}.BufferingHints");
        match (hints.size_in_mbs, hints.interval_in_seconds) {
            (Some(_), None) => issues.push(Issue::new(
                format!("{hints_path}.IntervalInSeconds"),
                "is required because SizeInMBs is set (Firehose: \"If you specify a value for \
                 SizeInMBs, you must also specify a value for IntervalInSeconds, and vice \
                 versa\"); add IntervalInSeconds: 300 for the default",
            )),
            (None, Some(_)) => issues.push(Issue::new(
                format!("{hints_path}.SizeInMBs"),
                "is required because IntervalInSeconds is set (Firehose: \"If you specify a \
                 value for SizeInMBs, you must also specify a value for IntervalInSeconds, and \
                 vice versa\"); add SizeInMBs: 5 for the default",
            )),
            _ => {}
        }
        if let Some(size) = hints.size_in_mbs {
            if !SIZE_IN_MBS_RANGE.contains(&size) {
                issues.push(Issue::new(
                    format!("{hints_path}.SizeInMBs"),
                    format!(
                        "must be {}..={}, got {size}",
                        SIZE_IN_MBS_RANGE.start(),
                        SIZE_IN_MBS_RANGE.end()
                    ),
                ));
            }
        }
        if let Some(interval) = hints.interval_in_seconds {
            if !INTERVAL_IN_SECONDS_RANGE.contains(&interval) {
                issues.push(Issue::new(
                    format!("{hints_path}.IntervalInSeconds"),
                    format!(
                        "must be {}..={}, got {interval}",
                        INTERVAL_IN_SECONDS_RANGE.start(),
                        INTERVAL_IN_SECONDS_RANGE.end()
                    ),
                ));
            }
        }
    }

    if let Some(enc) = c.encryption {
        if enc.no_encryption_config.is_some() && enc.kms_encryption_config.is_some() {
            issues.push(Issue::new(
                format!("{path}.EncryptionConfiguration"),
                "has both NoEncryptionConfig and KMSEncryptionConfig; keep one",
            ));
        }
    }
}

pub(super) fn check_s3_destination(s3: &S3DestinationConfig, path: &str, issues: &mut Vec<Issue>) {
    check_common(
        CommonS3 {
            role_arn: s3.role_arn.as_deref(),
            bucket_arn: &s3.bucket_arn,
            prefix: s3.prefix.as_deref(),
            error_output_prefix: s3.error_output_prefix.as_deref(),
            buffering_hints: s3.buffering_hints.as_ref(),
            encryption: s3.encryption_configuration.as_ref(),
            dynamic_partitioning: false,
        },
        path,
        issues,
    );
}

fn check_extended_s3(ext: &ExtendedS3Config, path: &str, issues: &mut Vec<Issue>) {
    check_common(
        CommonS3 {
            role_arn: ext.role_arn.as_deref(),
            bucket_arn: &ext.bucket_arn,
            prefix: ext.prefix.as_deref(),
            error_output_prefix: ext.error_output_prefix.as_deref(),
            buffering_hints: ext.buffering_hints.as_ref(),
            encryption: ext.encryption_configuration.as_ref(),
            dynamic_partitioning: ext.dynamic_partitioning_enabled(),
        },
        path,
        issues,
    );

    if let Some(processing) = &ext.processing_configuration {
        for (p, processor) in processing.processors.iter().enumerate() {
            for (k, parameter) in processor.parameters.iter().enumerate() {
                let value = &parameter.parameter_value;
                let len = value.chars().count();
                if value.trim().is_empty() || len > 5120 {
                    issues.push(Issue::new(
                        format!(
                            "{path}.ProcessingConfiguration.Processors[{p}].Parameters[{k}].ParameterValue"
                        ),
                        format!(
                            "must be 1 to 5120 characters and not blank, got {} characters \
                             {:?}; give the {:?} value",
                            len,
                            truncate(value, 40),
                            parameter.parameter_name
                        ),
                    ));
                }
            }
        }
    }

    if let Some(retry) = ext
        .dynamic_partitioning_configuration
        .as_ref()
        .and_then(|d| d.retry_options.as_ref())
        .and_then(|r| r.duration_in_seconds)
    {
        if retry > 7200 {
            issues.push(Issue::new(
                format!("{path}.DynamicPartitioningConfiguration.RetryOptions.DurationInSeconds"),
                format!("must be 0..=7200, got {retry}"),
            ));
        }
    }

    if let Some(ext_text) = &ext.file_extension {
        let valid = ext_text.is_empty()
            || (ext_text.len() >= 2
                && ext_text.chars().count() <= 128
                && ext_text.starts_with('.')
                && ext_text[1..].chars().all(|c| {
                    c.is_ascii_digit()
                        || c.is_ascii_lowercase()
                        || matches!(c, '!' | '-' | '_' | '.' | '*' | '\'' | '(' | ')')
                }));
        if !valid {
            issues.push(Issue::new(
                format!("{path}.FileExtension"),
                format!(
                    "{ext_text:?} is not a valid file extension; write a dot followed by up to \
                     127 lowercase letters, digits or !-_.*'(), e.g. .json.gz"
                ),
            ));
        }
    }

    if let Some(tz) = &ext.custom_time_zone {
        if !tz.is_empty() {
            let firehose_pattern = tz.chars().count() <= 50
                && tz.chars().all(|c| c.is_ascii_alphabetic() || c == '/' || c == '_');
            let known = tz.parse::<chrono_tz::Tz>().is_ok();
            if !known {
                issues.push(Issue::new(
                    format!("{path}.CustomTimeZone"),
                    format!(
                        "{tz:?} is not a known IANA time zone name; use a name such as UTC, \
                         Europe/Berlin or Asia/Tokyo (case-sensitive), or leave it out for UTC"
                    ),
                ));
            } else if !firehose_pattern {
                issues.push(Issue::new(
                    format!("{path}.CustomTimeZone"),
                    format!(
                        "{tz:?} is a time zone, but Firehose accepts only names of up to 50 \
                         letters, `/` and `_`; pick an equivalent zone such as Asia/Tokyo"
                    ),
                ));
            }
        }
    }

    if let Some(backup) = &ext.s3_backup_configuration {
        check_s3_destination(backup, &format!("{path}.S3BackupConfiguration"), issues);
    } else if ext.s3_backup_mode == S3BackupMode::Enabled {
        issues.push(Issue::new(
            format!("{path}.S3BackupConfiguration"),
            "is required because S3BackupMode is Enabled; add it, or set S3BackupMode: Disabled",
        ));
    }
}

/// Checks a stream's tags (count, key and value rules); `path` is the stream's.
pub(crate) fn check_tags(tags: &[Tag], path: &str, issues: &mut Vec<Issue>) {
    if tags.len() > MAX_TAGS {
        issues.push(Issue::new(
            format!("{path}.Tags"),
            format!(
                "has {} tags, at most {MAX_TAGS} are allowed; remove {}",
                tags.len(),
                tags.len() - MAX_TAGS
            ),
        ));
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, tag) in tags.iter().enumerate() {
        let key = &tag.key;
        let key_path = format!("{path}.Tags[{i}].Key");
        let len = key.chars().count();
        if !(1..=128).contains(&len) {
            issues.push(Issue::new(
                &key_path,
                format!("must be 1 to 128 characters, got {len} ({key:?})"),
            ));
        }
        if key.starts_with("aws:") {
            issues.push(Issue::new(
                &key_path,
                format!("{key:?} starts with `aws:`, which is reserved; choose another key"),
            ));
        }
        if !key.chars().all(is_tag_char) {
            issues.push(Issue::new(
                &key_path,
                format!(
                    "{key:?} has characters other than letters, digits, spaces and _ . : / = + - \
                     @ %; remove them"
                ),
            ));
        }
        if let Some(first) = seen.insert(key, i) {
            issues.push(Issue::new(
                &key_path,
                format!("{key:?} is already used by Tags[{first}]; tag keys must be unique"),
            ));
        }
        if let Some(value) = &tag.value {
            let value_path = format!("{path}.Tags[{i}].Value");
            let len = value.chars().count();
            if len > 256 {
                issues.push(Issue::new(
                    &value_path,
                    format!("is {len} characters long, at most 256 are allowed; shorten it"),
                ));
            }
            if !value.chars().all(is_tag_char) {
                issues.push(Issue::new(
                    &value_path,
                    format!(
                        "{:?} has characters other than letters, digits, spaces and _ . : / = \
                         + - @ %; remove them",
                        truncate(value, 40)
                    ),
                ));
            }
        }
    }
}

/// `[\p{L}\p{Z}\p{N}_.:/=+\-@%]` from the service model's TagKey / TagValue patterns.
fn is_tag_char(c: char) -> bool {
    c.is_alphabetic()
        || c.is_numeric()
        || (c.is_whitespace() && !c.is_control())
        || matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@' | '%')
}

/// `arn:.*:iam::\d{12}:role/[a-zA-Z_0-9+=,.@\-_/]+`, 1 to 512 characters.
fn is_role_arn(arn: &str) -> bool {
    if arn.len() > 512 {
        return false;
    }
    let Some(rest) = arn.strip_prefix("arn:") else {
        return false;
    };
    // The account and role name cannot contain ':', so the last `:iam::` is the one.
    let Some(at) = rest.rfind(":iam::") else {
        return false;
    };
    let tail = &rest[at + ":iam::".len()..];
    let Some((account, role)) = tail.split_at_checked(12) else {
        return false;
    };
    let Some(name) = role.strip_prefix(":role/") else {
        return false;
    };
    account.bytes().all(|b| b.is_ascii_digit())
        && !name.is_empty()
        && name.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-' | '/')
        })
}

/// `arn:.*:s3:::[\w.\-]{1,255}`, 1 to 2048 characters.
fn is_bucket_arn(arn: &str) -> bool {
    if arn.len() > 2048 {
        return false;
    }
    let Some(rest) = arn.strip_prefix("arn:") else {
        return false;
    };
    // The bucket cannot contain ':', so the last `:s3:::` is the one.
    let Some(at) = rest.rfind(":s3:::") else {
        return false;
    };
    let bucket = &rest[at + ":s3:::".len()..];
    (1..=255).contains(&bucket.len())
        && bucket.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_owned()
    } else {
        let mut t: String = text.chars().take(max_chars).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_follow_the_service_model_pattern() {
        assert!(is_role_arn("arn:aws:iam::123456789012:role/fh"));
        assert!(is_role_arn("arn:aws-cn:iam::123456789012:role/path/to/fh-role_1"));
        assert!(!is_role_arn("arn:aws:iam::12345678901:role/fh"));
        assert!(!is_role_arn("arn:aws:iam::123456789012:user/fh"));
        assert!(!is_role_arn("arn:aws:iam::123456789012:role/"));
        assert!(!is_role_arn("role/fh"));
    }

    #[test]
    fn bucket_arns_follow_the_service_model_pattern() {
        assert!(is_bucket_arn("arn:aws:s3:::raw"));
        assert!(is_bucket_arn("arn:aws-us-gov:s3:::my.bucket-1_x"));
        assert!(!is_bucket_arn("arn:aws:s3:::"));
        assert!(!is_bucket_arn("arn:aws:s3:::a/b"));
        assert!(!is_bucket_arn("s3://raw"));
        assert!(!is_bucket_arn(&format!("arn:aws:s3:::{}", "a".repeat(256))));
    }

    #[test]
    fn tag_characters_allow_letters_digits_spaces_and_the_listed_symbols() {
        assert!("team Data_1.:/=+-@%é".chars().all(is_tag_char));
        assert!(!"a#b".chars().all(is_tag_char));
        assert!(!"a\tb".chars().all(is_tag_char));
    }
}
