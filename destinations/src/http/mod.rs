//! Firehose's HTTP endpoint destination: POSTs each batch as
//! `{"requestId","timestamp","records":[{"data":<base64>}]}` with the `X-Amz-Firehose-*`
//! headers, counts only a `200` that echoes the request id as delivered, and retries everything
//! but a `413` with Firehose's backoff for `RetryOptions.DurationInSeconds`.
//! See `docs/destinations/http.md`.

mod config;
mod error_output;
mod request_builder;
mod retry;
mod service;

pub use config::{
    CommonAttribute, ConfigIssue, ContentEncoding, EndpointConfiguration, HttpEndpointInput,
    HttpEndpointSettings, HttpS3BackupMode, RequestConfiguration,
};
pub use error_output::{error_output_json, FailedRecord, ERROR_OUTPUT_TYPE};
pub use request_builder::{
    common_attributes_json, request_id_for, EncodedRequest, HttpDeliveryRequest,
    HttpRequestBuilder, MAX_RECORDS_PER_REQUEST,
};
pub use retry::{
    check_response, codes, firehose_retry_policy, DEFAULT_RETRY_DURATION, INITIAL_WAIT, JITTER,
    MAX_RESPONSE_BYTES, MAX_RETRY_DURATION, MAX_WAIT, RESPONSE_TIMEOUT,
};
pub use service::HttpDestination;
