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

mod processing;
mod s3;
mod server;
mod stream;

pub(crate) mod de;

pub use super::destinations::{
    DestinationBlock, DestinationKind, HttpEndpointConfig, RedshiftConfig, SearchConfig,
    SearchS3BackupMode,
};
/// The codec's own enum: the config names a format, the codec knows it.
pub use crate::codec::CompressionFormat;
pub use processing::{
    DynamicPartitioningConfig, ProcessingConfig, Processor, ProcessorParameter,
    ProcessorParameterName, ProcessorType,
};
pub(crate) use s3::bucket_from_arn;
pub use s3::{
    BufferingHints, CloudWatchLoggingOptions, EncryptionConfig, ExtendedS3Config,
    KmsEncryptionConfig, NoEncryptionConfig, RetryOptions, S3BackupMode, S3DestinationConfig,
};
pub use server::{
    AuthConfig, Config, FsyncSetting, ObjectStoreConfig, S3StoreConfig, Sigv4Credential,
    StorageConfig, TlsConfig,
};
pub use stream::{
    BasicAuthConfig, DeliveryStreamConfig, DeliveryStreamType, HydrantStreamConfig,
    ServerSideEncryptionSetting, StreamEncryptionInput, Tag,
};
