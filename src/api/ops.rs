//! The operations: decode and check a request, call the stream, shape the answer.

use std::borrow::Cow;
use std::time::Instant;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use bytes::{Bytes, BytesMut};
use serde::Deserialize;

use super::describe;
use super::error::put_record_error;
use super::record_id::record_id;
use super::wire::*;
use super::{ApiError, AppState, ErrorType};
use crate::names::is_valid_stream_name;
use crate::processors::cloudwatch::looks_like_cloudwatch_logs;
use crate::registry::DeliveryStream;

/// Largest record, in bytes after base64 decoding (Firehose's 1,000 KiB).
pub const MAX_RECORD_BYTES: usize = 1_024_000;
/// Most records in one PutRecordBatch.
pub const MAX_BATCH_RECORDS: usize = 500;
/// Most data bytes (decoded) in one PutRecordBatch.
pub const MAX_BATCH_BYTES: usize = 4 << 20;

/// Standard alphabet; padding optional because some producers strip it, but padding in the
/// middle of a value (two base64 strings concatenated) is still an error.
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(crate) fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::new(
            ErrorType::Serialization,
            "request body is empty; send a JSON object",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorType::Serialization,
            format!("request body is not a valid Firehose JSON request: {e}"),
        )
    })
}

fn stream_name<'a>(name: Option<&'a Cow<'a, str>>) -> Result<&'a str, ApiError> {
    let name =
        name.ok_or_else(|| ApiError::constraint("deliveryStreamName", "Member must not be null"))?;
    if !is_valid_stream_name(name) {
        return Err(ApiError::constraint(
            "deliveryStreamName",
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length 1..=64",
        ));
    }
    Ok(name)
}

/// A stream that decompresses CloudWatch Logs records (`Decompression`) takes nothing else:
/// Firehose answers other sources with `InvalidSourceException`. A record that is not gzip'd
/// cannot come from a CloudWatch Logs subscription.
fn check_source(stream: &DeliveryStream, payloads: &[Bytes]) -> Result<(), ApiError> {
    let config = stream.config();
    if !config.s3().processing_configuration.as_ref().is_some_and(|p| p.decompresses()) {
        return Ok(());
    }
    match payloads.iter().position(|p| !looks_like_cloudwatch_logs(p)) {
        None => Ok(()),
        Some(index) => Err(ApiError::new(
            ErrorType::InvalidSource,
            format!(
                "Only requests from CloudWatch Logs are supported when CloudWatch Logs \
                 decompression is enabled: record {index} of the call is not gzip'd (delivery \
                 stream {} has a Decompression processor; send to another stream, or remove \
                 the processor)",
                stream.name
            ),
        )),
    }
}

fn lookup(state: &AppState, name: &str) -> Result<std::sync::Arc<DeliveryStream>, ApiError> {
    state.registry.get(name).ok_or_else(|| state.registry.not_found(name).into())
}

/// Decodes every record into one buffer (one allocation per call) and hands out slices.
fn decode_records(records: &[RecordInput<'_>]) -> Result<Vec<Bytes>, ApiError> {
    let estimate: usize = records
        .iter()
        .map(|r| r.data.as_deref().map_or(0, |d| base64::decoded_len_estimate(d.len())))
        .sum();
    let mut buf = BytesMut::zeroed(estimate);
    let mut ends = Vec::with_capacity(records.len());
    let mut end = 0;
    for (i, record) in records.iter().enumerate() {
        let data = record.data.as_deref().ok_or_else(|| {
            ApiError::constraint(
                &format!("records.{}.member.data", i + 1),
                "Member must not be null",
            )
        })?;
        let n = BASE64.decode_slice(data.as_bytes(), &mut buf[end..]).map_err(|e| {
            ApiError::new(
                ErrorType::Serialization,
                format!(
                    "Records[{i}].Data is not valid base64 ({e}); base64-encode the record bytes exactly once \
                     (AWS CLI v2 expects base64 unless you pass --cli-binary-format raw-in-base64-out)"
                ),
            )
        })?;
        if n > MAX_RECORD_BYTES {
            return Err(ApiError::constraint(
                &format!("records.{}.member.data", i + 1),
                &format!(
                    "Member must have length less than or equal to {MAX_RECORD_BYTES} \
                     (Records[{i}] decodes to {n} bytes; split or compress it)"
                ),
            ));
        }
        end += n;
        ends.push(end);
    }
    if end > MAX_BATCH_BYTES {
        return Err(ApiError::new(
            ErrorType::InvalidArgument,
            format!(
                "records total {end} bytes; a PutRecordBatch call carries at most {MAX_BATCH_BYTES} bytes \
                 (4 MiB) of record data: split it into smaller calls"
            ),
        ));
    }
    buf.truncate(end);
    let all = buf.freeze();
    let mut start = 0;
    Ok(ends
        .into_iter()
        .map(|end| {
            let slice = all.slice(start..end);
            start = end;
            slice
        })
        .collect())
}

/// PutRecordBatch's members, checked: the stream name and 1 to 500 records.
fn batch_members<'a>(
    input: &'a PutRecordBatchInput<'a>,
) -> Result<(&'a str, &'a [RecordInput<'a>]), ApiError> {
    let name = stream_name(input.delivery_stream_name.as_ref())?;
    let records = input
        .records
        .as_deref()
        .ok_or_else(|| ApiError::constraint("records", "Member must not be null"))?;
    if records.is_empty() {
        return Err(ApiError::constraint(
            "records",
            "Member must have length greater than or equal to 1",
        ));
    }
    if records.len() > MAX_BATCH_RECORDS {
        return Err(ApiError::constraint(
            "records",
            &format!(
                "Member must have length less than or equal to {MAX_BATCH_RECORDS} (got {}; split the batch)",
                records.len()
            ),
        ));
    }
    Ok((name, records))
}

/// PutRecord's members, checked: the stream name and the record.
fn record_members<'a>(
    input: &'a PutRecordInput<'a>,
) -> Result<(&'a str, &'a RecordInput<'a>), ApiError> {
    let name = stream_name(input.delivery_stream_name.as_ref())?;
    let record = input
        .record
        .as_ref()
        .ok_or_else(|| ApiError::constraint("record", "Member must not be null"))?;
    Ok((name, record))
}

/// PutRecord's record, decoded, with errors naming the member the way PutRecord spells it.
fn decode_record(record: &RecordInput<'_>) -> Result<Bytes, ApiError> {
    let mut payload = decode_records(std::slice::from_ref(record)).map_err(|mut e| {
        e.message = e.message.replace("Records[0]", "Record").replace("records.1.member", "record");
        e
    })?;
    Ok(payload.pop().expect("one payload per record"))
}

/// Everything PutRecordBatch does with a request body short of looking the stream up and
/// appending: the stream name and the decoded records, or the error the caller gets. The
/// entry point of the `put_records` fuzz target (`crate::fuzzing`).
pub(crate) fn decode_put_record_batch(body: &[u8]) -> Result<(String, Vec<Bytes>), ApiError> {
    let input: PutRecordBatchInput = parse(body)?;
    let (name, records) = batch_members(&input)?;
    Ok((name.to_owned(), decode_records(records)?))
}

/// [`decode_put_record_batch`] for PutRecord.
pub(crate) fn decode_put_record(body: &[u8]) -> Result<(String, Bytes), ApiError> {
    let input: PutRecordInput = parse(body)?;
    let (name, record) = record_members(&input)?;
    Ok((name.to_owned(), decode_record(record)?))
}

pub async fn put_record_batch(state: &AppState, body: &[u8]) -> Result<String, ApiError> {
    let started = Instant::now();
    let input: PutRecordBatchInput = parse(body)?;
    let (name, records) = batch_members(&input)?;
    let stream = lookup(state, name)?;
    let payloads = decode_records(records)?;
    check_source(&stream, &payloads)?;
    let bytes: usize = payloads.iter().map(Bytes::len).sum();
    let count = payloads.len();
    let results = stream.put(payloads).await?;

    let mut failed = 0;
    let mut first_failure = None;
    let mut encrypted = false;
    let entries: Vec<_> = results
        .into_iter()
        .map(|result| match result {
            Ok(location) => {
                encrypted |= location.encrypted;
                PutRecordBatchResponseEntry::Ok { record_id: record_id(&location) }
            }
            Err(cause) => {
                if failed == 0 {
                    tracing::warn!(stream = %stream.name, error = %cause, "records not stored");
                }
                failed += 1;
                let failure = put_record_error(&stream.name, &cause);
                let entry = PutRecordBatchResponseEntry::Failed {
                    error_code: failure.kind.name(),
                    error_message: failure.message.clone(),
                };
                first_failure.get_or_insert(failure);
                entry
            }
        })
        .collect();
    // When nothing was stored, answer the whole call with the error so SDKs back off and retry
    // by themselves (they retry 503s, never per-record failures inside a 200).
    if failed == count {
        if let Some(failure) = first_failure {
            state.metrics.throttled(&stream.name, count);
            return Err(failure);
        }
    }
    state.metrics.incoming(
        &stream.name,
        count - failed,
        bytes,
        "PutRecordBatch",
        started.elapsed(),
    );
    let output =
        PutRecordBatchOutput { failed_put_count: failed, encrypted, request_responses: entries };
    Ok(serde_json::to_string(&output).expect("serializable"))
}

pub async fn put_record(state: &AppState, body: &[u8]) -> Result<String, ApiError> {
    let started = Instant::now();
    let input: PutRecordInput = parse(body)?;
    let (name, record) = record_members(&input)?;
    let stream = lookup(state, name)?;
    let payload = decode_record(record)?;
    check_source(&stream, std::slice::from_ref(&payload))?;
    let bytes = payload.len();
    let stored = stream.put(vec![payload]).await?.pop().expect("one result per record");
    let location = stored.map_err(|cause| {
        tracing::warn!(stream = %stream.name, error = %cause, "record not stored");
        put_record_error(&stream.name, &cause)
    })?;
    state.metrics.incoming(&stream.name, 1, bytes, "PutRecord", started.elapsed());
    let output = PutRecordOutput { record_id: record_id(&location), encrypted: location.encrypted };
    Ok(serde_json::to_string(&output).expect("serializable"))
}

/// `visible` says which streams the caller may see (all, unless its key has an allow-list).
pub fn list_delivery_streams(
    state: &AppState,
    body: &[u8],
    visible: impl Fn(&str) -> bool,
) -> Result<String, ApiError> {
    let input: ListDeliveryStreamsInput = if body.iter().all(u8::is_ascii_whitespace) {
        ListDeliveryStreamsInput::default()
    } else {
        parse(body)?
    };
    let limit = input.limit.unwrap_or(10);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::constraint(
            "limit",
            &format!("Member must be between 1 and 10000 (got {limit})"),
        ));
    }
    if let Some(kind) = input.delivery_stream_type.as_deref() {
        const TYPES: [&str; 4] =
            ["DirectPut", "KinesisStreamAsSource", "MSKAsSource", "DatabaseAsSource"];
        if !TYPES.contains(&kind) {
            return Err(ApiError::constraint(
                "deliveryStreamType",
                &format!("Member must satisfy enum value set: {TYPES:?} (got {kind:?})"),
            ));
        }
    }
    let mut names = state.registry.names();
    names.retain(|n| visible(n));
    if let Some(kind) = input.delivery_stream_type.as_deref() {
        let reads_kinesis = |name: &String| {
            (state.registry.get(name)).is_some_and(|s| {
                s.definition().config.kinesis_stream_source_configuration.is_some()
            })
        };
        match kind {
            "DirectPut" => names.retain(|n| !reads_kinesis(n)),
            "KinesisStreamAsSource" => names.retain(reads_kinesis),
            _ => names.clear(),
        }
    }
    if let Some(start) = &input.exclusive_start_delivery_stream_name {
        names.retain(|n| n.as_str() > start.as_str());
    }
    let has_more = names.len() > limit as usize;
    names.truncate(limit as usize);
    let output = ListDeliveryStreamsOutput {
        delivery_stream_names: names,
        has_more_delivery_streams: has_more,
    };
    Ok(serde_json::to_string(&output).expect("serializable"))
}

pub fn describe_delivery_stream(state: &AppState, body: &[u8]) -> Result<String, ApiError> {
    let input: DescribeDeliveryStreamInput = parse(body)?;
    let name = input
        .delivery_stream_name
        .as_deref()
        .ok_or_else(|| ApiError::constraint("deliveryStreamName", "Member must not be null"))?;
    if !is_valid_stream_name(name) {
        return Err(ApiError::constraint(
            "deliveryStreamName",
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length 1..=64",
        ));
    }
    if let Some(limit) = input.limit {
        if !(1..=10_000).contains(&limit) {
            return Err(ApiError::constraint(
                "limit",
                &format!("Member must be between 1 and 10000 (got {limit})"),
            ));
        }
    }
    let _ = input.exclusive_start_destination_id; // one destination per stream: nothing to page
    let stream = lookup(state, name)?;
    let output = serde_json::json!({ "DeliveryStreamDescription": describe::description(&stream) });
    Ok(output.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(data: &[&str]) -> Vec<RecordInput<'static>> {
        data.iter().map(|d| RecordInput { data: Some(Cow::Owned((*d).to_string())) }).collect()
    }

    #[test]
    fn records_decode_into_slices_of_one_buffer() {
        let out = decode_records(&input(&["YQo=", "", "Ygo", "aGVsbG8="])).unwrap();
        assert_eq!(
            out,
            vec![Bytes::from("a\n"), Bytes::new(), Bytes::from("b\n"), Bytes::from("hello")]
        );
    }

    #[test]
    fn concatenated_base64_is_rejected_with_the_record_index() {
        let err = decode_records(&input(&["YQo=", "YQo=YQo="])).unwrap_err();
        assert_eq!(err.kind, ErrorType::Serialization);
        assert!(err.message.contains("Records[1].Data"), "{}", err.message);
    }

    #[test]
    fn a_record_over_1000_kib_is_a_validation_error_naming_it() {
        let big = BASE64.encode(vec![0u8; MAX_RECORD_BYTES + 1]);
        let ok = BASE64.encode(vec![0u8; MAX_RECORD_BYTES]);
        assert!(decode_records(&input(&[&ok])).is_ok());
        let err = decode_records(&input(&["YQ==", &big])).unwrap_err();
        assert_eq!(err.kind, ErrorType::Validation);
        assert!(err.message.contains("records.2.member.data"), "{}", err.message);
    }

    #[test]
    fn more_than_4_mib_in_one_call_is_an_invalid_argument() {
        let chunk = BASE64.encode(vec![7u8; 1_000_000]);
        let five: Vec<&str> = vec![&chunk; 5];
        let err = decode_records(&input(&five)).unwrap_err();
        assert_eq!(err.kind, ErrorType::InvalidArgument);
        assert!(decode_records(&input(&five[..4])).is_ok());
    }
}
