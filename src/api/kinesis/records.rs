//! Records in and out: `PutRecord`, `PutRecords`, `GetShardIterator`, `GetRecords`.
//!
//! A record goes to the shard whose hash-key range holds the MD5 of its `PartitionKey` (or its
//! `ExplicitHashKey`), and is stored with its key ([`crate::kinesis::record`]). Its sequence
//! number is its log position ([`SequenceNumber`]), so iterators are positions and reads start
//! without a lookup.

use base64::Engine;
use md5::{Digest, Md5};
use serde::Deserialize;
use serde_json::{json as j, Value};

use super::{
    count, epoch_seconds, json, parse, parse_shard_id, shard_id_text, Context, StreamTarget,
};
use crate::api::ops::BASE64;
use crate::api::{ApiError, ErrorType};
use crate::kinesis::{
    record, shard_of, IteratorError, KinesisStream, SequenceNumber, ShardIterator, MAX_TOKEN_CHARS,
};
use crate::log::{
    Append, AppendError, Appended, Entry, ReadError, ReadLimit, Route, ShardId, ShardInfo,
};

/// Largest record: data and partition key together (Kinesis: 1 MiB).
pub const MAX_RECORD_BYTES: usize = 1 << 20;
/// Most records in one `PutRecords`.
pub const MAX_PUT_RECORDS: usize = 500;
/// Most bytes (data and keys) in one `PutRecords` (Kinesis: 5 MiB).
pub const MAX_PUT_BYTES: usize = 5 << 20;
/// Most bytes one `GetRecords` returns (Kinesis: 10 MiB).
pub const MAX_GET_BYTES: usize = 10 << 20;
/// Most log reads one `GetRecords` makes while an `AT_TIMESTAMP` iterator passes older records.
const MAX_SKIPPING_READS: usize = 16;

#[derive(Deserialize)]
struct RecordInput {
    #[serde(rename = "Data")]
    data: Option<String>,
    #[serde(rename = "PartitionKey")]
    partition_key: Option<String>,
    #[serde(rename = "ExplicitHashKey")]
    explicit_hash_key: Option<String>,
}

#[derive(Deserialize)]
struct PutRecordInput {
    #[serde(flatten)]
    target: StreamTarget,
    #[serde(flatten)]
    record: RecordInput,
    /// Accepted and not needed: positions already increase in the order records are stored.
    #[serde(rename = "SequenceNumberForOrdering")]
    _sequence_number_for_ordering: Option<String>,
}

#[derive(Deserialize)]
struct PutRecordsInput {
    #[serde(flatten)]
    target: StreamTarget,
    #[serde(rename = "Records")]
    records: Option<Vec<RecordInput>>,
}

/// A record checked and ready to append; `path` names it in errors (`records.3.member`).
fn prepare(record: &RecordInput, path: &str) -> Result<(Append, usize), ApiError> {
    let data = record
        .data
        .as_deref()
        .ok_or_else(|| ApiError::constraint(&format!("{path}data"), "Member must not be null"))?;
    let data = BASE64.decode(data.as_bytes()).map_err(|e| {
        ApiError::new(
            ErrorType::Serialization,
            format!(
                "{path}data is not valid base64 ({e}); base64-encode the record bytes exactly once"
            ),
        )
    })?;
    let key = record.partition_key.as_deref().ok_or_else(|| {
        ApiError::constraint(&format!("{path}partitionKey"), "Member must not be null")
    })?;
    if key.is_empty() || key.chars().count() > 256 {
        return Err(ApiError::constraint(
            &format!("{path}partitionKey"),
            "Member must have length between 1 and 256",
        ));
    }
    let size = data.len() + key.len();
    if size > MAX_RECORD_BYTES {
        return Err(ApiError::constraint(
            &format!("{path}data"),
            &format!(
                "Member must have length less than or equal to {MAX_RECORD_BYTES} with its \
                 partition key ({size} bytes; split or compress the record)"
            ),
        ));
    }
    let hash_key = match &record.explicit_hash_key {
        Some(text) => parse_hash_key(text).ok_or_else(|| {
            ApiError::new(
                ErrorType::InvalidArgument,
                format!(
                    "{path}explicitHashKey {text:?} is not a decimal number from 0 to \
                     2^128 - 1 (340282366920938463463374607431768211455)"
                ),
            )
        })?,
        None => u128::from_be_bytes(Md5::digest(key.as_bytes()).into()),
    };
    let append = Append { data: record::encode(key, &data), route: Route::HashKey(hash_key) };
    Ok((append, size))
}

/// `ExplicitHashKey`: `0|([1-9]\d{0,38})` within 128 bits.
pub(super) fn parse_hash_key(text: &str) -> Option<u128> {
    let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    text.parse().ok()
}

/// The per-record error of a record the log did not store.
fn append_failure(e: &AppendError) -> (ErrorType, String) {
    match e {
        AppendError::Full(_) => (
            ErrorType::ProvisionedThroughputExceeded,
            "Rate exceeded for shard: the log cannot store more now; retry with backoff".into(),
        ),
        _ => {
            tracing::warn!(error = %e, "Kinesis records not stored");
            (ErrorType::InternalFailure, "Internal service failure.".into())
        }
    }
}

/// The shard of a record its shard's write allowance refuses (`None`: it may be stored);
/// `open` is the stream's open shards, looked up once per call.
fn over_limit(
    stream: &KinesisStream,
    open: &[ShardInfo],
    append: &Append,
    size: usize,
) -> Option<ShardId> {
    let Route::HashKey(key) = append.route else { return None };
    let shard = shard_of(open, key)?;
    (!stream.admit(shard, size)).then_some(shard)
}

/// AWS's message for a record over its shard's limits.
fn throttled(cx: &Context<'_>, stream: &KinesisStream, shard: ShardId) -> String {
    format!(
        "Rate exceeded for shard {} in stream {} under account {}.",
        shard_id_text(shard),
        stream.name,
        cx.account()
    )
}

fn stored(appended: &Appended) -> Value {
    j!({
        "ShardId": shard_id_text(appended.shard),
        "SequenceNumber": SequenceNumber::new(appended.shard, appended.seq).to_string(),
    })
}

pub(super) async fn put_record(cx: &Context<'_>, body: &[u8]) -> Result<String, ApiError> {
    let input: PutRecordInput = parse(body)?;
    let stream = cx.stream(&input.target).await?;
    let (append, size) = prepare(&input.record, "")?;
    if let Some(shard) = over_limit(&stream, &stream.open_shards(), &append, size) {
        cx.state.metrics.kinesis_throttled(&stream.name, 1);
        return Err(ApiError::new(
            ErrorType::ProvisionedThroughputExceeded,
            throttled(cx, &stream, shard),
        ));
    }
    let started = std::time::Instant::now();
    let result = stream.log.append(vec![append]).await.pop().expect("one result per record");
    match result {
        Ok(appended) => {
            let metrics = &cx.state.metrics;
            metrics.kinesis_incoming(&stream.name, 1, size, "PutRecord", started.elapsed());
            json(stored(&appended))
        }
        Err(e) => {
            let (kind, message) = append_failure(&e);
            Err(ApiError::new(kind, message))
        }
    }
}

pub(super) async fn put_records(cx: &Context<'_>, body: &[u8]) -> Result<String, ApiError> {
    let input: PutRecordsInput = parse(body)?;
    let stream = cx.stream(&input.target).await?;
    let records = input
        .records
        .as_deref()
        .ok_or_else(|| ApiError::constraint("records", "Member must not be null"))?;
    if records.is_empty() || records.len() > MAX_PUT_RECORDS {
        return Err(ApiError::constraint(
            "records",
            &format!("Member must have length between 1 and {MAX_PUT_RECORDS}"),
        ));
    }
    let mut appends = Vec::with_capacity(records.len());
    let mut sizes = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        let (append, size) = prepare(record, &format!("records.{}.member.", i + 1))?;
        sizes.push(size);
        appends.push(append);
    }
    let total: usize = sizes.iter().sum();
    if total > MAX_PUT_BYTES {
        return Err(ApiError::new(
            ErrorType::InvalidArgument,
            format!(
                "Records total {total} bytes (data and partition keys); a PutRecords call \
                 carries at most {MAX_PUT_BYTES} (5 MiB): split it into smaller calls"
            ),
        ));
    }
    // Records over their shard's limits are answered at once; the others are stored.
    let open = stream.open_shards();
    let refused: Vec<Option<ShardId>> = (appends.iter().zip(&sizes))
        .map(|(a, &size)| over_limit(&stream, &open, a, size))
        .collect();
    let admitted = (appends.into_iter().zip(&refused)).filter(|(_, r)| r.is_none()).map(|(a, _)| a);
    let started = std::time::Instant::now();
    let mut appended = stream.log.append(admitted.collect()).await.into_iter();
    let results: Vec<Result<Appended, (ErrorType, String)>> = (refused.iter())
        .map(|refused| match refused {
            Some(shard) => {
                Err((ErrorType::ProvisionedThroughputExceeded, throttled(cx, &stream, *shard)))
            }
            None => appended.next().expect("one result per record").map_err(|e| append_failure(&e)),
        })
        .collect();
    let over = refused.iter().filter(|r| r.is_some()).count();
    if over > 0 {
        cx.state.metrics.kinesis_throttled(&stream.name, over);
    }
    let failed = results.iter().filter(|r| r.is_err()).count();
    let stored_bytes =
        (results.iter().zip(&sizes)).filter(|(r, _)| r.is_ok()).map(|(_, n)| n).sum();
    let latency = started.elapsed();
    cx.state.metrics.kinesis_incoming(
        &stream.name,
        results.len() - failed,
        stored_bytes,
        "PutRecords",
        latency,
    );
    let entries: Vec<Value> = (results.iter())
        .map(|result| match result {
            Ok(appended) => stored(appended),
            Err((kind, message)) => j!({ "ErrorCode": kind.name(), "ErrorMessage": message }),
        })
        .collect();
    json(j!({ "FailedRecordCount": failed, "Records": entries }))
}

#[derive(Deserialize)]
struct GetShardIteratorInput {
    #[serde(flatten)]
    target: StreamTarget,
    #[serde(rename = "ShardId")]
    shard_id: Option<String>,
    #[serde(rename = "ShardIteratorType")]
    shard_iterator_type: Option<String>,
    #[serde(rename = "StartingSequenceNumber")]
    starting_sequence_number: Option<String>,
    /// Epoch seconds (AWS's JSON protocol sends timestamps as numbers).
    #[serde(rename = "Timestamp")]
    timestamp: Option<f64>,
}

pub(super) async fn get_shard_iterator(cx: &Context<'_>, body: &[u8]) -> Result<String, ApiError> {
    let input: GetShardIteratorInput = parse(body)?;
    let stream = cx.stream(&input.target).await?;
    let shard_text = input
        .shard_id
        .as_deref()
        .ok_or_else(|| ApiError::constraint("shardId", "Member must not be null"))?;
    let shard = parse_shard_id(shard_text)
        .filter(|id| stream.log.shards().iter().any(|s| s.id == *id))
        .ok_or_else(|| {
            ApiError::new(
                ErrorType::ResourceNotFound,
                format!(
                    "Shard {shard_text} in stream {} under account {} does not exist",
                    stream.name,
                    cx.account()
                ),
            )
        })?;
    let sequence = || -> Result<SequenceNumber, ApiError> {
        let text = input.starting_sequence_number.as_deref().ok_or_else(|| {
            ApiError::new(
                ErrorType::InvalidArgument,
                "StartingSequenceNumber is required with AT_SEQUENCE_NUMBER and AFTER_SEQUENCE_NUMBER",
            )
        })?;
        SequenceNumber::parse(text).filter(|s| s.shard == shard).ok_or_else(|| {
            ApiError::new(
                ErrorType::InvalidArgument,
                format!("StartingSequenceNumber {text} used in GetShardIterator on shard {shard_text} in stream {} is not a sequence number of this shard", stream.name),
            )
        })
    };
    let (position, not_before_ms) = match input.shard_iterator_type.as_deref() {
        Some("TRIM_HORIZON") => (0, None),
        Some("LATEST") => (stream.end_of(shard), None),
        Some("AT_SEQUENCE_NUMBER") => (sequence()?.position, None),
        Some("AFTER_SEQUENCE_NUMBER") => (sequence()?.position.saturating_add(1), None),
        Some("AT_TIMESTAMP") => {
            let seconds = input.timestamp.ok_or_else(|| {
                ApiError::new(ErrorType::InvalidArgument, "Timestamp is required with AT_TIMESTAMP")
            })?;
            (0, Some((seconds * 1000.0) as i64))
        }
        Some(other) => {
            return Err(ApiError::constraint(
                "shardIteratorType",
                &format!("Member must satisfy enum value set: [AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP] (got {other:?})"),
            ))
        }
        None => return Err(ApiError::constraint("shardIteratorType", "Member must not be null")),
    };
    let now = crate::clock::now_ms();
    let iterator = ShardIterator {
        stream: stream.name.clone(),
        created_ms: stream.created_ms,
        shard: shard.0,
        position,
        not_before_ms,
        expires_ms: now,
    }
    .moved_to(position, now);
    json(j!({ "ShardIterator": iterator.token() }))
}

#[derive(Deserialize)]
struct GetRecordsInput {
    #[serde(rename = "ShardIterator")]
    shard_iterator: Option<String>,
    #[serde(rename = "Limit")]
    limit: Option<i64>,
}

pub(super) async fn get_records(cx: &Context<'_>, body: &[u8]) -> Result<String, ApiError> {
    let input: GetRecordsInput = parse(body)?;
    let token = input
        .shard_iterator
        .as_deref()
        .ok_or_else(|| ApiError::constraint("shardIterator", "Member must not be null"))?;
    if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
        return Err(ApiError::constraint(
            "shardIterator",
            &format!("Member must have length between 1 and {MAX_TOKEN_CHARS}"),
        ));
    }
    let limit = count(input.limit, "limit", 1..=10_000, 10_000)?;
    let now = crate::clock::now_ms();
    let iterator = ShardIterator::parse(token, now).map_err(|e| match e {
        IteratorError::Expired(_) => ApiError::new(ErrorType::ExpiredIterator, e.to_string()),
        IteratorError::Invalid => ApiError::new(ErrorType::InvalidArgument, e.to_string()),
    })?;
    let stream = cx
        .kinesis
        .get(&iterator.stream)
        .await
        .ok()
        .filter(|s| s.created_ms == iterator.created_ms)
        .ok_or_else(|| {
            ApiError::new(
                ErrorType::ResourceNotFound,
                format!(
                    "the shard iterator's stream {} under account {} does not exist (it may have been deleted)",
                    iterator.stream,
                    cx.account()
                ),
            )
        })?;
    let shard = iterator.shard_id();
    let read_limit = ReadLimit { entries: limit, bytes: MAX_GET_BYTES };
    let mut records = Vec::new();
    let mut bytes = 0;
    let mut next = iterator.position;
    let mut not_before = iterator.not_before_ms;
    let mut last_arrival = None;
    let mut end = None;
    let mut caught_up = false;
    // AT_TIMESTAMP: a read that only passed records older than the timestamp reads on (a few
    // times), rather than hand the caller pages of nothing.
    for _ in 0..MAX_SKIPPING_READS {
        let batch = stream.read(shard, next, read_limit).await.map_err(|e| match e {
            ReadError::BeyondEnd { .. } | ReadError::UnknownShard(_) => ApiError::new(
                ErrorType::InvalidArgument,
                format!("the shard iterator does not point into the shard: {e}"),
            ),
            other => {
                tracing::error!(stream = %stream.name, shard = shard.0, error = %other, "GetRecords failed");
                ApiError::new(ErrorType::InternalFailure, "Internal service failure.")
            }
        })?;
        caught_up = batch.caught_up.is_some();
        for entry in batch.entries {
            match entry {
                Entry::Record(r) => {
                    next = r.seq + 1;
                    last_arrival = Some(r.arrival_ms);
                    if not_before.is_some_and(|t| r.arrival_ms < t) {
                        continue;
                    }
                    // Arrivals do not decrease within a shard: nothing later is skipped.
                    not_before = None;
                    let kinesis = record::decode(&r.data).map_err(|why| {
                        tracing::error!(stream = %stream.name, shard = shard.0, seq = r.seq, why, "a log entry is not a Kinesis record");
                        ApiError::new(ErrorType::InternalFailure, "Internal service failure.")
                    })?;
                    bytes += kinesis.data.len();
                    records.push(j!({
                        "SequenceNumber": SequenceNumber::new(shard, r.seq).to_string(),
                        "ApproximateArrivalTimestamp": epoch_seconds(r.arrival_ms),
                        "Data": BASE64.encode(&kinesis.data),
                        "PartitionKey": kinesis.partition_key,
                    }));
                }
                Entry::Seal(seal) => next = seal.position + 1,
                Entry::End(shard_end) => end = Some(shard_end),
            }
        }
        if !records.is_empty() || end.is_some() || caught_up || not_before.is_none() {
            break;
        }
    }
    cx.state.metrics.kinesis_outgoing(&stream.name, records.len(), bytes);
    let behind = match (caught_up, last_arrival) {
        (true, _) | (false, None) => 0,
        (false, Some(arrival)) => (now - arrival).max(0),
    };
    let mut out = j!({ "Records": records, "MillisBehindLatest": behind });
    match end {
        // A closed shard read to its end: no next iterator; its children are read next.
        Some(shard_end) => {
            let shards = stream.log.shards();
            out["ChildShards"] = (shard_end.children.iter())
                .filter_map(|c| shards.iter().find(|s| s.id == *c))
                .map(|child| {
                    let parents = [child.parent, child.adjacent_parent].into_iter().flatten();
                    j!({
                        "ShardId": shard_id_text(child.id),
                        "ParentShards": parents.map(shard_id_text).collect::<Vec<_>>(),
                        "HashKeyRange": super::streams::hash_key_range(child),
                    })
                })
                .collect();
        }
        None => {
            let moved = ShardIterator { not_before_ms: not_before, ..iterator.moved_to(next, now) };
            out["NextShardIterator"] = Value::String(moved.token());
        }
    }
    json(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_hash_keys_are_decimal_128_bit_numbers() {
        assert_eq!(parse_hash_key("0"), Some(0));
        assert_eq!(parse_hash_key(&u128::MAX.to_string()), Some(u128::MAX));
        for bad in ["", "01", "-1", "1.5", "x", "340282366920938463463374607431768211456"] {
            assert_eq!(parse_hash_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_partition_key_routes_by_its_md5() {
        let record = RecordInput {
            data: Some("YQ==".into()),
            partition_key: Some("a".into()),
            explicit_hash_key: None,
        };
        let (append, size) = prepare(&record, "").unwrap();
        // MD5("a") = 0cc175b9c0f1b6a831c399e269772661
        assert_eq!(append.route, Route::HashKey(0x0cc175b9c0f1b6a831c399e269772661));
        assert_eq!(size, 2);
        assert_eq!(record::decode(&append.data).unwrap().data.as_ref(), b"a");
    }

    #[test]
    fn a_record_over_one_mib_with_its_key_is_refused() {
        let data = BASE64.encode(vec![0u8; MAX_RECORD_BYTES]);
        let record = RecordInput {
            data: Some(data),
            partition_key: Some("k".into()),
            explicit_hash_key: None,
        };
        assert_eq!(prepare(&record, "").unwrap_err().kind, ErrorType::Validation);
    }
}
