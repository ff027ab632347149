//! The S3 blocks (`ExtendedS3DestinationConfiguration`, `S3DestinationConfiguration`, the
//! shape of every backup and intermediate bucket) and the members other destination blocks
//! share with them: buffering hints, encryption, retry options, logging options.
//!
//! [`ExtendedS3Config`] repeats the fields of [`S3DestinationConfig`] instead of embedding it:
//! `#[serde(flatten)]` cannot be combined with `deny_unknown_fields`, and a typo must stay an
//! error.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{CompressionFormat, DynamicPartitioningConfig, ProcessingConfig};
use crate::config::defaults;

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

/// Whether source records are backed up (`S3BackupMode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum S3BackupMode {
    /// No backup (default).
    #[default]
    Disabled,
    /// Write every untransformed source record to `S3BackupConfiguration` too.
    Enabled,
}

/// Retry settings (`RetryOptions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryOptions {
    /// Total retry time in seconds, 0..=7200 (0: no retry). Default 300.
    #[serde(rename = "DurationInSeconds", default, skip_serializing_if = "Option::is_none")]
    pub duration_in_seconds: Option<u32>,
}
