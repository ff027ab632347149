//! The source-record backup (`S3BackupMode`): a second consumer of the log that writes the
//! records as they arrived, before any processing, to their own bucket.

use std::sync::Arc;

use hydrant_destinations::s3::{S3Destination, ServerSideEncryption, StoreSpec};

use super::StartError;
use crate::codec::encryption::KeyRing;
use crate::codec::{compression_for, ObjectCodec};
use crate::config::DeliveryStreamConfig;
use crate::delivery::sink::Sink;
use crate::delivery::BatchPolicy;
use crate::destination::{S3Output, S3Sink};
use crate::naming::ObjectNamer;

/// The backup consumer's own object format, naming, buffering and bucket.
pub(super) struct Backup {
    pub(super) codec: ObjectCodec,
    pub(super) policy: BatchPolicy,
    pub(super) sink: Arc<dyn Sink>,
}

impl Backup {
    /// Source records, before any processing, under their own checkpoint ("backup"): the log
    /// keeps a record until both consumers have it.
    pub(super) fn prepare(
        stream: &DeliveryStreamConfig,
        spec: &StoreSpec,
        sse: Option<&ServerSideEncryption>,
        ring: Option<&Arc<KeyRing>>,
    ) -> Result<Option<Self>, StartError> {
        let Some(backup) = stream.backup_target() else { return Ok(None) };
        let name = &stream.delivery_stream_name;
        let destination =
            S3Destination::open_with(spec, backup.bucket(), sse).map_err(|source| {
                StartError::Destination {
                    stream: name.clone(),
                    bucket: backup.bucket().to_string(),
                    source,
                }
            })?;
        let mut codec = ObjectCodec::concatenated(
            Arc::from(compression_for(backup.compression_format)),
            backup.compression_format.extension(),
        );
        if let Some(ring) = ring {
            codec = codec.with_encryption(ring.clone());
        }
        let namer = Arc::new(
            ObjectNamer::new(
                name,
                backup.prefix.as_deref(),
                backup.error_output_prefix.as_deref(),
                codec.extension(),
                stream.s3().time_zone(),
            )
            .map_err(|source| StartError::Naming { stream: name.clone(), source })?,
        );
        let hints = backup.buffering_hints.unwrap_or_default();
        let policy = BatchPolicy {
            max_bytes: u64::from(hints.size_in_mbs.unwrap_or(crate::config::BUFFER_SIZE_MBS)) << 20,
            interval_ms: i64::from(
                hints.interval_in_seconds.unwrap_or(crate::config::BUFFER_INTERVAL_SECONDS),
            ) * 1000,
        };
        let output = S3Output { destination, namer, codec: codec.clone() };
        Ok(Some(Backup { codec, policy, sink: Arc::new(S3Sink { output, backup: true }) }))
    }
}
