//! Firehose's Lambda event and response, for porting a Lambda transform with little change.
//!
//! The types and field names follow the `aws_lambda_events` crate's `KinesisFirehoseEvent`
//! family, and serialise to exactly the JSON Firehose sends and expects: camelCase names,
//! record data as base64.
//!
//! ```ignore
//! use hydrant_transform_sdk::json::*;
//!
//! fn handler(event: KinesisFirehoseEvent) -> KinesisFirehoseResponse {
//!     let records = event.records.into_iter().map(|r| {
//!         KinesisFirehoseResponseRecord::ok(r.record_id, r.data.to_ascii_uppercase())
//!     });
//!     KinesisFirehoseResponse { records: records.collect() }
//! }
//! hydrant_transform_sdk::transform_json!(handler);
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `result` value: deliver `data`.
pub const TRANSFORMED_STATE_OK: &str = "Ok";
/// `result` value: discard the record on purpose.
pub const TRANSFORMED_STATE_DROPPED: &str = "Dropped";
/// `result` value: send the record to the error output.
pub const TRANSFORMED_STATE_PROCESSING_FAILED: &str = "ProcessingFailed";

/// The event one invocation receives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KinesisFirehoseEvent {
    /// Unique id of this invocation.
    pub invocation_id: String,
    /// ARN of the delivery stream.
    pub delivery_stream_arn: String,
    /// Set only for a Kinesis-stream source (never by Hydrant, which is DirectPut only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_kinesis_stream_arn: Option<String>,
    /// Region of the delivery stream.
    pub region: String,
    /// The records of the batch.
    pub records: Vec<KinesisFirehoseEventRecord>,
}

/// One input record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KinesisFirehoseEventRecord {
    /// Opaque id; the response must echo it exactly once.
    pub record_id: String,
    /// Epoch milliseconds.
    pub approximate_arrival_timestamp: i64,
    /// The record's bytes (base64 on the wire).
    #[serde(with = "base64_bytes")]
    pub data: Vec<u8>,
}

/// What the function returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KinesisFirehoseResponse {
    /// One entry per input record, any order.
    pub records: Vec<KinesisFirehoseResponseRecord>,
}

/// The function's verdict on one record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KinesisFirehoseResponseRecord {
    /// The input record's id.
    pub record_id: String,
    /// `Ok`, `Dropped` or `ProcessingFailed`.
    pub result: String,
    /// The transformed bytes (base64 on the wire); required for `Ok`.
    #[serde(default, with = "base64_opt", skip_serializing_if = "Option::is_none")]
    pub data: Option<Vec<u8>>,
    /// Partition keys for dynamic partitioning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<KinesisFirehoseResponseRecordMetadata>,
    /// Hydrant extension: message for the error output of a `ProcessingFailed` record.
    /// Firehose ignores unknown fields, so a ported function may keep setting it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// `metadata` of a response record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KinesisFirehoseResponseRecordMetadata {
    /// Values for `!{partitionKeyFromLambda:key}`.
    pub partition_keys: BTreeMap<String, String>,
}

impl KinesisFirehoseResponseRecord {
    /// `Ok` with new data.
    pub fn ok(record_id: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        KinesisFirehoseResponseRecord {
            record_id: record_id.into(),
            result: TRANSFORMED_STATE_OK.to_string(),
            data: Some(data.into()),
            ..Default::default()
        }
    }

    /// `Dropped`.
    pub fn dropped(record_id: impl Into<String>) -> Self {
        KinesisFirehoseResponseRecord {
            record_id: record_id.into(),
            result: TRANSFORMED_STATE_DROPPED.to_string(),
            ..Default::default()
        }
    }

    /// `ProcessingFailed`, with an optional message for the error output.
    pub fn processing_failed(record_id: impl Into<String>, message: Option<String>) -> Self {
        KinesisFirehoseResponseRecord {
            record_id: record_id.into(),
            result: TRANSFORMED_STATE_PROCESSING_FAILED.to_string(),
            error_message: message,
            ..Default::default()
        }
    }

    /// Adds a partition key.
    #[must_use]
    pub fn with_partition_key(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata
            .get_or_insert_with(Default::default)
            .partition_keys
            .insert(key.into(), value.into());
        self
    }
}

mod base64_bytes {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(data))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        STANDARD.decode(s.as_bytes()).map_err(serde::de::Error::custom)
    }
}

mod base64_opt {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match data {
            Some(d) => s.serialize_str(&STANDARD.encode(d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let s = <Option<std::borrow::Cow<'de, str>>>::deserialize(d)?;
        s.map(|s| STANDARD.decode(s.as_bytes()).map_err(serde::de::Error::custom)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_firehose_event_example_parses() {
        let event: KinesisFirehoseEvent = serde_json::from_str(
            r#"{"invocationId":"1c2d","deliveryStreamArn":"arn:aws:firehose:us-east-1:123456789012:deliverystream/clicks",
                "region":"us-east-1","records":[{"recordId":"4954","approximateArrivalTimestamp":1510772160000,
                "data":"SGVsbG8gV29ybGQ="}]}"#,
        )
        .unwrap();
        assert_eq!(event.records[0].data, b"Hello World");
    }

    #[test]
    fn a_response_serialises_as_firehose_expects() {
        let r = KinesisFirehoseResponse {
            records: vec![
                KinesisFirehoseResponseRecord::ok("a", b"hi".to_vec()).with_partition_key("k", "v"),
                KinesisFirehoseResponseRecord::dropped("b"),
            ],
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"records":[{"recordId":"a","result":"Ok","data":"aGk=","metadata":{"partitionKeys":{"k":"v"}}},{"recordId":"b","result":"Dropped"}]}"#
        );
    }
}
