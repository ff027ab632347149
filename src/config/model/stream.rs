//! One delivery stream (`delivery_streams[i]`) in Firehose's `CreateDeliveryStream` shape,
//! its `hydrant:` block and its tags.

use serde::{Deserialize, Serialize};

use super::{
    BufferingHints, ExtendedS3Config, HttpEndpointConfig, RedshiftConfig, S3DestinationConfig,
    SearchConfig,
};
use crate::config::{defaults, Secret};

/// One delivery stream (`delivery_streams[i]`), in the shape of Firehose's
/// `CreateDeliveryStream` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryStreamConfig {
    /// Name of the stream, used by producers in `PutRecord`/`PutRecordBatch` and in object
    /// names: 1 to 64 characters from `a-z A-Z 0-9 _ . -`, unique in this file.
    #[serde(rename = "DeliveryStreamName")]
    pub delivery_stream_name: String,

    /// Where records come from: `DirectPut` (producers call the API; the default) or
    /// `KinesisStreamAsSource` (the stream reads a Kinesis stream of this server, named by
    /// `KinesisStreamSourceConfiguration`).
    #[serde(rename = "DeliveryStreamType", default, skip_serializing_if = "Option::is_none")]
    pub delivery_stream_type: Option<DeliveryStreamType>,

    /// The Kinesis stream a `KinesisStreamAsSource` stream reads.
    #[serde(
        rename = "KinesisStreamSourceConfiguration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kinesis_stream_source_configuration: Option<KinesisStreamSourceConfig>,

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

/// The Kinesis stream a delivery stream reads (`KinesisStreamSourceConfiguration`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KinesisStreamSourceConfig {
    /// `arn:aws:kinesis:<region>:<account>:stream/<name>`: a stream of this server's Kinesis
    /// API (only its name is used).
    #[serde(rename = "KinesisStreamARN")]
    pub kinesis_stream_arn: String,
    /// Accepted for compatibility; Hydrant reads its own streams without a role.
    #[serde(rename = "RoleARN", default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

impl KinesisStreamSourceConfig {
    /// The stream's name, when the ARN is a Kinesis stream ARN.
    pub fn stream_name(&self) -> Option<&str> {
        let rest = self.kinesis_stream_arn.strip_prefix("arn:")?;
        let mut parts = rest.splitn(5, ':');
        let (_partition, service, _region, _account) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let name = parts.next()?.strip_prefix("stream/")?;
        let valid = (1..=128).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        (service == "kinesis" && valid).then_some(name)
    }
}

/// Source type of a stream (`DeliveryStreamType`), spelled as in Firehose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryStreamType {
    /// Producers write with `PutRecord`/`PutRecordBatch`.
    DirectPut,
    /// The stream reads a Kinesis stream of this server (`KinesisStreamSourceConfiguration`).
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

    /// How long records stay in the stream's log after they were delivered, in hours, so that
    /// `hydrant replay` can deliver them again: 0..=8760, default 24 ([`Self::retention_hours`]).
    /// 0 keeps only what is not delivered yet. Retained records count against
    /// `storage.max_bytes`, and give way (oldest first) when the log is nearly full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_hours: Option<u32>,

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

impl HydrantStreamConfig {
    /// Default of `retention_hours`.
    pub const DEFAULT_RETENTION_HOURS: u32 = 24;

    /// How long delivered records are kept for replays (`retention_hours`, default 24 h).
    pub fn retention(&self) -> std::time::Duration {
        let hours = self.retention_hours.unwrap_or(Self::DEFAULT_RETENTION_HOURS);
        std::time::Duration::from_secs(u64::from(hours) * 3600)
    }
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
            retention_hours: None,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    pub username: String,
    /// Write `${ENV_VAR}`, never the secret itself.
    pub password: Secret,
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
