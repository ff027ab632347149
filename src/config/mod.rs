//! Hydrant's configuration: one YAML file (`hydrant.yaml`) with server settings and delivery
//! streams written in Firehose's own `CreateDeliveryStream` shape. This module reads it into
//! its model; whether the model can run is `crate::plan`'s business, which checks it and
//! returns it normalised (`plan::load`, what the server and `hydrant validate` use).
//!
//! Reading goes through these steps, each with its own error:
//! 1. read the file ([`ConfigError::Io`]);
//! 2. parse YAML into a tree ([`ConfigError::Yaml`], with line and column, and a hint when an
//!    unquoted `${NAME}` inside `{ }` or `[ ]` broke the syntax);
//! 3. expand `${NAME}` environment references in string values ([`ConfigError::Env`], naming
//!    the variable and the field): only string values, never keys; `$${` is a literal `${`;
//!    values are inserted verbatim and not expanded again;
//! 4. map the tree onto [`Config`] and the structs below it, rejecting unknown keys and wrong
//!    types ([`ConfigError::Invalid`] with one [`Issue`] naming the path, e.g.
//!    `delivery_streams[1].ExtendedS3DestinationConfiguration.BufferingHnts`);
//! 5. complete it: relative paths are resolved against the config file's directory, and the
//!    `default` object store (`<data_dir>/buckets`) is added when the file has none.
//!
//! Then `plan` validates ranges, patterns and cross-field rules ([`ConfigError::Invalid`] with
//! every problem found) and normalises each stream ([`DeliveryStreamConfig::normalize`]): the
//! deprecated `S3DestinationConfiguration` becomes `ExtendedS3DestinationConfiguration`, and
//! missing buffering hints get Firehose's defaults.

mod api_streams;
mod console;
pub(crate) mod core_config;
mod defaults;
mod destinations;
mod env;
mod error;
mod http;
mod limits;
mod log_keys;
mod model;
mod secret;

use std::path::Path;

use serde_yaml_ng::Value;

pub use api_streams::{ApiStreamsConfig, HostPattern};
pub use console::ConsoleConfig;
pub use core_config::{node_id, CoreConfig, CoreTlsConfig, CoreType};
pub use defaults::{
    embedded_default, BUFFER_INTERVAL_SECONDS, BUFFER_SIZE_MBS, LISTEN_PORT, OBJECT_STORE_NAME,
    SEGMENT_BYTES, SHARDS, SHUTDOWN_TIMEOUT_SECONDS,
};
pub use error::{ConfigError, Issue};
pub use http::{HttpConfig, MAX_BODY_BYTES};
/// Masks passwords inside URLs wherever a destination block is shown (Describe, `Debug`).
pub use hydrant_destinations::redact::{redact_url_credentials, redact_url_credentials_in};
pub use limits::{LimitExcess, LimitKind, LimitsConfig};
pub use log_keys::{key_type_of, LogKeyError, LogKeys};
pub(crate) use model::bucket_from_arn;
pub use model::{
    AuthConfig, BasicAuthConfig, BufferingHints, CloudWatchLoggingOptions, CompressionFormat,
    Config, DeliveryStreamConfig, DeliveryStreamType, DestinationBlock, DestinationKind,
    DynamicPartitioningConfig, EncryptionConfig, ExtendedS3Config, FsyncSetting,
    HttpEndpointConfig, HydrantStreamConfig, KmsEncryptionConfig, NoEncryptionConfig,
    ObjectStoreConfig, ProcessingConfig, Processor, ProcessorParameter, ProcessorParameterName,
    ProcessorType, RedshiftConfig, RetryOptions, S3BackupMode, S3DestinationConfig, S3StoreConfig,
    SearchConfig, SearchS3BackupMode, ServerSideEncryptionSetting, Sigv4Credential, StorageConfig,
    StreamEncryptionInput, Tag, TlsConfig,
};
pub use secret::{redacted, Secret, REDACTED};

/// Parses a byte size such as `10GiB`, `512 MiB`, `500MB` or `4096` (the syntax of
/// `storage.max_bytes`).
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    model::de::parse_byte_size(text)
}

/// Reads, parses, expands and completes the config file at `path`, without checking it
/// (`crate::plan::load` checks it). Relative paths in it (`data_dir`, local object store roots)
/// are resolved against the directory that holds the file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Io { path: path.to_path_buf(), source })?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let base_dir = std::path::absolute(dir)
        .map_err(|source| ConfigError::Io { path: dir.to_path_buf(), source })?;
    parse(&text, &base_dir)
}

/// Parses config text, taking `${NAME}` values from the process environment, without
/// checking it (`crate::plan::parse` checks it). Relative paths are resolved against
/// `base_dir`.
pub fn parse(yaml: &str, base_dir: &Path) -> Result<Config, ConfigError> {
    parse_with_env(yaml, base_dir, |name| std::env::var(name))
}

/// [`parse`] with a custom source of `${NAME}` values (tests, or a secrets file).
pub fn parse_with_env(
    yaml: &str,
    base_dir: &Path,
    env: impl Fn(&str) -> Result<String, std::env::VarError>,
) -> Result<Config, ConfigError> {
    let mut tree: Value = serde_yaml_ng::from_str(yaml).map_err(|e| {
        let location = e.location();
        let message = e.to_string();
        let line = location.as_ref().map(|l| l.line());
        let column = location.as_ref().map(|l| l.column());
        let hint = error::flow_reference_hint(yaml, &message, line, column);
        ConfigError::Yaml { message, line, column, hint }
    })?;
    if tree.is_null() {
        // An empty file means "all defaults".
        tree = Value::Mapping(Default::default());
    }
    env::expand_tree(&mut tree, &env)?;

    let mut config: Config = serde_path_to_error::deserialize(tree).map_err(|e| {
        let path = e.path().to_string();
        ConfigError::Invalid(vec![Issue::new(path, e.into_inner().to_string())])
    })?;

    defaults::complete(&mut config, base_dir);
    Ok(config)
}
