//! Test fixture for the per-record statuses, written in the whole-batch form:
//! a record containing `fail` is `ProcessingFailed`, one containing `drop` is `Dropped`,
//! every other record is delivered unchanged. A record containing `panic` makes the module
//! panic, failing the whole invocation (to test that path end to end).

use hydrant_transform_sdk::{Batch, Outcome};

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

hydrant_transform_sdk::transform_batch!(
    fn fail_some(batch: Batch) -> Vec<Outcome> {
        batch
            .records
            .iter()
            .map(|record| {
                if contains(record.data, b"panic") {
                    panic!("record {} asked to panic", record.record_id);
                } else if contains(record.data, b"fail") {
                    Outcome::failed(format!("record {} asked to fail", record.record_id))
                } else if contains(record.data, b"drop") {
                    Outcome::dropped()
                } else {
                    Outcome::unchanged(record)
                }
            })
            .collect()
    }
);
