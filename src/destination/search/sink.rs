//! OpenSearch / Elasticsearch: one `_bulk` request per buffer, document ids derived from the
//! records' positions in the log, so a replayed buffer overwrites rather than duplicates.
//! Documents refused for good, or still failing after `RetryOptions.DurationInSeconds`, are
//! written to S3 as failed-document JSON (`AmazonOpenSearchService-failed` /
//! `elasticsearch-failed`).

use hydrant_destinations::search::{
    BulkRequest, Document, FailedDocument, Failure, RecordPosition, SearchDestination,
    SearchSettings,
};
use hydrant_destinations::{deliver_with_retry, Refused};

use crate::clock::now_ms;
use crate::delivery::buffers::{Layout, Unit};
use crate::delivery::sink::{ErrorOutput, Sink, SinkContext, SinkResult};
use crate::destination::S3Output;

/// Metric name part, the same for both flavors.
const METRIC: &str = super::OPENSEARCH.metric;

pub struct SearchSink {
    pub destination: SearchDestination,
    pub settings: SearchSettings,
    /// Failed documents (and error units) go here.
    pub errors: S3Output,
}

impl Sink for SearchSink {
    fn layout(&self) -> Layout {
        Layout::Records
    }

    fn error_output(&self) -> &dyn ErrorOutput {
        &self.errors
    }

    fn deliver(&self, unit: &Unit, ctx: &SinkContext) -> SinkResult<bool> {
        let docs: Vec<Document> = unit
            .items
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let position = RecordPosition {
                    stream: &ctx.stream,
                    shard: ctx.shard,
                    sequence: r.pos.seq,
                    sub_index: r.pos.sub,
                };
                self.settings.document(i, position, r.arrival_ms, r.data.clone())
            })
            .collect();
        let request = BulkRequest { docs: docs.clone() };
        let on_retry = |e: &hydrant_destinations::DestinationError,
                        attempt,
                        wait: std::time::Duration| {
            crate::destination::attempt_failed(ctx, &super::OPENSEARCH, e);
            tracing::warn!(stream = %ctx.stream, shard = ctx.shard, destination = super::OPENSEARCH.log_name,
                attempt, retry_in_ms = wait.as_millis() as u64, error = %e,
                "_bulk failed (or some items did); will retry them");
        };
        let Some(outcome) = ctx.run(deliver_with_retry(&self.destination, request, on_retry))
        else {
            return Ok(false);
        };
        let ended = now_ms();
        let mut lines = Vec::new();
        let mut failed = 0u64;
        let mut write = |doc: &Document, failure: &Failure<'_>| {
            let arrival = unit.items[doc.index].arrival_ms;
            lines.extend(FailedDocument::new(doc, &self.settings, arrival, failure).to_json_line());
            failed += 1;
        };
        let rejected: Vec<Refused> = match &outcome {
            Ok(rejected) => rejected.clone(),
            Err(gave_up) => {
                tracing::error!(stream = %ctx.stream, shard = ctx.shard, attempts = gave_up.attempts,
                    documents = gave_up.remaining.docs.len(), error = %gave_up.error,
                    "documents still failing after RetryOptions.DurationInSeconds; writing them to S3");
                let failure = Failure::gave_up(&gave_up.error, gave_up.attempts, ended);
                for doc in &gave_up.remaining.docs {
                    write(doc, &failure);
                }
                gave_up.rejected.clone()
            }
        };
        for r in &rejected {
            write(&docs[r.record.index], &Failure::rejected(&r.record, r.attempts, ended));
        }
        let indexed = unit.records.saturating_sub(failed);
        ctx.metrics.delivered_to(&ctx.stream, METRIC, indexed, unit.records, unit.bytes);
        tracing::debug!(stream = %ctx.stream, shard = ctx.shard, documents = indexed, failed,
            "delivered _bulk request");
        let output_type = self.settings.flavor.error_output_type();
        self.errors.put_errors(ctx, unit, output_type, lines, failed)
    }
}
