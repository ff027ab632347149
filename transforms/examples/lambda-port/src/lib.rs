//! A Firehose Lambda transform ported with the JSON form: the handler body is what a Rust
//! Lambda using `aws_lambda_events::event::firehose` would contain. It parses each record as
//! JSON, adds `"processed": true`, and appends a newline; records that are not JSON objects
//! are marked `ProcessingFailed`. The record with `"partition"` set also gets a partition key.

use hydrant_transform_sdk::json::{
    KinesisFirehoseEvent, KinesisFirehoseResponse, KinesisFirehoseResponseRecord,
};
use serde_json::Value;

hydrant_transform_sdk::transform_json!(
    fn handler(event: KinesisFirehoseEvent) -> KinesisFirehoseResponse {
        let records = event
            .records
            .into_iter()
            .map(|record| match serde_json::from_slice::<Value>(&record.data) {
                Ok(Value::Object(mut doc)) => {
                    doc.insert("processed".into(), Value::Bool(true));
                    let partition = doc.get("partition").and_then(Value::as_str).map(str::to_owned);
                    let mut data = serde_json::to_vec(&doc).expect("a Value always serialises");
                    data.push(b'\n');
                    let out = KinesisFirehoseResponseRecord::ok(record.record_id, data);
                    match partition {
                        Some(p) => out.with_partition_key("partition", p),
                        None => out,
                    }
                }
                _ => KinesisFirehoseResponseRecord::processing_failed(
                    record.record_id,
                    Some("not a JSON object".into()),
                ),
            })
            .collect();
        KinesisFirehoseResponse { records }
    }
);
