//! S3 objects: the S3 destination itself, and the error output / staging of every other sink.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hydrant_destinations::error_output::{ErrorDocument, Extra};
use hydrant_destinations::s3::{Object, S3Destination};
use hydrant_destinations::{deliver_with_retry, Destination, DestinationError};
use md5::{Digest, Md5};

use super::DESCRIPTOR;
use crate::clock::now_ms;
use crate::codec::ObjectCodec;
use crate::delivery::buffers::{BufferKey, Unit, PARTITIONING_FAILED};
use crate::delivery::error_output::output_type::PROCESSING_FAILED;
use crate::delivery::sink::{ErrorOutput, Sink, SinkContext, SinkError, SinkResult};
use crate::destination::attempt_failed;
use crate::naming::{BatchIdentity, ObjectNamer};

/// What became of an object handed to [`S3Output::try_put`].
pub enum Put {
    Written,
    /// Shutdown interrupted the retries; nothing is checkpointed.
    Shutdown,
    /// The store refuses this object for good (its key): retrying cannot help.
    Refused(DestinationError),
}

/// A bucket plus the stream's naming rules.
pub struct S3Output {
    pub destination: S3Destination,
    pub namer: Arc<ObjectNamer>,
    /// The stream's object format: compression (and `Content-Encoding`), encryption.
    pub codec: ObjectCodec,
}

impl S3Output {
    fn identity<'a>(&self, ctx: &'a SinkContext, unit: &Unit, variant: u64) -> BatchIdentity<'a> {
        BatchIdentity {
            stream: &ctx.stream,
            shard: ctx.shard,
            first_seq: unit.first.seq,
            last_seq: unit.last.seq,
            variant,
        }
    }

    /// Key of a data unit's object under `Prefix`.
    pub fn data_key(&self, ctx: &SinkContext, unit: &Unit) -> SinkResult<String> {
        let BufferKey::Data(partition) = &unit.key else {
            return Err(SinkError::ErrorUnitAsData);
        };
        let identity = self.identity(ctx, unit, unit.variant);
        self.namer
            .object_key(ctx.version, &identity, unit.oldest_arrival_ms, Some(partition))
            .map_err(SinkError::DataKey)
    }

    /// Key of a data unit's object under `Prefix`, when it has one: a unit without one (a
    /// missing partition key, an arrival time no calendar shows) is written whole to the error
    /// output, as an object the store refuses, and `Err` carries that delivery's outcome (so
    /// no shard stops on it). Only what the error output cannot take either is an error.
    pub fn data_key_or_refuse(
        &self,
        ctx: &SinkContext,
        unit: &Unit,
    ) -> SinkResult<Result<String, bool>> {
        match self.data_key(ctx, unit) {
            Ok(key) => Ok(Ok(key)),
            Err(SinkError::DataKey(e)) => {
                let e = DestinationError::permanent("S3.InvalidKey", e.to_string());
                self.put_refused_object(ctx, unit, None, &e).map(Err)
            }
            Err(e) => Err(e),
        }
    }

    /// Key of an error object of `output_type` made from `unit`'s records. The variant mixes
    /// in the type, so a data unit's failures never overwrite another object.
    pub fn error_key(
        &self,
        ctx: &SinkContext,
        unit: &Unit,
        output_type: &str,
    ) -> SinkResult<String> {
        let variant = match unit.key {
            BufferKey::Errors(_) => unit.variant,
            BufferKey::Data(_) => mix(unit.variant, output_type),
        };
        let identity = self.identity(ctx, unit, variant);
        self.namer
            .error_key(ctx.version, &identity, unit.oldest_arrival_ms, output_type)
            .map_err(SinkError::ErrorKey)
    }

    /// Writes one object, retrying transient failures until it lands (S3 delivery has no
    /// retry deadline: records stay in the log until the store takes them, so only shutdown
    /// or a permanent refusal ends the retries). Its failures are in the [`Put`].
    pub fn try_put(
        &self,
        ctx: &SinkContext,
        key: &str,
        body: Bytes,
        content_encoding: Option<&'static str>,
    ) -> Put {
        let object = Object { key: key.to_owned(), body, content_encoding };
        let on_retry = |e: &DestinationError, attempt, wait: Duration| {
            attempt_failed(ctx, &DESCRIPTOR, e);
            tracing::warn!(stream = %ctx.stream, shard = ctx.shard, destination = DESCRIPTOR.log_name,
                bucket = self.destination.bucket(), key, attempt,
                retry_in_ms = wait.as_millis() as u64, error = %e, "delivery failed; will retry");
        };
        match ctx.run(deliver_with_retry(&self.destination, object, on_retry)) {
            None => Put::Shutdown,
            // S3 takes whole objects: it never rejects part of one.
            Some(Ok(_)) => Put::Written,
            // Without a deadline, only a permanent error gives up.
            Some(Err(gave_up)) => {
                ctx.metrics.destination_failed(&ctx.stream, DESCRIPTOR.metric, &gave_up.error.code);
                Put::Refused(gave_up.error)
            }
        }
    }

    /// Writes one object that has nowhere else to go (an error object, a manifest), retrying
    /// until it lands: a refusal is retried too (Firehose blocks delivery when its error
    /// output fails), and shows as a blocked shard. `false` on shutdown.
    pub fn put(
        &self,
        ctx: &SinkContext,
        key: String,
        body: Bytes,
        content_encoding: Option<&'static str>,
    ) -> bool {
        let retry = self.destination.retry_policy();
        let mut backoff = retry.backoff();
        loop {
            match self.try_put(ctx, &key, body.clone(), content_encoding) {
                Put::Written => return true,
                Put::Shutdown => return false,
                Put::Refused(e) => {
                    let wait = backoff.next_wait().unwrap_or(retry.max);
                    tracing::error!(stream = %ctx.stream, shard = ctx.shard, destination = super::DESCRIPTOR.log_name,
                        bucket = self.destination.bucket(), key = %key, attempt = backoff.attempts(),
                        retry_in_ms = wait.as_millis() as u64, error = %e,
                        "the store refuses this object and it has nowhere else to go; retrying \
                         (fix the ErrorOutputPrefix or the store)");
                    ctx.health.attempt_failed(&ctx.stream, ctx.shard, &e);
                    if ctx.run(async move { tokio::time::sleep(wait).await }).is_none() {
                        return false;
                    }
                }
            }
        }
    }

    /// A data object the store refused for good (or that cannot be named): one error
    /// document with the reason and the whole object as `rawData` (in the stream's format:
    /// compressed and encrypted as its objects are), so nothing is lost and the shard moves
    /// on. `partitioning-failed` for dynamic partitions, `processing-failed` otherwise.
    pub fn put_refused_object(
        &self,
        ctx: &SinkContext,
        unit: &Unit,
        key: Option<&str>,
        error: &DestinationError,
    ) -> SinkResult<bool> {
        let partitioned =
            matches!(&unit.key, BufferKey::Data(p) if !p.query.is_empty() || !p.lambda.is_empty());
        let output_type = if partitioned { PARTITIONING_FAILED } else { PROCESSING_FAILED };
        tracing::error!(stream = %ctx.stream, shard = ctx.shard, key = key.unwrap_or(""),
            records = unit.records, error = %error, error_output_type = output_type,
            "the store refuses this object for good; writing it to the error output");
        let message = format!(
            "{} (rawData holds the whole object of {} records, in the stream's compression and \
             encryption)",
            error.message, unit.records
        );
        let line = ErrorDocument {
            attempts_made: 1,
            arrival_ms: unit.oldest_arrival_ms,
            code: &error.code,
            message: &message,
            attempt_ending_ms: now_ms(),
            raw_data: &unit.body,
            extra: Extra::Object { key, records: unit.records },
        }
        .to_json_line();
        self.put_errors(ctx, unit, output_type, line, unit.records)
    }

    /// Writes JSON-lines error documents of `output_type` for `unit` (encrypted like data
    /// objects when the stream encrypts). `Ok(false)` on shutdown.
    pub fn put_errors(
        &self,
        ctx: &SinkContext,
        unit: &Unit,
        output_type: &'static str,
        lines: Vec<u8>,
        records: u64,
    ) -> SinkResult<bool> {
        if records == 0 {
            return Ok(true);
        }
        let key = self.error_key(ctx, unit, output_type)?;
        // Encrypted streams encrypt their error objects too: they carry record data.
        let sealed = self.codec.seal(lines.clone().into()).map_err(SinkError::Encrypt)?;
        if !self.put(ctx, key.clone(), sealed, None) {
            return Ok(false);
        }
        tracing::warn!(stream = %ctx.stream, shard = ctx.shard, key = %key, records,
            error_output_type = output_type,
            "records could not be delivered; written to the error output");
        ctx.metrics.error_output(&ctx.stream, output_type, records);
        let recent = crate::telemetry::Recent::global();
        recent.error_written(
            &ctx.stream,
            ctx.shard,
            &key.to_string(),
            output_type,
            records,
            &lines,
        );
        Ok(true)
    }
}

impl ErrorOutput for S3Output {
    /// Writes an error unit (documents the pipeline already wrote) under its output type.
    fn deliver_errors(&self, unit: &Unit, ctx: &SinkContext) -> SinkResult<bool> {
        let BufferKey::Errors(output_type) = unit.key else {
            return Err(SinkError::DataUnitAsErrors);
        };
        let key = self.error_key(ctx, unit, output_type)?;
        if !self.put(ctx, key.clone(), unit.body.clone(), None) {
            return Ok(false);
        }
        tracing::warn!(stream = %ctx.stream, shard = ctx.shard, key = %key,
            records = unit.records, error_output_type = output_type,
            "records could not be delivered as they are; written to the error output");
        ctx.metrics.error_output(&ctx.stream, output_type, unit.records);
        let recent = crate::telemetry::Recent::global();
        let key = key.to_string();
        recent.error_written(&ctx.stream, ctx.shard, &key, output_type, unit.records, &unit.body);
        Ok(true)
    }
}

/// A key variant for `output_type` documents derived from a data unit.
fn mix(variant: u64, output_type: &str) -> u64 {
    let mut md5 = Md5::new();
    md5.update(variant.to_be_bytes());
    md5.update(output_type.as_bytes());
    let digest: [u8; 16] = md5.finalize().into();
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")).max(1)
}

/// The S3 destination (or a source-record backup): every data unit is one object under
/// `Prefix`.
pub struct S3Sink {
    pub output: S3Output,
    /// Counted as `BackupToS3.*` rather than `DeliveryToS3.*`.
    pub backup: bool,
}

impl Sink for S3Sink {
    fn error_output(&self) -> &dyn ErrorOutput {
        &self.output
    }

    fn deliver(&self, unit: &Unit, ctx: &SinkContext) -> SinkResult<bool> {
        let out = &self.output;
        let key = match out.data_key_or_refuse(ctx, unit)? {
            Ok(key) => key,
            Err(delivered) => return Ok(delivered),
        };
        match out.try_put(ctx, &key, unit.body.clone(), out.codec.content_encoding()) {
            Put::Written => {}
            Put::Shutdown => return Ok(false),
            Put::Refused(e) => return out.put_refused_object(ctx, unit, Some(&key), &e),
        }
        tracing::debug!(stream = %ctx.stream, shard = ctx.shard, key = %key, backup = self.backup,
            records = unit.records, bytes = unit.bytes, object_bytes = unit.body.len(), "delivered object");
        if self.backup {
            ctx.metrics.backed_up(&ctx.stream, unit.records, unit.bytes);
        } else {
            ctx.metrics.delivered(&ctx.stream, unit.records, unit.bytes, unit.body.len() as u64);
            let object = crate::telemetry::recent::DeliveredObject {
                at_ms: crate::clock::now_ms(),
                shard: ctx.shard,
                key: key.to_string(),
                bytes: unit.body.len() as u64,
                records: unit.records,
            };
            crate::telemetry::Recent::global().object_delivered(&ctx.stream, object);
        }
        Ok(true)
    }
}
