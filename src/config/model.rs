//! The configuration model: plain serde structs, one per YAML block.
//!
//! Server settings use snake_case keys. Delivery stream blocks use Firehose's own PascalCase
//! names and structure (the `CreateDeliveryStream` request shapes of the
//! `firehose-2015-08-04` service model), so a stream definition can be pasted from an existing
//! Firehose setup. Hydrant-only stream settings live under `hydrant:`.
//!
//! Every struct rejects unknown keys, so a typo is an error that names the key instead of a
//! setting that is silently ignored. Ranges, patterns and cross-field rules are checked after
//! parsing by [`crate::plan::validate()`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use super::destinations::{
    DestinationBlock, DestinationKind, HttpEndpointConfig, RedshiftConfig, SearchConfig,
    SearchS3BackupMode,
};
/// The codec's own enum: the config names a format, the codec knows it.
pub use crate::codec::CompressionFormat;

use super::defaults;

/// The whole `hydrant.yaml` file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address and port the Firehose-compatible API listens on, e.g. `127.0.0.1:4573` or
    /// `0.0.0.0:4573` to accept connections from other machines. Default `127.0.0.1:4573`.
    #[serde(default = "defaults::listen")]
    pub listen: SocketAddr,

    /// Serve `/metrics` and `/readyz` on this address instead of on `listen` (plain HTTP),
    /// e.g. `127.0.0.1:4574`, so they are not exposed where producers connect; `/healthz`
    /// stays on `listen` too, for load balancers. Default: not set, everything is on `listen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_listen: Option<SocketAddr>,

    /// Directory for everything Hydrant keeps on disk: the durable log, checkpoints and the
    /// streams created through the API. A relative path is taken relative to the directory of
    /// the config file. Default `./hydrant-data`.
    #[serde(default = "defaults::data_dir")]
    pub data_dir: PathBuf,

    /// AWS region this server pretends to be; it appears in the delivery stream ARNs returned
    /// by the API. Default `us-east-1`.
    #[serde(default = "defaults::region")]
    pub region: String,

    /// AWS account id (exactly 12 digits, quoted so YAML keeps leading zeros) used in the
    /// delivery stream ARNs returned by the API. Default `"000000000000"`.
    #[serde(default = "defaults::account_id", deserialize_with = "de::string_or_integer")]
    pub account_id: String,

    /// How API callers are authenticated. Default `{ mode: none }`.
    #[serde(default)]
    pub auth: AuthConfig,

    /// Serve the API over HTTPS with this certificate and key (PEM files, paths relative to
    /// the config file). Default: plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,

    /// Timeouts and per-client caps of the HTTP listeners (slow or idle clients, memory
    /// held per client address). The defaults suit a server reachable from the internet.
    #[serde(default)]
    pub http: super::http::HttpConfig,

    /// Settings of the durable log that holds accepted records until they are delivered.
    #[serde(default)]
    pub storage: StorageConfig,

    /// Named object stores that BucketARNs are resolved against. A stream picks one with
    /// `hydrant.object_store` (default `default`), and bucket `raw` of a store is the bucket
    /// named in `arn:aws:s3:::raw`. When `default` is not listed it is a local directory,
    /// `<data_dir>/buckets`.
    #[serde(default)]
    pub object_stores: BTreeMap<String, ObjectStoreConfig>,

    /// The delivery streams defined by this file, in Firehose's `CreateDeliveryStream` shape.
    #[serde(default)]
    pub delivery_streams: Vec<DeliveryStreamConfig>,

    /// WebAssembly modules standing in for Lambda functions: `LambdaArn` -> module path, so
    /// a `ProcessingConfiguration` pasted from Firehose keeps its real ARN.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub functions: BTreeMap<String, PathBuf>,

    /// What delivery streams created through the API may use: the object stores they may
    /// name and the hosts they may deliver to. Config-file streams are not limited. Default:
    /// the `default` object store and no remote host.
    #[serde(default)]
    pub api_streams: super::api_streams::ApiStreamsConfig,

    /// On SIGTERM / SIGINT, how long Hydrant may spend finishing requests and delivering
    /// every buffered record before it exits; what is not delivered by then stays in the log
    /// for the next start. The same bound applies to draining a stream that is deleted or
    /// removed from this file, and to a stream's in-flight uploads when its configuration
    /// changes. Default 30.
    #[serde(default = "defaults::shutdown_timeout_seconds")]
    pub shutdown_timeout_seconds: u64,

    /// Ceilings on what streams created through the API may ask for (shards, transform
    /// sandbox, partitions, buffer sizes) and on the shard count of all streams. See
    /// docs/configuration.md#limits.
    #[serde(default)]
    pub limits: super::limits::LimitsConfig,

    /// Directory of the configuration file (relative paths were resolved against it).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// How API callers are authenticated (`auth:`), selected by `mode`.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawAuthConfig", into = "RawAuthConfig")]
pub enum AuthConfig {
    /// `{ mode: none }`: accept every request without checking its signature. Only for a
    /// trusted network or a development machine.
    #[default]
    None,
    /// `{ mode: sigv4, credentials: [...] }`: check AWS Signature Version 4 on every
    /// Firehose request (`POST /`) against the listed credentials, as AWS does: service
    /// `firehose`, the configured `region`, a clock skew of at most 15 minutes.
    Sigv4 {
        /// The access key pairs that may call the API.
        credentials: Vec<Sigv4Credential>,
    },
}

/// The YAML form of [`AuthConfig`]; a plain struct so unknown keys are rejected for every
/// mode (serde ignores them for unit variants of internally tagged enums).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthConfig {
    /// `none` or `sigv4`.
    mode: AuthMode,
    /// Access key pairs, for `sigv4` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    credentials: Option<Vec<Sigv4Credential>>,
}

/// Values of `auth.mode`.
#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum AuthMode {
    /// No authentication.
    None,
    /// AWS Signature Version 4.
    Sigv4,
}

impl TryFrom<RawAuthConfig> for AuthConfig {
    type Error = String;
    fn try_from(raw: RawAuthConfig) -> Result<Self, String> {
        match (raw.mode, raw.credentials) {
            (AuthMode::None, None) => Ok(AuthConfig::None),
            (AuthMode::None, Some(_)) => Err(
                "`credentials` are only used with `mode: sigv4`; remove them or change the mode"
                    .to_owned(),
            ),
            (AuthMode::Sigv4, credentials) => {
                Ok(AuthConfig::Sigv4 { credentials: credentials.unwrap_or_default() })
            }
        }
    }
}

impl From<AuthConfig> for RawAuthConfig {
    fn from(auth: AuthConfig) -> Self {
        match auth {
            AuthConfig::None => RawAuthConfig { mode: AuthMode::None, credentials: None },
            AuthConfig::Sigv4 { credentials } => {
                RawAuthConfig { mode: AuthMode::Sigv4, credentials: Some(credentials) }
            }
        }
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthConfig::None => f.write_str("None"),
            AuthConfig::Sigv4 { credentials } => {
                f.debug_struct("Sigv4").field("credentials", credentials).finish()
            }
        }
    }
}

/// One access key pair accepted by SigV4 authentication.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sigv4Credential {
    /// The access key id clients sign with, e.g. `AKIAIOSFODNN7EXAMPLE`.
    pub access_key_id: String,
    /// The secret key. Write it as `${ENV_VAR}` rather than inline.
    pub secret_access_key: String,
    /// Delivery streams this key may use (every operation that names a
    /// `DeliveryStreamName`); `ListDeliveryStreams` shows only these. Default: every stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams: Option<Vec<String>>,
    /// Operations this key may call, IAM-style: `firehose:<Operation>` with `*` wildcards
    /// (`firehose:*`, `firehose:Describe*`, `firehose:Put*`). Default: `PutRecord`,
    /// `PutRecordBatch`, `DescribeDeliveryStream` and `ListDeliveryStreams` only; any other
    /// call answers `AccessDeniedException`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<String>>,
}

impl fmt::Debug for Sigv4Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sigv4Credential")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("streams", &self.streams)
            .field("actions", &self.actions)
            .finish()
    }
}

/// HTTPS for the API (`tls:`). Both files are PEM; relative paths are taken relative to the
/// directory of the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server certificate, followed by any intermediate certificates (a "fullchain" file).
    pub cert: PathBuf,
    /// The certificate's private key: PKCS#8 (`BEGIN PRIVATE KEY`), PKCS#1
    /// (`BEGIN RSA PRIVATE KEY`) or SEC1 (`BEGIN EC PRIVATE KEY`), unencrypted.
    pub key: PathBuf,
}

/// Settings of the durable log (`storage:`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// When accepted records are forced to disk. `always` (default): every acknowledged
    /// `PutRecord`/`PutRecordBatch` is fsync'd before the answer, so an acknowledged record
    /// survives a power cut. `{ interval_ms: 50 }`: fsync at most every 50 ms; faster, but up to
    /// that much acknowledged data can be lost in a crash.
    #[serde(default)]
    pub fsync: FsyncSetting,

    /// Disk budget for the log in bytes, as a number or with a unit (`10GiB`, `512MiB`,
    /// `500MB`). When the log is full, producers get `ServiceUnavailableException` until
    /// delivery frees space; nothing is dropped. Default: no limit.
    #[serde(
        default,
        deserialize_with = "de::option_byte_size",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_bytes: Option<u64>,

    /// Size at which a log segment file is closed and a new one started, in bytes or with a
    /// unit. Minimum 4096. Default 64 MiB.
    #[serde(default = "defaults::segment_bytes", deserialize_with = "de::byte_size")]
    pub segment_bytes: u64,

    /// Master keys that encrypt stream logs at rest (`DeliveryStreamEncryptionConfigurationInput`
    /// and `StartDeliveryStreamEncryption`) for every stream without its own
    /// `hydrant.encryption`, including the streams created through the API. `KeyType:
    /// CUSTOMER_MANAGED_CMK` picks one by id: the part of `KeyARN` after its last `/`
    /// (`arn:aws:kms:us-east-1:000000000000:key/<id>`); `AWS_OWNED_CMK` uses `active_key`.
    /// Default: none, and encrypting a log at rest is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<crate::codec::encryption::EncryptionConfig>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            fsync: FsyncSetting::default(),
            max_bytes: None,
            segment_bytes: defaults::segment_bytes(),
            encryption: None,
        }
    }
}

/// When the log is fsync'd (`storage.fsync`): `always` or `{ interval_ms: N }`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FsyncSetting {
    /// fsync before acknowledging each request (group commit shares one fsync among
    /// concurrent requests). Acknowledged means durable.
    #[default]
    Always,
    /// fsync at most every `interval_ms` milliseconds. Acknowledged records written since
    /// the last fsync can be lost in a crash.
    Interval {
        /// Time between two fsyncs, in milliseconds (1..=60000).
        interval_ms: u64,
    },
}

/// A place that holds buckets (`object_stores.<name>`), selected by `type`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ObjectStoreConfig {
    /// A local directory: bucket `raw` is the directory `<root>/raw`, and an object key is a
    /// path below it.
    Local {
        /// Directory holding one sub-directory per bucket. A relative path is taken relative
        /// to the directory of the config file.
        root: PathBuf,
    },
    /// An S3-compatible service: AWS S3, MinIO, Ceph, Garage, Cloudflare R2, ...
    S3 {
        /// Base URL of the service, e.g. `http://127.0.0.1:9000` for MinIO. Leave it out for
        /// AWS S3 itself.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint: Option<String>,
        /// Region to sign requests for. Default: the server's `region`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
        /// Access key id. Leave both keys out to use the usual AWS credential chain
        /// (environment, profile, instance role).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        access_key_id: Option<String>,
        /// Secret access key; write it as `${ENV_VAR}`, never inline.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret_access_key: Option<String>,
        /// Allow a plain `http://` endpoint (no TLS). Needed for a local MinIO. Default false.
        #[serde(default)]
        allow_http: bool,
        /// Address buckets as `https://<bucket>.<endpoint>` instead of
        /// `https://<endpoint>/<bucket>`. Most self-hosted stores want the default, false.
        #[serde(default)]
        virtual_hosted_style: bool,
    },
}

impl fmt::Debug for ObjectStoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectStoreConfig::Local { root } => {
                f.debug_struct("Local").field("root", root).finish()
            }
            ObjectStoreConfig::S3 {
                endpoint,
                region,
                access_key_id,
                secret_access_key,
                allow_http,
                virtual_hosted_style,
            } => f
                .debug_struct("S3")
                .field("endpoint", endpoint)
                .field("region", region)
                .field("access_key_id", access_key_id)
                .field("secret_access_key", &secret_access_key.as_ref().map(|_| "<redacted>"))
                .field("allow_http", allow_http)
                .field("virtual_hosted_style", virtual_hosted_style)
                .finish(),
        }
    }
}

/// One delivery stream (`delivery_streams[i]`), in the shape of Firehose's
/// `CreateDeliveryStream` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryStreamConfig {
    /// Name of the stream, used by producers in `PutRecord`/`PutRecordBatch` and in object
    /// names: 1 to 64 characters from `a-z A-Z 0-9 _ . -`, unique in this file.
    #[serde(rename = "DeliveryStreamName")]
    pub delivery_stream_name: String,

    /// Where records come from. Only `DirectPut` (producers call the API) is supported; it is
    /// also the default.
    #[serde(rename = "DeliveryStreamType", default, skip_serializing_if = "Option::is_none")]
    pub delivery_stream_type: Option<DeliveryStreamType>,

    /// The S3 destination: bucket, prefixes, buffering, compression and the rest. Exactly one
    /// of this and `S3DestinationConfiguration` must be given.
    #[serde(
        rename = "ExtendedS3DestinationConfiguration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub extended_s3_destination_configuration: Option<ExtendedS3Config>,

    /// Firehose's older, deprecated S3 destination form. Accepted for configs that still use
    /// it, and turned into `ExtendedS3DestinationConfiguration` when the file is loaded.
    #[serde(
        rename = "S3DestinationConfiguration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub s3_destination_configuration: Option<S3DestinationConfig>,

    /// A warehouse COPY destination (PostgreSQL, Redshift): records are staged in S3, then
    /// loaded with `COPY`. See docs/destinations/warehouse.md.
    #[serde(
        rename = "RedshiftDestinationConfiguration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub redshift_destination_configuration: Option<RedshiftConfig>,

    /// An OpenSearch `_bulk` destination. See docs/destinations/search.md.
    #[serde(
        rename = "AmazonopensearchserviceDestinationConfiguration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub amazonopensearchservice_destination_configuration: Option<SearchConfig>,

    /// An Elasticsearch `_bulk` destination (Firehose's legacy name, same fields).
    #[serde(
        rename = "ElasticsearchDestinationConfiguration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub elasticsearch_destination_configuration: Option<SearchConfig>,

    /// Firehose's HTTP endpoint delivery. See docs/destinations/http.md.
    #[serde(
        rename = "HttpEndpointDestinationConfiguration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub http_endpoint_destination_configuration: Option<HttpEndpointConfig>,

    /// The S3 side of a non-S3 destination, as the delivery pipeline sees it (built by
    /// [`DeliveryStreamConfig::normalize`]).
    #[serde(skip)]
    pub(crate) delivery_view: Option<ExtendedS3Config>,

    /// Key/value labels for the stream (at most 50), returned by `ListTagsForDeliveryStream`.
    #[serde(rename = "Tags", default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,

    /// Encrypt the stream's records at rest in Hydrant's log (Firehose's server-side
    /// encryption for Direct PUT), with the keys of `hydrant.encryption`. Put answers then say
    /// `Encrypted: true`.
    #[serde(
        rename = "DeliveryStreamEncryptionConfigurationInput",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub delivery_stream_encryption_configuration_input: Option<StreamEncryptionInput>,

    /// Hydrant-only settings of this stream.
    #[serde(default)]
    pub hydrant: HydrantStreamConfig,
}

impl DeliveryStreamConfig {
    /// The stream's S3 destination in the extended form, whichever of the two Firehose forms
    /// the file used.
    ///
    /// # Panics
    /// If the stream has neither destination block. [`crate::plan::load`] and
    /// [`crate::plan::parse`] reject such streams, so this cannot happen for a checked config.
    ///
    /// For warehouse, search and HTTP destinations this is their `S3Configuration` (the
    /// intermediate or error bucket) with the destination's processing and buffering: the
    /// part of the stream the delivery pipeline works on.
    pub fn s3(&self) -> &ExtendedS3Config {
        self.extended_s3_destination_configuration
            .as_ref()
            .or(self.delivery_view.as_ref())
            .expect("a validated delivery stream has a destination; call DeliveryStreamConfig::normalize after validation")
    }

    /// How many destination blocks the stream has (exactly one is valid).
    pub fn destination_count(&self) -> usize {
        [
            self.extended_s3_destination_configuration.is_some(),
            self.s3_destination_configuration.is_some(),
            self.redshift_destination_configuration.is_some(),
            self.amazonopensearchservice_destination_configuration.is_some(),
            self.elasticsearch_destination_configuration.is_some(),
            self.http_endpoint_destination_configuration.is_some(),
        ]
        .into_iter()
        .filter(|&b| b)
        .count()
    }

    /// Rewrites the stream into its normalised form: a deprecated `S3DestinationConfiguration`
    /// becomes the equivalent `ExtendedS3DestinationConfiguration`, and missing buffering hints
    /// are filled with Firehose's defaults. Call it after validation (the loader does);
    /// afterwards [`DeliveryStreamConfig::s3`] cannot panic.
    pub fn normalize(&mut self) {
        if self.extended_s3_destination_configuration.is_none() {
            if let Some(deprecated) = self.s3_destination_configuration.take() {
                self.extended_s3_destination_configuration = Some(deprecated.into());
            }
        }
        self.delivery_view = self.destination().delivery_view();
        let s3 =
            self.extended_s3_destination_configuration.as_mut().or(self.delivery_view.as_mut());
        if let Some(s3) = s3 {
            let hints = s3.buffering_hints.get_or_insert_with(BufferingHints::default);
            hints.size_in_mbs.get_or_insert(defaults::BUFFER_SIZE_MBS);
            hints.interval_in_seconds.get_or_insert(defaults::BUFFER_INTERVAL_SECONDS);
        }
    }
}

/// Source type of a stream (`DeliveryStreamType`), spelled as in Firehose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryStreamType {
    /// Producers write with `PutRecord`/`PutRecordBatch`. The only type Hydrant supports.
    DirectPut,
    /// Firehose reads from a Kinesis data stream. Not supported by Hydrant.
    KinesisStreamAsSource,
    /// Firehose reads from an MSK (Kafka) topic. Not supported by Hydrant.
    #[serde(rename = "MSKAsSource")]
    MskAsSource,
    /// Firehose reads a database change stream. Not supported by Hydrant.
    DatabaseAsSource,
}

impl DeliveryStreamType {
    /// The Firehose spelling, e.g. `DirectPut`.
    pub fn as_firehose_str(&self) -> &'static str {
        match self {
            DeliveryStreamType::DirectPut => "DirectPut",
            DeliveryStreamType::KinesisStreamAsSource => "KinesisStreamAsSource",
            DeliveryStreamType::MskAsSource => "MSKAsSource",
            DeliveryStreamType::DatabaseAsSource => "DatabaseAsSource",
        }
    }
}

/// Hydrant-only settings of one stream (`hydrant:`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HydrantStreamConfig {
    /// Name of the entry in `object_stores` that holds this stream's bucket. Default
    /// `default`.
    #[serde(default = "defaults::object_store_name")]
    pub object_store: String,

    /// Number of shards (independent ordered logs, each with its own delivery worker) the
    /// stream is split into: 1..=64, default 2. More shards spread load over more cores;
    /// order is kept only within a shard.
    #[serde(default = "defaults::shards")]
    pub shards: u32,

    /// Client-side envelope encryption of every delivered object (AES-256-GCM under a fresh
    /// data key per object, wrapped by the active master key; see docs/encryption.md). The
    /// same keys encrypt the stream's log at rest when `DeliveryStreamEncryptionConfigurationInput`
    /// is set. Decrypt objects with `hydrant decrypt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<crate::codec::encryption::EncryptionConfig>,

    /// Ask the S3 store to encrypt objects with its own keys (SSE-S3): `AES256`. For SSE-KMS use
    /// Firehose's `EncryptionConfiguration.KMSEncryptionConfig`. Needs an `s3` object store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_side_encryption: Option<ServerSideEncryptionSetting>,

    /// The table schema for `DataFormatConversionConfiguration` (Firehose reads it from AWS
    /// Glue): `columns: [{name, type}]` with Hive/Glue types, or `file:` with such a list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<crate::codec::parquet::SchemaSource>,

    /// Most dynamic partitions one buffer may hold (Firehose's active-partition quota);
    /// records of further partitions go to the error output as `partitioning-failed`.
    #[serde(default = "defaults::max_partitions")]
    pub max_partitions: usize,

    /// Sandbox limits of this stream's WebAssembly transform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<crate::wasm_host::TransformLimits>,

    /// HTTP basic auth for a search destination's cluster (Firehose signs with IAM instead):
    /// `{ username: ..., password: ${OPENSEARCH_PASSWORD} }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuthConfig>,
}

/// `hydrant.server_side_encryption` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerSideEncryptionSetting {
    /// SSE-S3: `x-amz-server-side-encryption: AES256`.
    AES256,
}

/// Firehose's stream-level encryption at rest (`DeliveryStreamEncryptionConfigurationInput`).
/// In Hydrant it encrypts every record in the stream's durable log with the keys of the
/// stream's `hydrant.encryption`, or else of `storage.encryption` (see
/// [`Config::log_keys`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamEncryptionInput {
    /// `AWS_OWNED_CMK` (the key ring's `active_key`) or `CUSTOMER_MANAGED_CMK` (the key
    /// `KeyARN` names; its `active_key` without one). Default: `CUSTOMER_MANAGED_CMK` with a
    /// `KeyARN`, else `AWS_OWNED_CMK`.
    #[serde(rename = "KeyType", default, skip_serializing_if = "Option::is_none")]
    pub key_type: Option<String>,
    /// With `CUSTOMER_MANAGED_CMK`, the master key: its id is the part after the last `/`
    /// (`arn:aws:kms:us-east-1:000000000000:key/k2` names key `k2`).
    #[serde(rename = "KeyARN", default, skip_serializing_if = "Option::is_none")]
    pub key_arn: Option<String>,
}

impl Default for HydrantStreamConfig {
    fn default() -> Self {
        HydrantStreamConfig {
            object_store: defaults::object_store_name(),
            shards: defaults::shards(),
            encryption: None,
            server_side_encryption: None,
            schema: None,
            max_partitions: defaults::max_partitions(),
            transform: None,
            basic_auth: None,
        }
    }
}

/// `hydrant.basic_auth`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    pub username: String,
    /// Write `${ENV_VAR}`, never the secret itself.
    pub password: String,
}

impl std::fmt::Debug for BasicAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuthConfig")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A stream tag (`Tags[i]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tag {
    /// Tag key: 1 to 128 letters, digits, spaces or `_ . : / = + - @ %`, not starting with
    /// `aws:`.
    #[serde(rename = "Key")]
    pub key: String,
    /// Tag value: up to 256 of the same characters. Optional.
    #[serde(rename = "Value", default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// The S3 destination (`ExtendedS3DestinationConfiguration`), as in Firehose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtendedS3Config {
    /// IAM role Firehose would assume. Hydrant does not use it; it is accepted so existing
    /// configs and IaC tools work, and if given must look like
    /// `arn:aws:iam::123456789012:role/name`.
    #[serde(rename = "RoleARN", default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,

    /// The bucket, as an ARN: `arn:aws:s3:::<bucket>`. The bucket is looked up in the
    /// stream's object store (`hydrant.object_store`).
    #[serde(rename = "BucketARN")]
    pub bucket_arn: String,

    /// Key prefix of delivered objects (up to 1024 characters). It may use `!{timestamp:...}`,
    /// `!{firehose:random-string}` and, with dynamic partitioning, `!{partitionKeyFrom...:key}`
    /// expressions. Without expressions, `yyyy/MM/dd/HH/` is appended (so end it with `/`).
    #[serde(rename = "Prefix", default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,

    /// Key prefix for records that could not be processed or delivered (up to 1024
    /// characters). Required when `Prefix` uses expressions, and must then contain
    /// `!{firehose:error-output-type}`, e.g. `errors/!{firehose:error-output-type}/`.
    #[serde(rename = "ErrorOutputPrefix", default, skip_serializing_if = "Option::is_none")]
    pub error_output_prefix: Option<String>,

    /// When a buffer becomes an object: after `SizeInMBs` of data or `IntervalInSeconds`,
    /// whichever comes first. Default 5 MiB / 300 s.
    #[serde(rename = "BufferingHints", default, skip_serializing_if = "Option::is_none")]
    pub buffering_hints: Option<BufferingHints>,

    /// Compression of delivered objects. Default `UNCOMPRESSED`.
    #[serde(rename = "CompressionFormat", default)]
    pub compression_format: CompressionFormat,

    /// Server-side encryption of delivered objects. Default: none.
    #[serde(rename = "EncryptionConfiguration", default, skip_serializing_if = "Option::is_none")]
    pub encryption_configuration: Option<EncryptionConfig>,

    /// Firehose's CloudWatch Logs error logging. Accepted and ignored: Hydrant logs to its
    /// own log output.
    #[serde(rename = "CloudWatchLoggingOptions", default, skip_serializing_if = "Option::is_none")]
    pub cloud_watch_logging_options: Option<CloudWatchLoggingOptions>,

    /// Record transformation steps (de-aggregation, transform function, metadata extraction
    /// for partition keys, delimiters).
    #[serde(rename = "ProcessingConfiguration", default, skip_serializing_if = "Option::is_none")]
    pub processing_configuration: Option<ProcessingConfig>,

    /// Whether the untransformed source records are also written to `S3BackupConfiguration`.
    /// Default `Disabled`.
    #[serde(rename = "S3BackupMode", default)]
    pub s3_backup_mode: S3BackupMode,

    /// Where source records are backed up when `S3BackupMode` is `Enabled`.
    #[serde(rename = "S3BackupConfiguration", default, skip_serializing_if = "Option::is_none")]
    pub s3_backup_configuration: Option<S3DestinationConfig>,

    /// JSON to Parquet/ORC conversion, in Firehose's shape. Kept as given for now. Note that
    /// Firehose treats a present block as enabled unless it says `Enabled: false`.
    #[serde(
        rename = "DataFormatConversionConfiguration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub data_format_conversion_configuration:
        Option<crate::codec::parquet::DataFormatConversionConfiguration>,

    /// Dynamic partitioning: group records into objects by keys taken from the records
    /// (`!{partitionKeyFromQuery:...}` / `!{partitionKeyFromLambda:...}` in `Prefix`).
    #[serde(
        rename = "DynamicPartitioningConfiguration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dynamic_partitioning_configuration: Option<DynamicPartitioningConfig>,

    /// Extension of delivered object names, replacing the one implied by the compression,
    /// e.g. `.json.gz`. A dot followed by lowercase letters, digits or `!-_.*'()`.
    #[serde(rename = "FileExtension", default, skip_serializing_if = "Option::is_none")]
    pub file_extension: Option<String>,

    /// IANA time zone (e.g. `Asia/Tokyo`) for the timestamps in object prefixes and names.
    /// Default UTC.
    #[serde(rename = "CustomTimeZone", default, skip_serializing_if = "Option::is_none")]
    pub custom_time_zone: Option<String>,
}

/// Firehose's deprecated S3 destination (`S3DestinationConfiguration`), also the shape of
/// `S3BackupConfiguration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3DestinationConfig {
    /// IAM role Firehose would assume. Hydrant does not use it; if given it must look like
    /// `arn:aws:iam::123456789012:role/name`.
    #[serde(rename = "RoleARN", default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,

    /// The bucket, as an ARN: `arn:aws:s3:::<bucket>`.
    #[serde(rename = "BucketARN")]
    pub bucket_arn: String,

    /// Key prefix of delivered objects (up to 1024 characters); see
    /// `ExtendedS3DestinationConfiguration.Prefix`.
    #[serde(rename = "Prefix", default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,

    /// Key prefix for failed records (up to 1024 characters); see
    /// `ExtendedS3DestinationConfiguration.ErrorOutputPrefix`.
    #[serde(rename = "ErrorOutputPrefix", default, skip_serializing_if = "Option::is_none")]
    pub error_output_prefix: Option<String>,

    /// Size / interval thresholds of a buffer. Default 5 MiB / 300 s.
    #[serde(rename = "BufferingHints", default, skip_serializing_if = "Option::is_none")]
    pub buffering_hints: Option<BufferingHints>,

    /// Compression of delivered objects. Default `UNCOMPRESSED`.
    #[serde(rename = "CompressionFormat", default)]
    pub compression_format: CompressionFormat,

    /// Server-side encryption of delivered objects. Default: none.
    #[serde(rename = "EncryptionConfiguration", default, skip_serializing_if = "Option::is_none")]
    pub encryption_configuration: Option<EncryptionConfig>,

    /// Firehose's CloudWatch Logs error logging. Accepted and ignored.
    #[serde(rename = "CloudWatchLoggingOptions", default, skip_serializing_if = "Option::is_none")]
    pub cloud_watch_logging_options: Option<CloudWatchLoggingOptions>,
}

impl From<S3DestinationConfig> for ExtendedS3Config {
    fn from(c: S3DestinationConfig) -> Self {
        ExtendedS3Config {
            role_arn: c.role_arn,
            bucket_arn: c.bucket_arn,
            prefix: c.prefix,
            error_output_prefix: c.error_output_prefix,
            buffering_hints: c.buffering_hints,
            compression_format: c.compression_format,
            encryption_configuration: c.encryption_configuration,
            cloud_watch_logging_options: c.cloud_watch_logging_options,
            processing_configuration: None,
            s3_backup_mode: S3BackupMode::Disabled,
            s3_backup_configuration: None,
            data_format_conversion_configuration: None,
            dynamic_partitioning_configuration: None,
            file_extension: None,
            custom_time_zone: None,
        }
    }
}

impl ExtendedS3Config {
    /// The bucket name taken from `BucketARN` (`arn:aws:s3:::raw` gives `raw`). For an ARN
    /// that failed validation, the text after the last `:::`, or the whole ARN.
    pub fn bucket(&self) -> &str {
        bucket_from_arn(&self.bucket_arn)
    }

    /// Buffer size threshold in bytes (`SizeInMBs` MiB, default 5 MiB).
    pub fn buffer_size_bytes(&self) -> u64 {
        buffer_size_bytes(self.buffering_hints.as_ref())
    }

    /// Buffer time threshold (`IntervalInSeconds`, default 300 s). Zero means "deliver as
    /// soon as possible".
    pub fn buffer_interval(&self) -> Duration {
        buffer_interval(self.buffering_hints.as_ref())
    }

    /// The time zone for prefixes and object names: `CustomTimeZone`, or UTC when it is
    /// unset, empty or (in an unvalidated config) unknown.
    pub fn time_zone(&self) -> chrono_tz::Tz {
        self.custom_time_zone
            .as_deref()
            .filter(|s| !s.is_empty())
            .and_then(|s| s.parse().ok())
            .unwrap_or(chrono_tz::UTC)
    }

    /// The extension appended to object names: `FileExtension` when set and non-empty,
    /// otherwise the compression's (`.gz` for GZIP, empty for UNCOMPRESSED).
    pub fn object_extension(&self) -> &str {
        match self.file_extension.as_deref() {
            Some(ext) if !ext.is_empty() => ext,
            _ => self.compression_format.extension(),
        }
    }

    /// Whether `DynamicPartitioningConfiguration.Enabled` is true.
    pub fn dynamic_partitioning_enabled(&self) -> bool {
        self.dynamic_partitioning_configuration.as_ref().and_then(|d| d.enabled).unwrap_or(false)
    }
}

impl S3DestinationConfig {
    /// The bucket name taken from `BucketARN`.
    pub fn bucket(&self) -> &str {
        bucket_from_arn(&self.bucket_arn)
    }

    /// Buffer size threshold in bytes (`SizeInMBs` MiB, default 5 MiB).
    pub fn buffer_size_bytes(&self) -> u64 {
        buffer_size_bytes(self.buffering_hints.as_ref())
    }

    /// Buffer time threshold (`IntervalInSeconds`, default 300 s).
    pub fn buffer_interval(&self) -> Duration {
        buffer_interval(self.buffering_hints.as_ref())
    }
}

pub(crate) fn bucket_from_arn(arn: &str) -> &str {
    match arn.rfind(":::") {
        Some(i) => &arn[i + 3..],
        None => arn,
    }
}

fn buffer_size_bytes(hints: Option<&BufferingHints>) -> u64 {
    let mbs = hints.and_then(|h| h.size_in_mbs).unwrap_or(defaults::BUFFER_SIZE_MBS);
    u64::from(mbs) * 1024 * 1024
}

fn buffer_interval(hints: Option<&BufferingHints>) -> Duration {
    let secs =
        hints.and_then(|h| h.interval_in_seconds).unwrap_or(defaults::BUFFER_INTERVAL_SECONDS);
    Duration::from_secs(u64::from(secs))
}

/// Buffer thresholds (`BufferingHints`). Give both or neither (a Firehose rule).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BufferingHints {
    /// Deliver once this many MiB (of uncompressed data) are buffered: 1..=128, default 5.
    #[serde(rename = "SizeInMBs", default, skip_serializing_if = "Option::is_none")]
    pub size_in_mbs: Option<u32>,
    /// Deliver once the oldest buffered record is this many seconds old: 0..=900, default
    /// 300. 0 delivers as soon as possible.
    #[serde(rename = "IntervalInSeconds", default, skip_serializing_if = "Option::is_none")]
    pub interval_in_seconds: Option<u32>,
}

/// Object encryption (`EncryptionConfiguration`): give exactly one of the two members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionConfig {
    /// `NoEncryption`: objects are stored without server-side encryption.
    #[serde(rename = "NoEncryptionConfig", default, skip_serializing_if = "Option::is_none")]
    pub no_encryption_config: Option<NoEncryptionConfig>,
    /// Encrypt objects with SSE-KMS under the given key.
    #[serde(rename = "KMSEncryptionConfig", default, skip_serializing_if = "Option::is_none")]
    pub kms_encryption_config: Option<KmsEncryptionConfig>,
}

/// The only value of `NoEncryptionConfig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoEncryptionConfig {
    /// No server-side encryption.
    NoEncryption,
}

/// SSE-KMS settings (`KMSEncryptionConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmsEncryptionConfig {
    /// ARN of the KMS key or alias, e.g. `arn:aws:kms:us-east-1:123456789012:key/...`.
    #[serde(rename = "AWSKMSKeyARN")]
    pub awskms_key_arn: String,
}

/// Firehose's CloudWatch Logs options (`CloudWatchLoggingOptions`). Accepted and ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudWatchLoggingOptions {
    /// Whether Firehose would log delivery errors to CloudWatch Logs. Ignored.
    #[serde(rename = "Enabled", default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// CloudWatch log group name. Ignored.
    #[serde(rename = "LogGroupName", default, skip_serializing_if = "Option::is_none")]
    pub log_group_name: Option<String>,
    /// CloudWatch log stream name. Ignored.
    #[serde(rename = "LogStreamName", default, skip_serializing_if = "Option::is_none")]
    pub log_stream_name: Option<String>,
}

/// Record processing (`ProcessingConfiguration`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessingConfig {
    /// Whether the processors run. Default false.
    #[serde(rename = "Enabled", default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The processors, applied in order.
    #[serde(rename = "Processors", default, skip_serializing_if = "Vec::is_empty")]
    pub processors: Vec<Processor>,
}

/// One processing step (`Processors[i]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Processor {
    /// What the step does.
    #[serde(rename = "Type")]
    pub processor_type: ProcessorType,
    /// The step's settings.
    #[serde(rename = "Parameters", default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<ProcessorParameter>,
}

/// Kind of processing step (`Processors[i].Type`), spelled as in Firehose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProcessorType {
    /// Split KPL-aggregated or JSON-concatenated records into their sub-records.
    RecordDeAggregation,
    /// Decompress gzip'd records (CloudWatch Logs subscriptions).
    Decompression,
    /// Extract log events from CloudWatch Logs records.
    CloudWatchLogProcessing,
    /// Transform records with a function (in Hydrant: a WebAssembly module).
    Lambda,
    /// Compute partition keys with a jq query (dynamic partitioning).
    MetadataExtraction,
    /// Append a delimiter (default newline) to every record.
    AppendDelimiterToRecord,
}

/// One processor setting (`Parameters[i]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessorParameter {
    /// Which setting.
    #[serde(rename = "ParameterName")]
    pub parameter_name: ProcessorParameterName,
    /// Its value, 1 to 5120 characters, not blank.
    #[serde(rename = "ParameterValue")]
    pub parameter_value: String,
}

/// Name of a processor setting (`ParameterName`), spelled as in Firehose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProcessorParameterName {
    /// Function to invoke (Lambda processor).
    LambdaArn,
    /// Retries of a failed invocation.
    NumberOfRetries,
    /// jq query producing the partition keys (MetadataExtraction).
    MetadataExtractionQuery,
    /// JSON parser for the query, `JQ-1.6`.
    JsonParsingEngine,
    /// Role for the invocation. Ignored by Hydrant.
    RoleArn,
    /// Size of the batch handed to the function, in MB.
    BufferSizeInMBs,
    /// Age of the batch handed to the function, in seconds.
    BufferIntervalInSeconds,
    /// `JSON` or `DELIMITED` (RecordDeAggregation).
    SubRecordType,
    /// Delimiter (RecordDeAggregation / AppendDelimiterToRecord).
    Delimiter,
    /// Compression of incoming records (Decompression).
    CompressionFormat,
    /// Whether only the message of CloudWatch log events is kept.
    DataMessageExtraction,
}

/// Whether source records are backed up (`S3BackupMode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum S3BackupMode {
    /// No backup (default).
    #[default]
    Disabled,
    /// Write every untransformed source record to `S3BackupConfiguration` too.
    Enabled,
}

/// Dynamic partitioning (`DynamicPartitioningConfiguration`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamicPartitioningConfig {
    /// How long delivery to a partition's prefix is retried.
    #[serde(rename = "RetryOptions", default, skip_serializing_if = "Option::is_none")]
    pub retry_options: Option<RetryOptions>,
    /// Whether dynamic partitioning is on. Default false.
    #[serde(rename = "Enabled", default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Retry settings (`RetryOptions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryOptions {
    /// Total retry time in seconds, 0..=7200 (0: no retry). Default 300.
    #[serde(rename = "DurationInSeconds", default, skip_serializing_if = "Option::is_none")]
    pub duration_in_seconds: Option<u32>,
}

/// Custom (de)serializers for the few fields that accept more than one YAML form.
pub(crate) mod de {
    use std::fmt;

    use serde::de::{self, Deserializer, MapAccess, Visitor};
    use serde::ser::{SerializeMap, Serializer};
    use serde::{Deserialize, Serialize};

    use super::FsyncSetting;

    /// A string, or an integer written without quotes (turned into its decimal text).
    pub fn string_or_integer<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = String;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string of digits")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
                Ok(v.to_owned())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
                Ok(v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
                Ok(v.to_string())
            }
        }
        d.deserialize_any(V)
    }

    /// A byte count: a non-negative integer, or a string such as `10GiB`, `512 MiB`, `500MB`.
    pub fn byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = u64;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a byte count such as 1073741824, \"512MiB\" or \"10GiB\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
                Ok(v)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("byte count must not be negative, got {v}")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
                parse_byte_size(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }

    /// [`byte_size`] for an optional field.
    pub fn option_byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        byte_size(d).map(Some)
    }

    /// Parses `10GiB`, `512 MiB`, `64KiB`, `500MB`, `4096`, `4096B`. Binary units (KiB, MiB,
    /// GiB, TiB) are powers of 1024, decimal ones (KB, MB, GB, TB) powers of 1000.
    pub fn parse_byte_size(text: &str) -> Result<u64, String> {
        let t = text.trim();
        let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (number, unit) = t.split_at(digits_end);
        let bad = || {
            format!(
                "invalid byte size {text:?}: write a number of bytes or a number with a unit \
                 (KiB, MiB, GiB, TiB, KB, MB, GB, TB), e.g. \"10GiB\""
            )
        };
        if number.is_empty() {
            return Err(bad());
        }
        let number: u64 = number.parse().map_err(|_| bad())?;
        let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kib" => 1 << 10,
            "mib" => 1 << 20,
            "gib" => 1 << 30,
            "tib" => 1 << 40,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            "tb" => 1_000_000_000_000,
            _ => return Err(bad()),
        };
        number.checked_mul(multiplier).ok_or_else(|| format!("byte size {text:?} is too large"))
    }

    impl<'de> Deserialize<'de> for FsyncSetting {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = FsyncSetting;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("`always` or a mapping `{ interval_ms: <milliseconds> }`")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<FsyncSetting, E> {
                    if v == "always" {
                        Ok(FsyncSetting::Always)
                    } else {
                        Err(E::custom(format!(
                            "unknown fsync setting `{v}`, expected `always` or \
                             `{{ interval_ms: <milliseconds> }}`"
                        )))
                    }
                }
                fn visit_map<A: MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<FsyncSetting, A::Error> {
                    let mut interval_ms = None;
                    while let Some(key) = map.next_key::<String>()? {
                        if key == "interval_ms" {
                            if interval_ms.is_some() {
                                return Err(de::Error::duplicate_field("interval_ms"));
                            }
                            interval_ms = Some(map.next_value::<u64>()?);
                        } else {
                            return Err(de::Error::unknown_field(&key, &["interval_ms"]));
                        }
                    }
                    let interval_ms =
                        interval_ms.ok_or_else(|| de::Error::missing_field("interval_ms"))?;
                    Ok(FsyncSetting::Interval { interval_ms })
                }
            }
            d.deserialize_any(V)
        }
    }

    impl Serialize for FsyncSetting {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self {
                FsyncSetting::Always => s.serialize_str("always"),
                FsyncSetting::Interval { interval_ms } => {
                    let mut m = s.serialize_map(Some(1))?;
                    m.serialize_entry("interval_ms", interval_ms)?;
                    m.end()
                }
            }
        }
    }
}
