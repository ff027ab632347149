//! Warehouse COPY: stage the buffer as an object in the intermediate bucket, then load it.
//!
//! The staged object's key is the load's id, and the loader commits the COPY together with a
//! `hydrant_load_checkpoints` row, so a replayed buffer (same key) is loaded once. Rows the
//! database rejects go to the error output as `redshift-failed` documents; a load that keeps
//! failing past `RetryOptions.DurationInSeconds` is skipped and a manifest of its staged
//! object is written under `errors/manifests/` for a manual backfill, as Firehose does.

use bytes::Bytes;
use hydrant_destinations::error_output::{ErrorDocument, Extra};
use hydrant_destinations::warehouse::{
    decompress, failure_manifest_json, record_spans, FailedLoad, LoadRequest, PgCopyOptions,
    PostgresLoader, RedshiftLoadRequest, RedshiftLoader,
};
use hydrant_destinations::{deliver_with_retry, GaveUp, Refused};

use crate::clock::now_ms;
use crate::delivery::buffers::Unit;
use crate::delivery::sink::{ErrorOutput, Sink, SinkContext, SinkResult};
use crate::destination::{Put, S3Output};

use super::{DESCRIPTOR, REDSHIFT_FAILED};

const METRIC: &str = DESCRIPTOR.metric;

/// How staged objects are loaded.
pub enum Loader {
    /// `COPY ... FROM STDIN`, the staged bytes streamed by Hydrant.
    Postgres { loader: PostgresLoader, options: PgCopyOptions },
    /// `COPY ... FROM 's3://<manifest>' MANIFEST`, run by Redshift itself.
    Redshift(RedshiftLoader),
}

pub struct WarehouseSink {
    /// The intermediate bucket (`S3Configuration`).
    pub staging: S3Output,
    pub loader: Loader,
    pub gzip: bool,
    /// `S3Configuration.Prefix` (no expressions), where manifests go under `manifests/`.
    pub prefix: String,
}

impl Sink for WarehouseSink {
    fn error_output(&self) -> &dyn ErrorOutput {
        &self.staging
    }

    fn deliver(&self, unit: &Unit, ctx: &SinkContext) -> SinkResult<bool> {
        let key = match self.staging.data_key_or_refuse(ctx, unit)? {
            Ok(key) => key,
            Err(delivered) => return Ok(delivered),
        };
        let encoding = self.staging.codec.content_encoding();
        match self.staging.try_put(ctx, &key, unit.body.clone(), encoding) {
            Put::Written => {}
            Put::Shutdown => return Ok(false),
            Put::Refused(e) => return self.staging.put_refused_object(ctx, unit, Some(&key), &e),
        }
        ctx.metrics.delivered(&ctx.stream, unit.records, unit.bytes, unit.body.len() as u64);
        let url = format!("s3://{}/{key}", self.staging.destination.bucket());
        let first_attempt = now_ms();
        let on_retry = |e: &hydrant_destinations::DestinationError,
                        attempt,
                        wait: std::time::Duration| {
            crate::destination::attempt_failed(ctx, &DESCRIPTOR, e);
            tracing::warn!(stream = %ctx.stream, shard = ctx.shard, destination = DESCRIPTOR.log_name,
                object = %url, attempt, retry_in_ms = wait.as_millis() as u64, error = %e,
                "COPY failed; will retry");
        };
        let outcome = match &self.loader {
            Loader::Postgres { loader, .. } => {
                let request = LoadRequest {
                    // The object's full URL: two Hydrants staging in different buckets under
                    // the same stream name never take each other's loads for their own.
                    load_id: url.clone(),
                    object_url: url.clone(),
                    body: unit.body.clone(),
                    gzip: self.gzip,
                };
                match ctx.run(deliver_with_retry(loader, request, on_retry)) {
                    None => return Ok(false),
                    Some(r) => r.map_err(|g| (g.error, g.attempts, g.rejected)),
                }
            }
            Loader::Redshift(loader) => {
                let manifest_key = format!(
                    "{}manifests/{}",
                    self.prefix,
                    key.strip_prefix(&self.prefix).unwrap_or(&key)
                );
                let request = RedshiftLoadRequest {
                    load_id: manifest_key.clone(),
                    object_urls: vec![url.clone()],
                    manifest_key,
                };
                match ctx.run(deliver_with_retry(loader, request, on_retry)) {
                    None => return Ok(false),
                    Some(r) => r.map_err(|g: GaveUp<_>| (g.error, g.attempts, g.rejected)),
                }
            }
        };
        match outcome {
            Ok(rejected) => {
                let loaded = unit.records.saturating_sub(rejected.len() as u64);
                ctx.metrics.delivered_to(&ctx.stream, METRIC, loaded, unit.records, unit.bytes);
                tracing::debug!(stream = %ctx.stream, shard = ctx.shard, object = %url,
                    rows = loaded, rejected = rejected.len(), "loaded staged object");
                self.reject_rows(ctx, unit, &rejected)
            }
            Err((error, attempts, rejected)) => {
                tracing::error!(stream = %ctx.stream, shard = ctx.shard, object = %url, attempts,
                    error = %error, "COPY kept failing for RetryOptions.DurationInSeconds; \
                    skipping the batch and writing a manifest under errors/manifests/ for a backfill");
                let manifest = failure_manifest_json(&FailedLoad {
                    load_id: key.clone(),
                    object_urls: vec![url],
                    error_code: error.code.clone(),
                    error_message: error.message.clone(),
                    attempts_made: attempts,
                    first_attempt_timestamp: first_attempt.max(0) as u64,
                    attempt_ending_timestamp: now_ms().max(0) as u64,
                });
                let manifest_key = format!("errors/manifests/{key}");
                if !self.staging.put(ctx, manifest_key, manifest.into(), None) {
                    return Ok(false);
                }
                ctx.metrics.error_output(&ctx.stream, "redshift-skipped", unit.records);
                self.reject_rows(ctx, unit, &rejected)
            }
        }
    }
}

impl WarehouseSink {
    /// Rows the database refused, as error documents with the row's bytes.
    fn reject_rows(
        &self,
        ctx: &SinkContext,
        unit: &Unit,
        rejected: &[Refused],
    ) -> SinkResult<bool> {
        if rejected.is_empty() {
            return Ok(true);
        }
        let (plain, spans) = match &self.loader {
            // Warehouse streams never encrypt objects (validation refuses it): the database
            // must read them, so the body is the staged object as is.
            Loader::Postgres { options, .. } => {
                let plain = decompress(&unit.body, self.gzip)?;
                let spans = record_spans(&plain, options);
                (plain, spans)
            }
            Loader::Redshift(_) => (Bytes::new(), Vec::new()),
        };
        let mut lines = Vec::new();
        for Refused { record: r, attempts } in rejected {
            let raw = spans.get(r.index).map(|s| &plain[s.clone()]).unwrap_or_default();
            ErrorDocument {
                attempts_made: *attempts,
                arrival_ms: unit.oldest_arrival_ms,
                code: &r.code,
                message: &r.message,
                attempt_ending_ms: now_ms(),
                raw_data: raw,
                extra: Extra::None,
            }
            .write_json_line(&mut lines);
        }
        self.staging.put_errors(ctx, unit, REDSHIFT_FAILED, lines, rejected.len() as u64)
    }
}
