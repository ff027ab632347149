//! Firehose's HTTP endpoint delivery: the buffer's records in requests of at most 10,000,
//! each with a request id derived from the buffer's place in the log, so retries and replays
//! after a restart carry the same id and bytes and receivers can deduplicate. Records still
//! failing after `RetryOptions.DurationInSeconds` (or refused with 413) go to S3 as
//! `http-endpoint-failed` documents.

use hydrant_destinations::deliver_with_retry;
use hydrant_destinations::http::{
    error_output_json, request_id_for, FailedRecord, HttpDeliveryRequest, HttpDestination,
    ERROR_OUTPUT_TYPE,
};

use crate::clock::now_ms;
use crate::delivery::buffers::{Layout, Unit};
use crate::delivery::sink::{ErrorOutput, Sink, SinkContext, SinkResult};
use crate::destination::S3Output;

const METRIC: &str = super::DESCRIPTOR.metric;
/// Firehose's limit of records in one request.
const MAX_RECORDS: usize = 10_000;

pub struct HttpSink {
    pub destination: HttpDestination,
    pub source_arn: String,
    /// Failed records (and error units) go here.
    pub errors: S3Output,
}

impl Sink for HttpSink {
    fn layout(&self) -> Layout {
        Layout::Records
    }

    fn error_output(&self) -> &dyn ErrorOutput {
        &self.errors
    }

    fn deliver(&self, unit: &Unit, ctx: &SinkContext) -> SinkResult<bool> {
        let batch = format!(
            "{}-{}-{}-{}-{:x}",
            ctx.stream, ctx.shard, unit.first.seq, unit.last.seq, unit.variant
        );
        let mut lines = Vec::new();
        let mut failed = 0u64;
        for (chunk_index, chunk) in unit.items.chunks(MAX_RECORDS).enumerate() {
            let request = HttpDeliveryRequest {
                request_id: request_id_for(&self.source_arn, &format!("{batch}/{chunk_index}")),
                // Derived from the records, not the clock, so a replay sends the same bytes.
                timestamp_ms: chunk.last().map_or(0, |r| r.arrival_ms.max(0) as u64),
                records: chunk.iter().map(|r| r.data.clone()).collect(),
            };
            let on_retry = |e: &hydrant_destinations::DestinationError,
                            attempt,
                            wait: std::time::Duration| {
                crate::destination::attempt_failed(ctx, &super::DESCRIPTOR, e);
                tracing::warn!(stream = %ctx.stream, shard = ctx.shard, destination = super::DESCRIPTOR.log_name,
                    request_id = %request.request_id, attempt, retry_in_ms = wait.as_millis() as u64,
                    error = %e, "HTTP endpoint delivery failed; will retry");
            };
            let Some(outcome) =
                ctx.run(deliver_with_retry(&self.destination, request.clone(), on_retry))
            else {
                return Ok(false);
            };
            if let Err(gave_up) = outcome {
                tracing::error!(stream = %ctx.stream, shard = ctx.shard, attempts = gave_up.attempts,
                    records = chunk.len(), error = %gave_up.error,
                    "HTTP endpoint delivery failed for good; writing the records to S3");
                let ended = now_ms().max(0) as u64;
                for r in chunk {
                    // Unique in the stream: sequence numbers are per shard.
                    let data_id = format!("{}-{}.{}", ctx.shard, r.pos.seq, r.pos.sub);
                    lines.extend(
                        error_output_json(&FailedRecord {
                            attempts_made: gave_up.attempts,
                            arrival_timestamp_ms: r.arrival_ms.max(0) as u64,
                            error_code: &gave_up.error.code,
                            error_message: &gave_up.error.message,
                            attempt_ending_timestamp_ms: ended,
                            raw_data: &r.data,
                            subsequence_number: u64::from(r.pos.sub),
                            data_id: &data_id,
                        })
                        .into_bytes(),
                    );
                    lines.push(b'\n');
                }
                failed += chunk.len() as u64;
            }
        }
        let delivered = unit.records.saturating_sub(failed);
        ctx.metrics.delivered_to(&ctx.stream, METRIC, delivered, unit.records, unit.bytes);
        tracing::debug!(stream = %ctx.stream, shard = ctx.shard, records = delivered, failed,
            "delivered to the HTTP endpoint");
        self.errors.put_errors(ctx, unit, ERROR_OUTPUT_TYPE, lines, failed)
    }
}
