//! The source-record backup (`S3BackupMode`): a second consumer of the log that writes the
//! records as they arrived, before any processing, to their own bucket.

use std::sync::Arc;

use hydrant_destinations::s3::S3Destination;

use super::StartError;
use crate::codec::{compression_for, ObjectCodec};
use crate::config::DeliveryStreamConfig;
use crate::delivery::sink::Sink;
use crate::delivery::BatchPolicy;
use crate::destination::{S3Output, S3Sink};
use crate::naming::ObjectNamer;
use crate::plan::{BackupPlan, StreamPlan};

/// The backup consumer's own object format, naming, buffering and bucket.
pub(super) struct Backup {
    pub(super) codec: ObjectCodec,
    pub(super) policy: BatchPolicy,
    pub(super) sink: Arc<dyn Sink>,
}

impl Backup {
    /// Source records, before any processing, under their own checkpoint ("backup"): the log
    /// keeps a record until both consumers have it. `backup` is `plan`'s.
    pub(super) fn prepare(
        stream: &DeliveryStreamConfig,
        backup: &BackupPlan,
        plan: &StreamPlan,
    ) -> Result<Self, StartError> {
        let name = &stream.delivery_stream_name;
        let destination = S3Destination::open_with(&plan.store, &backup.bucket, plan.sse.as_ref())
            .map_err(|source| StartError::Destination {
                stream: name.clone(),
                bucket: backup.bucket.clone(),
                source,
            })?;
        let mut codec = ObjectCodec::concatenated(
            Arc::from(compression_for(backup.compression)),
            backup.compression.extension(),
        );
        if let Some(ring) = &plan.object_keys {
            codec = codec.with_encryption(ring.clone());
        }
        let namer = Arc::new(
            ObjectNamer::from_prefixes(
                name,
                backup.prefixes.clone(),
                codec.extension(),
                stream.s3().time_zone(),
            )
            .map_err(|source| StartError::Naming { stream: name.clone(), source })?,
        );
        let policy =
            BatchPolicy { max_bytes: backup.buffer_bytes, interval_ms: backup.buffer_interval_ms };
        let output = S3Output { destination, namer, codec: codec.clone() };
        Ok(Backup { codec, policy, sink: Arc::new(S3Sink { output, backup: true }) })
    }
}
