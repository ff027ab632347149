//! Default values, the built-in configuration, and the steps that complete a parsed file
//! (relative paths, the implicit `default` object store).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Component, Path, PathBuf};

use super::model::{
    BufferingHints, CompressionFormat, Config, DeliveryStreamConfig, HydrantStreamConfig,
    ObjectStoreConfig, S3DestinationConfig, StorageConfig,
};
use super::AuthConfig;

/// Default listen port: 4573, a port not used by the usual local AWS emulators.
pub const LISTEN_PORT: u16 = 4573;
/// Firehose's default `SizeInMBs` for S3.
pub const BUFFER_SIZE_MBS: u32 = 5;
/// Firehose's default `IntervalInSeconds` for S3.
pub const BUFFER_INTERVAL_SECONDS: u32 = 300;
/// Name of the object store a stream uses unless `hydrant.object_store` says otherwise.
pub const OBJECT_STORE_NAME: &str = "default";
/// Default number of shards per stream.
pub const SHARDS: u32 = 2;
/// Default size of a log segment: 64 MiB.
pub const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

pub(crate) fn listen() -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, LISTEN_PORT))
}

pub(crate) fn data_dir() -> PathBuf {
    PathBuf::from("./hydrant-data")
}

pub(crate) fn region() -> String {
    "us-east-1".to_owned()
}

pub(crate) fn account_id() -> String {
    "000000000000".to_owned()
}

/// Default of `shutdown_timeout_seconds`.
pub const SHUTDOWN_TIMEOUT_SECONDS: u64 = 30;

pub(crate) fn shutdown_timeout_seconds() -> u64 {
    SHUTDOWN_TIMEOUT_SECONDS
}

pub(crate) fn segment_bytes() -> u64 {
    SEGMENT_BYTES
}

pub(crate) fn object_store_name() -> String {
    OBJECT_STORE_NAME.to_owned()
}

pub(crate) fn shards() -> u32 {
    SHARDS
}

/// The object store used when the file does not define `default`: `<data_dir>/buckets`.
pub(crate) fn default_object_store(data_dir: &Path) -> ObjectStoreConfig {
    ObjectStoreConfig::Local { root: data_dir.join("buckets") }
}

/// The configuration `hydrant serve` uses when it is given no file: listen on
/// `127.0.0.1:4573`, keep data in `./hydrant-data`, and offer one stream named `default` that
/// writes uncompressed objects under `default/` in the bucket `hydrant` of the local store
/// `./hydrant-data/buckets`, flushing every 5 MiB or 5 seconds, over 2 shards.
pub fn embedded_default() -> Config {
    let data_dir = data_dir();
    let mut object_stores = BTreeMap::new();
    object_stores.insert(OBJECT_STORE_NAME.to_owned(), default_object_store(&data_dir));
    Config {
        listen: listen(),
        admin_listen: None,
        region: region(),
        account_id: account_id(),
        auth: AuthConfig::None,
        tls: None,
        http: Default::default(),
        storage: StorageConfig::default(),
        object_stores,
        functions: BTreeMap::new(),
        api_streams: Default::default(),
        shutdown_timeout_seconds: SHUTDOWN_TIMEOUT_SECONDS,
        limits: Default::default(),
        core: Default::default(),
        node_id: None,
        console: Default::default(),
        base_dir: PathBuf::from("."),
        delivery_streams: vec![DeliveryStreamConfig {
            delivery_stream_name: "default".to_owned(),
            delivery_stream_type: None,
            kinesis_stream_source_configuration: None,
            delivery_stream_encryption_configuration_input: None,
            extended_s3_destination_configuration: Some(
                S3DestinationConfig {
                    role_arn: None,
                    bucket_arn: "arn:aws:s3:::hydrant".to_owned(),
                    prefix: Some("default/".to_owned()),
                    error_output_prefix: None,
                    buffering_hints: Some(BufferingHints {
                        size_in_mbs: Some(BUFFER_SIZE_MBS),
                        interval_in_seconds: Some(5),
                    }),
                    compression_format: CompressionFormat::Uncompressed,
                    encryption_configuration: None,
                    cloud_watch_logging_options: None,
                }
                .into(),
            ),
            s3_destination_configuration: None,
            redshift_destination_configuration: None,
            amazonopensearchservice_destination_configuration: None,
            elasticsearch_destination_configuration: None,
            http_endpoint_destination_configuration: None,
            delivery_view: None,
            tags: Vec::new(),
            hydrant: HydrantStreamConfig::default(),
        }],
        data_dir,
    }
}

/// Makes `path` absolute against `base` (unless it already is) and drops `.` components, so
/// `./hydrant-data` in `/etc/hydrant/hydrant.yaml` becomes `/etc/hydrant/hydrant-data`.
/// `..` is kept as written; nothing is read from the file system. An empty path stays empty.
pub(crate) fn resolve_path(base: &Path, path: &Path) -> PathBuf {
    if path.as_os_str().is_empty() {
        // Left empty so that validation can report it.
        return PathBuf::new();
    }
    let joined = if path.is_absolute() { path.to_path_buf() } else { base.join(path) };
    let mut out = PathBuf::new();
    for component in joined.components() {
        if component != Component::CurDir {
            out.push(component);
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Completes a freshly parsed file before validation: resolves relative paths against the
/// config file's directory and adds the implicit `default` object store.
/// Default of `hydrant.max_partitions` (Firehose's default active-partition quota).
pub fn max_partitions() -> usize {
    500
}

fn resolve_key_files(base_dir: &Path, encryption: &mut crate::codec::encryption::EncryptionConfig) {
    for key in &mut encryption.keys {
        if let Some(file) = &mut key.file {
            *file = resolve_path(base_dir, file);
        }
    }
}

pub(crate) fn complete(config: &mut Config, base_dir: &Path) {
    config.base_dir = base_dir.to_path_buf();
    for path in config.functions.values_mut() {
        *path = resolve_path(base_dir, path);
    }
    config.data_dir = resolve_path(base_dir, &config.data_dir);
    if let Some(tls) = &mut config.tls {
        tls.cert = resolve_path(base_dir, &tls.cert);
        tls.key = resolve_path(base_dir, &tls.key);
    }
    for store in config.object_stores.values_mut() {
        if let ObjectStoreConfig::Local { root } = store {
            *root = resolve_path(base_dir, root);
        }
    }
    if let Some(encryption) = &mut config.storage.encryption {
        resolve_key_files(base_dir, encryption);
    }
    config.core.resolve_paths(base_dir);
    for stream in &mut config.delivery_streams {
        if let Some(crate::codec::parquet::SchemaSource::File { file }) = &mut stream.hydrant.schema
        {
            *file = resolve_path(base_dir, file);
        }
        if let Some(encryption) = &mut stream.hydrant.encryption {
            resolve_key_files(base_dir, encryption);
        }
    }
    if !config.object_stores.contains_key(OBJECT_STORE_NAME) {
        config
            .object_stores
            .insert(OBJECT_STORE_NAME.to_owned(), default_object_store(&config.data_dir));
    }
}
