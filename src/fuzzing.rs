//! Entry points for the fuzz targets in `fuzz/` (docs/fuzzing.md): the decoders of untrusted
//! bytes that are not public otherwise. Not an API: hidden from the documentation and free to
//! change with the code it reaches into. The other targets call public functions directly
//! (`plan::parse_with_env`, `log::embedded::Shard::open`, `codec::encryption::decrypt`, ...).

use bytes::Bytes;

use crate::api::ApiError;
use crate::wasm_host::{InputRecord, InvocationError, RecordOutcome};

/// A PutRecordBatch request body, decoded and checked as the API does before it looks the
/// stream up: the stream name and the records' bytes, or the error the caller would get.
pub fn decode_put_record_batch(body: &[u8]) -> Result<(String, Vec<Bytes>), ApiError> {
    crate::api::ops::decode_put_record_batch(body)
}

/// [`decode_put_record_batch`] for a PutRecord body.
pub fn decode_put_record(body: &[u8]) -> Result<(String, Bytes), ApiError> {
    crate::api::ops::decode_put_record(body)
}

/// A Kinesis request body in CBOR, as the JSON request it means (or the caller's error).
pub fn kinesis_cbor_request(body: &[u8]) -> Result<Vec<u8>, ApiError> {
    crate::api::kinesis::cbor::request_to_json(body)
}

/// A transform's binary-ABI response for `records`, decoded with Firehose's rules.
pub fn decode_transform_binary_response(
    response: &[u8],
    records: &[InputRecord],
) -> Result<Vec<RecordOutcome>, InvocationError> {
    crate::wasm_host::abi::decode_binary_response(Bytes::copy_from_slice(response), records)
}

/// A transform's Firehose-JSON response for `records`, decoded with Firehose's rules.
pub fn decode_transform_json_response(
    response: &[u8],
    records: &[InputRecord],
) -> Result<Vec<RecordOutcome>, InvocationError> {
    crate::wasm_host::abi::decode_json_response(response, records)
}
