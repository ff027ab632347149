//! Checking a configuration: ranges, patterns and cross-field rules, as Firehose enforces them,
//! plus Hydrant's own. `config` reads the file into its model; this module decides whether the
//! model can run.
//!
//! [`load`], [`parse`] and [`parse_with_env`] are `config`'s loaders followed by [`check`]
//! ([`validate`], [`DeliveryStreamConfig::normalize`] and each stream's [`StreamPlan`]): the
//! [`ServerPlan`] the server starts from and a reload applies, what `hydrant validate` and the
//! tests use. [`check_stream`] checks one stream defined through the API against the server's
//! configuration ([`api_policy`] first).
//!
//! Every check runs and every problem is reported, each as an [`Issue`] with the full path of
//! the field and a message that says what is wrong, the value given and how to fix it.
//! Features that this Hydrant version does not implement yet are rejected in one place,
//! [`unsupported_features`], so that supporting one means deleting its lines there.
//!
//! One file per concern: the server's settings (`server.rs`), `auth:` (`auth.rs`), a stream
//! (`stream.rs`) and its S3 blocks (`s3.rs`), its source-record backup (`backup.rs`), its
//! other destination blocks (`destinations.rs`; their own fields are checked in the
//! destination's folder), encryption (`encryption.rs`), processing (`processing.rs`), tags
//! (`tags.rs`), and what an API stream may name ([`api_policy`]).

pub mod api_policy;
mod auth;
mod backup;
mod destinations;
mod encryption;
mod processing;
mod s3;
mod server;
mod stream;
mod tags;

#[cfg(test)]
pub(crate) mod tests;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use hydrant_destinations::s3::{ServerSideEncryption, StoreSpec};

use crate::codec::encryption::KeyRing;
use crate::codec::parquet::Column;
use crate::config::{Config, ConfigError, DeliveryStreamConfig, Issue};
use crate::destination::DestinationPlan;
use crate::naming::CheckedPrefixes;
use crate::processors::Processors;

pub use backup::BackupPlan;
pub(crate) use processing::processing_block;
pub use s3::{INTERVAL_IN_SECONDS_RANGE, SIZE_IN_MBS_RANGE};
pub use server::{MAX_FSYNC_INTERVAL_MS, MAX_SHUTDOWN_TIMEOUT_SECONDS, MIN_SEGMENT_BYTES};
pub use stream::{unsupported_features, SHARDS_RANGE};
pub(crate) use tags::check_tags;
pub use tags::MAX_TAGS;

/// Reads, parses, expands, completes ([`crate::config::load`]), validates and normalises the
/// config file at `path`, and plans its streams.
pub fn load(path: &Path) -> Result<ServerPlan, ConfigError> {
    check(crate::config::load(path)?)
}

/// Parses config text ([`crate::config::parse`]), then validates, normalises and plans it.
pub fn parse(yaml: &str, base_dir: &Path) -> Result<ServerPlan, ConfigError> {
    check(crate::config::parse(yaml, base_dir)?)
}

/// [`parse`] with a custom source of `${NAME}` values (tests, or a secrets file).
pub fn parse_with_env(
    yaml: &str,
    base_dir: &Path,
    env: impl Fn(&str) -> Result<String, std::env::VarError>,
) -> Result<ServerPlan, ConfigError> {
    check(crate::config::parse_with_env(yaml, base_dir, env)?)
}

/// Validates a completed configuration (one read by `config`, or the embedded default),
/// normalises its streams ([`DeliveryStreamConfig::normalize`], which needs a valid stream)
/// and returns it with the plan of each of its streams.
pub fn check(mut config: Config) -> Result<ServerPlan, ConfigError> {
    let (issues, plans) = check_all(&config);
    if !issues.is_empty() {
        return Err(ConfigError::Invalid(issues));
    }
    // Every check that makes a part of a plan reports why it could not.
    let Some(plans) = plans.into_iter().collect::<Option<Vec<StreamPlan>>>() else {
        let bug = "passed its checks but could not be planned (a bug in Hydrant)";
        return Err(ConfigError::Invalid(vec![Issue::new("delivery_streams", bug)]));
    };
    // Normalising changes no part of a plan: it moves the deprecated S3 block into the
    // extended one (whose prefixes were planned from it) and fills buffering defaults.
    for stream in &mut config.delivery_streams {
        stream.normalize();
    }
    Ok(ServerPlan { config, streams: plans })
}

/// A checked configuration: the server's settings and the config file's streams (normalised),
/// with each stream's [`StreamPlan`]. What the server starts from and a reload applies.
pub struct ServerPlan {
    config: Config,
    /// The plan of `config.delivery_streams[i]` at `i`.
    streams: Vec<StreamPlan>,
}

impl ServerPlan {
    /// The checked configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The checked configuration, without the streams' plans.
    pub fn into_config(self) -> Config {
        self.config
    }

    /// Serves on `listen` instead of the file's `listen` (`--listen`; no plan depends on it).
    pub fn with_listen(mut self, listen: std::net::SocketAddr) -> Self {
        self.config.listen = listen;
        self
    }

    /// Each config-file stream with its plan, in the file's order.
    pub fn streams(&self) -> impl Iterator<Item = (&DeliveryStreamConfig, &StreamPlan)> {
        self.config.delivery_streams.iter().zip(&self.streams)
    }

    /// The configuration, and each config-file stream's plan by stream name.
    pub fn into_parts(self) -> (Config, HashMap<String, StreamPlan>) {
        let names = self.config.delivery_streams.iter().map(|s| s.delivery_stream_name.clone());
        let plans = names.zip(self.streams).collect();
        (self.config, plans)
    }
}

impl std::fmt::Debug for ServerPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerPlan").field("config", &self.config).finish_non_exhaustive()
    }
}

/// What checking one stream produced that building its pipeline needs: the pipeline builds
/// from it instead of parsing and checking the same settings again.
pub struct StreamPlan {
    /// The destination's checked settings; its sink is built from them.
    pub destination: Box<dyn DestinationPlan>,
    /// `Prefix` and `ErrorOutputPrefix` of the S3 side the pipeline writes objects to, parsed.
    pub prefixes: CheckedPrefixes,
    /// The processors, compiled, when `ProcessingConfiguration` is enabled.
    pub processors: Option<Arc<Processors>>,
    /// The object store that holds the stream's buckets (`hydrant.object_store`), resolved.
    pub store: StoreSpec,
    /// The server-side encryption the store applies to every object the stream writes:
    /// `KMSEncryptionConfig` (SSE-KMS), else `hydrant.server_side_encryption` (SSE-S3).
    pub sse: Option<ServerSideEncryption>,
    /// The stream's own key ring (`hydrant.encryption`), loaded once: it encrypts the
    /// stream's objects (data, error documents, backup).
    pub object_keys: Option<Arc<KeyRing>>,
    /// The columns of `hydrant.schema`, read once, when records are converted to Parquet.
    pub schema: Option<Vec<Column>>,
    /// The source-record backup, when the stream keeps one.
    pub backup: Option<BackupPlan>,
}

/// Checks a whole configuration and returns every problem found (empty when it is valid).
///
/// To check a change (for example a stream created through the API), validate the config as
/// it would be after the change: that also catches a duplicate stream name.
pub fn validate(config: &Config) -> Vec<Issue> {
    check_all(config).0
}

/// Every problem of `config`, and the plan of each of its streams that passed its checks.
fn check_all(config: &Config) -> (Vec<Issue>, Vec<Option<StreamPlan>>) {
    let mut issues = Vec::new();
    let mut plans = Vec::new();
    server::check_server(config, &mut issues);
    config.limits.check(config, &mut issues);
    auth::check_auth(config, &mut issues);
    server::check_api_streams(config, &mut issues);
    server::check_tls(config, &mut issues);
    issues.extend(config.http.issues());
    issues.extend(crate::config::core_config::issues(config));
    server::check_admin_listen(config, &mut issues);
    server::check_console(config, &mut issues);
    for (name, store) in &config.object_stores {
        server::check_object_store(name, store, &mut issues);
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
        let checked = stream::check_stream(config, stream, &path, &mut issues);
        let encryption::ObjectEncryption { sse, keys: object_keys } =
            encryption::check_encryption(config, stream, &path, &mut issues);
        let schema = processing::check_conversion(stream, &path, &mut issues);
        let processors = processing::check_processing(config, stream, &path, &mut issues);
        plans.push(checked.zip(schema).zip(processors).map(|((checked, schema), processors)| {
            let stream::CheckedStream { destination, prefixes, store, backup } = checked;
            StreamPlan {
                destination,
                prefixes,
                processors,
                store,
                sse,
                object_keys,
                schema,
                backup,
            }
        }));
    }

    issues.extend(unsupported_features(config));
    (issues, plans)
}

/// Checks `stream`, defined through the API, against the server's configuration `server`, as
/// part of it, and returns its plan. Paths are relative to the stream, under `label` when it is
/// not empty (e.g. `Update`). [`api_policy`] comes first: a stream it refuses is not checked
/// further (the other checks resolve and load what the stream names).
pub fn check_stream(
    server: &Config,
    stream: &DeliveryStreamConfig,
    label: &str,
) -> Result<StreamPlan, Vec<Issue>> {
    let refused = api_policy::check(server, stream);
    if !refused.is_empty() {
        return Err(refused
            .into_iter()
            .map(|i| {
                let path = if label.is_empty() { i.path } else { format!("{label}.{}", i.path) };
                Issue::new(path, i.message)
            })
            .collect());
    }
    check_one(server, stream, label)
}

/// Checks `stream`, one of the config file's streams, against the server's configuration
/// `server`, as part of it, and returns its plan (paths relative to the stream): for a reload
/// whose settings that need a restart keep their running values, which the file's streams
/// were not planned with.
pub fn plan_stream(
    server: &Config,
    stream: &DeliveryStreamConfig,
) -> Result<StreamPlan, Vec<Issue>> {
    check_one(server, stream, "")
}

/// `stream` checked as the one stream of `server`: its own problems (the server's are not
/// its business), or its plan.
fn check_one(
    server: &Config,
    stream: &DeliveryStreamConfig,
    label: &str,
) -> Result<StreamPlan, Vec<Issue>> {
    let mut config = server.clone();
    config.delivery_streams = vec![stream.clone()];
    let (issues, mut plans) = check_all(&config);
    let issues: Vec<Issue> = issues
        .into_iter()
        .filter_map(|issue| {
            let rest = issue.path.strip_prefix("delivery_streams[0]")?;
            let path = if label.is_empty() {
                rest.trim_start_matches('.').to_string()
            } else {
                format!("{label}{rest}")
            };
            Some(Issue::new(path, issue.message))
        })
        .collect();
    if !issues.is_empty() {
        return Err(issues);
    }
    // Every check that makes a part of the plan reports why it could not, under the stream.
    plans.pop().flatten().ok_or_else(|| {
        vec![Issue::new(label, "passed its checks but could not be planned (a bug in Hydrant)")]
    })
}

/// `text`, cut to `max_chars` characters with an ellipsis, for quoting a value in a message.
fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_owned()
    } else {
        let mut t: String = text.chars().take(max_chars).collect();
        t.push('…');
        t
    }
}
