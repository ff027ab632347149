//! The server's settings: the whole file ([`Config`]), `auth:`, `tls:`, `storage:` and
//! `object_stores:`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use hydrant_destinations::s3::StoreSpec;
use serde::{Deserialize, Serialize};

use super::de;
use super::DeliveryStreamConfig;
use crate::config::{defaults, Secret};

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
    pub http: crate::config::http::HttpConfig,

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
    pub api_streams: crate::config::api_streams::ApiStreamsConfig,

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
    pub limits: crate::config::limits::LimitsConfig,

    /// Where the streams' logs live: the embedded log on this node's disk (default), or a NATS
    /// JetStream cluster shared by every node (`type: jetstream`). See docs/configuration.md#core.
    #[serde(default, skip_serializing_if = "crate::config::CoreConfig::is_default")]
    pub core: crate::config::CoreConfig,

    /// This node's id in a cluster (`core.type: jetstream`), unique per node: 1 to 64
    /// characters of `[A-Za-z0-9_-]`. Default: `<host name>-<listen port>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,

    /// The web console at `/console/` (docs/console.md): on `admin_listen` when set, else on
    /// a loopback `listen`; `on_shared_listen: true` also serves it on a `listen` other
    /// machines reach. Default `{ enabled: true, on_shared_listen: false }`.
    #[serde(default, skip_serializing_if = "crate::config::ConsoleConfig::is_default")]
    pub console: crate::config::ConsoleConfig,

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sigv4Credential {
    /// The access key id clients sign with, e.g. `AKIAIOSFODNN7EXAMPLE`.
    pub access_key_id: String,
    /// The secret key. Write it as `${ENV_VAR}` rather than inline.
    pub secret_access_key: Secret,
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    S3(S3StoreConfig),
}

/// `object_stores.<name>` with `type: s3`: an S3-compatible service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3StoreConfig {
    /// Base URL of the service, e.g. `http://127.0.0.1:9000` for MinIO. Leave it out for
    /// AWS S3 itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Region to sign requests for. Default: the server's `region`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Access key id. Leave both keys out to use the usual AWS credential chain
    /// (environment, profile, instance role).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// Secret access key; write it as `${ENV_VAR}`, never inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<Secret>,
    /// Allow a plain `http://` endpoint (no TLS). Needed for a local MinIO. Default false.
    #[serde(default)]
    pub allow_http: bool,
    /// Address buckets as `https://<bucket>.<endpoint>` instead of
    /// `https://<endpoint>/<bucket>`. Most self-hosted stores want the default, false.
    #[serde(default)]
    pub virtual_hosted_style: bool,
}

impl S3StoreConfig {
    /// Where the destinations crate finds this store; `default_region` (the server's
    /// `region`) when the store names none.
    pub fn spec(&self, default_region: &str) -> StoreSpec {
        StoreSpec::S3 {
            endpoint: self.endpoint.clone(),
            region: self.region.clone().unwrap_or_else(|| default_region.to_owned()),
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.as_ref().map(|s| s.expose().to_owned()),
            allow_http: self.allow_http,
            virtual_hosted_style: self.virtual_hosted_style,
        }
    }
}
