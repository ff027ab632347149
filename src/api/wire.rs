//! Request and response shapes of the data-plane operations, as the Firehose model names them.
//!
//! Members are `Option` so that a missing required member becomes a ValidationException that
//! names it, like AWS, instead of a generic parse error. Unknown members are ignored, as AWS's
//! JSON protocol does, so newer SDKs keep working.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
pub struct PutRecordInput<'a> {
    #[serde(rename = "DeliveryStreamName", borrow)]
    pub delivery_stream_name: Option<Cow<'a, str>>,
    #[serde(rename = "Record", borrow)]
    pub record: Option<RecordInput<'a>>,
}

#[derive(Deserialize)]
pub struct PutRecordBatchInput<'a> {
    #[serde(rename = "DeliveryStreamName", borrow)]
    pub delivery_stream_name: Option<Cow<'a, str>>,
    #[serde(rename = "Records", borrow)]
    pub records: Option<Vec<RecordInput<'a>>>,
}

#[derive(Deserialize)]
pub struct RecordInput<'a> {
    /// Base64 of the record bytes. Borrowed: base64 never needs JSON escapes, except `\/`
    /// which some encoders emit, hence `Cow`.
    #[serde(rename = "Data", borrow)]
    pub data: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
pub struct PutRecordOutput {
    #[serde(rename = "RecordId")]
    pub record_id: String,
    #[serde(rename = "Encrypted")]
    pub encrypted: bool,
}

#[derive(Serialize)]
pub struct PutRecordBatchOutput {
    #[serde(rename = "FailedPutCount")]
    pub failed_put_count: usize,
    #[serde(rename = "Encrypted")]
    pub encrypted: bool,
    #[serde(rename = "RequestResponses")]
    pub request_responses: Vec<PutRecordBatchResponseEntry>,
}

/// Success entries carry only `RecordId`; failed ones only `ErrorCode` and `ErrorMessage`.
#[derive(Serialize)]
#[serde(untagged)]
pub enum PutRecordBatchResponseEntry {
    Ok {
        #[serde(rename = "RecordId")]
        record_id: String,
    },
    Failed {
        #[serde(rename = "ErrorCode")]
        error_code: &'static str,
        #[serde(rename = "ErrorMessage")]
        error_message: String,
    },
}

#[derive(Deserialize, Default)]
pub struct ListDeliveryStreamsInput {
    #[serde(rename = "Limit")]
    pub limit: Option<i64>,
    #[serde(rename = "DeliveryStreamType")]
    pub delivery_stream_type: Option<String>,
    #[serde(rename = "ExclusiveStartDeliveryStreamName")]
    pub exclusive_start_delivery_stream_name: Option<String>,
}

#[derive(Serialize)]
pub struct ListDeliveryStreamsOutput {
    #[serde(rename = "DeliveryStreamNames")]
    pub delivery_stream_names: Vec<String>,
    #[serde(rename = "HasMoreDeliveryStreams")]
    pub has_more_delivery_streams: bool,
}

#[derive(Deserialize)]
pub struct DescribeDeliveryStreamInput {
    #[serde(rename = "DeliveryStreamName")]
    pub delivery_stream_name: Option<String>,
    #[serde(rename = "Limit")]
    pub limit: Option<i64>,
    #[serde(rename = "ExclusiveStartDestinationId")]
    pub exclusive_start_destination_id: Option<String>,
}
