//! Stream operations: create, delete, describe and list streams and their shards.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json as j, Value};

use super::{
    count, epoch_seconds, json, parse, parse_shard_id, shard_id_text, valid_stream_name, Context,
    StreamTarget,
};
use crate::api::{ApiError, ErrorType};
use crate::kinesis::{
    on_demand, KinesisError, KinesisStream, SequenceNumber, StreamMode, MAX_RETENTION_HOURS,
};
use crate::log::{ShardInfo, ShardState};

#[derive(Deserialize)]
struct CreateStreamInput {
    #[serde(rename = "StreamName")]
    stream_name: Option<String>,
    #[serde(rename = "ShardCount")]
    shard_count: Option<i64>,
    #[serde(rename = "StreamModeDetails")]
    mode: Option<StreamModeDetails>,
    #[serde(rename = "Tags")]
    tags: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct StreamModeDetails {
    #[serde(rename = "StreamMode")]
    stream_mode: Option<String>,
}

pub(super) async fn create_stream(cx: &Context<'_>, body: &[u8]) -> Result<String, ApiError> {
    let input: CreateStreamInput = parse(body)?;
    let name = input
        .stream_name
        .as_deref()
        .ok_or_else(|| ApiError::constraint("streamName", "Member must not be null"))?;
    let name = valid_stream_name(name)?;
    let mode = stream_mode(input.mode)?.unwrap_or(StreamMode::Provisioned);
    let shards = match input.shard_count {
        // AWS starts an on-demand stream with 4 shards; it grows and shrinks with the load.
        None if mode == StreamMode::OnDemand => on_demand::INITIAL_SHARDS,
        None => {
            return Err(ApiError::new(
                ErrorType::InvalidArgument,
                "ShardCount is required for a PROVISIONED stream",
            ))
        }
        Some(n) if n >= 1 && n <= i64::from(u32::MAX) => n as u32,
        Some(_) => {
            return Err(ApiError::constraint(
                "shardCount",
                "Member must have value greater than or equal to 1",
            ))
        }
    };
    let tags = input.tags.unwrap_or_default();
    if tags.len() > 50 {
        return Err(ApiError::new(
            ErrorType::InvalidArgument,
            format!("a stream has at most 50 tags; {} were given", tags.len()),
        ));
    }
    check_tags(&tags)?;
    cx.kinesis.create(name, shards, tags, mode).await.map_err(|e| cx.error(e))?;
    tracing::info!(stream = name, shards, mode = mode.as_str(), "created Kinesis stream");
    json(j!({}))
}

/// The mode `StreamModeDetails` asks for, if it names one.
fn stream_mode(details: Option<StreamModeDetails>) -> Result<Option<StreamMode>, ApiError> {
    match details.map(|d| d.stream_mode) {
        None => Ok(None),
        Some(None) => {
            Err(ApiError::constraint("streamModeDetails.streamMode", "Member must not be null"))
        }
        Some(Some(mode)) => match mode.as_str() {
            "PROVISIONED" => Ok(Some(StreamMode::Provisioned)),
            "ON_DEMAND" => Ok(Some(StreamMode::OnDemand)),
            other => Err(ApiError::constraint(
                "streamModeDetails.streamMode",
                &format!(
                    "Member must satisfy enum value set: [PROVISIONED, ON_DEMAND] (got {other:?})"
                ),
            )),
        },
    }
}

#[derive(Deserialize)]
struct UpdateStreamModeInput {
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    #[serde(rename = "StreamModeDetails")]
    mode: Option<StreamModeDetails>,
}

/// `UpdateStreamMode`: takes the stream by ARN only, as AWS does.
pub(super) async fn update_stream_mode(cx: &Context<'_>, body: &[u8]) -> Result<String, ApiError> {
    let input: UpdateStreamModeInput = parse(body)?;
    let arn = input
        .stream_arn
        .ok_or_else(|| ApiError::constraint("streamARN", "Member must not be null"))?;
    let name = StreamTarget { stream_name: None, stream_arn: Some(arn) }.name()?;
    let mode = stream_mode(input.mode)?
        .ok_or_else(|| ApiError::constraint("streamModeDetails", "Member must not be null"))?;
    cx.kinesis
        .update(&name, |settings| {
            settings.mode = mode;
            Ok(())
        })
        .await
        .map_err(|e| cx.error(e))?;
    tracing::info!(stream = name, mode = mode.as_str(), "Kinesis stream mode changed");
    json(j!({}))
}

pub(super) async fn delete_stream(cx: &Context<'_>, body: &[u8]) -> Result<String, ApiError> {
    let target: StreamTarget = parse(body)?;
    let name = target.name()?;
    cx.kinesis.delete(&name).await.map_err(|e| cx.error(e))?;
    tracing::info!(stream = name, "deleted Kinesis stream");
    json(j!({}))
}

pub(super) fn hash_key_range(shard: &ShardInfo) -> Value {
    j!({
        "StartingHashKey": shard.hash_range.start.to_string(),
        "EndingHashKey": shard.hash_range.end.to_string(),
    })
}

/// A shard as `DescribeStream` and `ListShards` show it.
fn shard_json(shard: &ShardInfo) -> Value {
    let mut range = j!({
        "StartingSequenceNumber": SequenceNumber::new(shard.id, 0).to_string(),
    });
    if let ShardState::Closed { end } = shard.state {
        let last = SequenceNumber::new(shard.id, end.saturating_sub(1));
        range["EndingSequenceNumber"] = Value::String(last.to_string());
    }
    let mut out = j!({
        "ShardId": shard_id_text(shard.id),
        "HashKeyRange": hash_key_range(shard),
        "SequenceNumberRange": range,
    });
    if let Some(parent) = shard.parent {
        out["ParentShardId"] = Value::String(shard_id_text(parent));
    }
    if let Some(parent) = shard.adjacent_parent {
        out["AdjacentParentShardId"] = Value::String(shard_id_text(parent));
    }
    out
}

/// What `DescribeStream` and `DescribeStreamSummary` share.
fn description(cx: &Context<'_>, stream: &KinesisStream) -> Value {
    let settings = stream.settings();
    let mut out = j!({
        "StreamName": stream.name,
        "StreamARN": cx.arn(&stream.name),
        "StreamStatus": "ACTIVE",
        "StreamModeDetails": { "StreamMode": settings.mode.as_str() },
        "RetentionPeriodHours": settings.retention_hours,
        "StreamCreationTimestamp": epoch_seconds(stream.created_ms),
        "EnhancedMonitoring": [{ "ShardLevelMetrics": [] }],
    });
    match settings.encryption_key {
        Some(key) => {
            out["EncryptionType"] = j!("KMS");
            out["KeyId"] = j!(key);
        }
        None => out["EncryptionType"] = j!("NONE"),
    }
    out
}

#[derive(Deserialize)]
struct EncryptionInput {
    #[serde(flatten)]
    target: StreamTarget,
    #[serde(rename = "EncryptionType")]
    encryption_type: Option<String>,
    #[serde(rename = "KeyId")]
    key_id: Option<String>,
}

/// The key AWS's Kinesis-owned key alias means: the active key of `storage.encryption`.
const DEFAULT_KEY_ALIAS: &str = "alias/aws/kinesis";

/// `StartStreamEncryption` (`start`) and `StopStreamEncryption`: records stored from now on
/// are encrypted at rest (or not) in the stream's log, with a `storage.encryption` key named
/// by `KeyId` (its id, or an ARN or alias ending in it; `alias/aws/kinesis` is the active key).
pub(super) async fn change_encryption(
    cx: &Context<'_>,
    body: &[u8],
    start: bool,
) -> Result<String, ApiError> {
    let input: EncryptionInput = parse(body)?;
    let name = input.target.name()?;
    match input.encryption_type.as_deref() {
        Some("KMS") => {}
        None => return Err(ApiError::constraint("encryptionType", "Member must not be null")),
        Some(other) => {
            return Err(ApiError::new(
                ErrorType::InvalidArgument,
                format!(
                    "EncryptionType {other:?} is not one a stream can be encrypted with: use KMS"
                ),
            ))
        }
    }
    let key_id =
        input.key_id.ok_or_else(|| ApiError::constraint("keyId", "Member must not be null"))?;
    if key_id.is_empty() || key_id.len() > 2048 {
        return Err(ApiError::constraint("keyId", "Member must have length between 1 and 2048"));
    }
    let key = (key_id != DEFAULT_KEY_ALIAS).then(|| key_id.rsplit('/').next().unwrap_or(&key_id));
    cx.kinesis.set_encryption(&name, start, key).await.map_err(|e| cx.error(e))?;
    json(j!({}))
}

#[derive(Deserialize)]
struct DescribeStreamInput {
    #[serde(flatten)]
    target: StreamTarget,
    #[serde(rename = "Limit")]
    limit: Option<i64>,
    #[serde(rename = "ExclusiveStartShardId")]
    exclusive_start_shard_id: Option<String>,
}

pub(super) async fn describe_stream(cx: &Context<'_>, body: &[u8]) -> Result<String, ApiError> {
    let input: DescribeStreamInput = parse(body)?;
    let stream = cx.stream(&input.target).await?;
    let limit = count(input.limit, "limit", 1..=10_000, 100)?;
    let after = input.exclusive_start_shard_id.as_deref().and_then(parse_shard_id);
    let shards: Vec<ShardInfo> =
        (listed(&stream).await?.into_iter()).filter(|s| after.is_none_or(|a| s.id > a)).collect();
    let mut out = description(cx, &stream);
    out["Shards"] = shards.iter().take(limit).map(shard_json).collect();
    out["HasMoreShards"] = Value::Bool(shards.len() > limit);
    json(j!({ "StreamDescription": out }))
}

pub(super) async fn describe_stream_summary(
    cx: &Context<'_>,
    body: &[u8],
) -> Result<String, ApiError> {
    let target: StreamTarget = parse(body)?;
    let stream = cx.stream(&target).await?;
    let mut out = description(cx, &stream);
    let open = stream.log.shards().iter().filter(|s| s.state == ShardState::Open).count();
    out["OpenShardCount"] = j!(open);
    out["ConsumerCount"] = j!(0);
    json(j!({ "StreamDescriptionSummary": out }))
}

/// The shards `ListShards` and `DescribeStream` list: not the expired ones.
async fn listed(stream: &KinesisStream) -> Result<Vec<ShardInfo>, ApiError> {
    stream.listed_shards().await.map_err(|e| {
        ApiError::new(ErrorType::InternalFailure, format!("cannot list the shards now: {e}"))
    })
}

#[derive(Deserialize)]
struct ListStreamsInput {
    #[serde(rename = "Limit")]
    limit: Option<i64>,
    #[serde(rename = "ExclusiveStartStreamName")]
    exclusive_start_stream_name: Option<String>,
    #[serde(rename = "NextToken")]
    next_token: Option<String>,
}

pub(super) fn list_streams(
    cx: &Context<'_>,
    body: &[u8],
    may_use: &(dyn Fn(&str) -> bool + Sync),
) -> Result<String, ApiError> {
    let input: ListStreamsInput = parse(body)?;
    let limit = count(input.limit, "limit", 1..=10_000, 100)?;
    let after = match (&input.next_token, &input.exclusive_start_stream_name) {
        (Some(token), _) => Some(decode_token(token)?),
        (None, after) => after.clone(),
    };
    let streams: Vec<_> = (cx.kinesis.all().into_iter())
        .filter(|s| may_use(&s.name))
        .filter(|s| after.as_ref().is_none_or(|a| s.name.as_str() > a.as_str()))
        .collect();
    let page = &streams[..streams.len().min(limit)];
    let mut out = j!({
        "StreamNames": page.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
        "HasMoreStreams": streams.len() > limit,
        "StreamSummaries": page.iter().map(|s| j!({
            "StreamName": s.name,
            "StreamARN": cx.arn(&s.name),
            "StreamStatus": "ACTIVE",
            "StreamModeDetails": { "StreamMode": s.settings().mode.as_str() },
            "StreamCreationTimestamp": epoch_seconds(s.created_ms),
        })).collect::<Vec<_>>(),
    });
    if let (true, Some(last)) = (streams.len() > limit, page.last()) {
        out["NextToken"] = Value::String(encode_token(&last.name));
    }
    json(out)
}

#[derive(Deserialize)]
struct ListShardsInput {
    #[serde(flatten)]
    target: StreamTarget,
    #[serde(rename = "NextToken")]
    next_token: Option<String>,
    #[serde(rename = "ExclusiveStartShardId")]
    exclusive_start_shard_id: Option<String>,
    #[serde(rename = "MaxResults")]
    max_results: Option<i64>,
    #[serde(rename = "ShardFilter")]
    shard_filter: Option<ShardFilter>,
}

#[derive(Deserialize)]
struct ShardFilter {
    #[serde(rename = "Type")]
    kind: Option<String>,
    #[serde(rename = "ShardId")]
    shard_id: Option<String>,
}

/// `ListShards`: a `NextToken` carries the stream and where the page ended, so it is given
/// without `StreamName`, as AWS requires.
pub(super) async fn list_shards(cx: &Context<'_>, body: &[u8]) -> Result<String, ApiError> {
    let input: ListShardsInput = parse(body)?;
    let limit = count(input.max_results, "maxResults", 1..=10_000, 1_000)?;
    let (target, mut after) = match &input.next_token {
        Some(token) => {
            if input.target.stream_name.is_some() || input.exclusive_start_shard_id.is_some() {
                return Err(ApiError::new(
                    ErrorType::InvalidArgument,
                    "NextToken and StreamName (or ExclusiveStartShardId) cannot be given together",
                ));
            }
            let text = decode_token(token)?;
            let (name, shard) = text.rsplit_once('/').unwrap_or((&text, ""));
            let target = StreamTarget { stream_name: Some(name.to_string()), stream_arn: None };
            (target, parse_shard_id(shard))
        }
        None => {
            let after = input.exclusive_start_shard_id.as_deref().and_then(parse_shard_id);
            (input.target, after)
        }
    };
    let stream = cx.stream(&target).await?;
    let mut only_open = false;
    if let Some(filter) = &input.shard_filter {
        match filter.kind.as_deref() {
            Some("AFTER_SHARD_ID") => {
                let shard = filter.shard_id.as_deref().and_then(parse_shard_id).ok_or_else(|| {
                    ApiError::new(
                        ErrorType::InvalidArgument,
                        "ShardFilter AFTER_SHARD_ID needs a ShardId such as shardId-000000000000",
                    )
                })?;
                after = Some(after.map_or(shard, |a| a.max(shard)));
            }
            Some("AT_LATEST") => only_open = true,
            // Expired shards are never listed; shards do not record when they opened and
            // closed, so the other filters list every shard not expired, parents included,
            // which a reader that finishes parents first reads correctly.
            Some("AT_TRIM_HORIZON" | "FROM_TRIM_HORIZON" | "AT_TIMESTAMP" | "FROM_TIMESTAMP") => {}
            other => {
                return Err(ApiError::constraint(
                    "shardFilter.type",
                    &format!("Member must satisfy enum value set: [AFTER_SHARD_ID, AT_TRIM_HORIZON, FROM_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP, FROM_TIMESTAMP] (got {other:?})"),
                ))
            }
        }
    }
    let shards: Vec<ShardInfo> = (listed(&stream).await?.into_iter())
        .filter(|s| after.is_none_or(|a| s.id > a))
        .filter(|s| !only_open || s.state == ShardState::Open)
        .collect();
    let page = &shards[..shards.len().min(limit)];
    let mut out = j!({ "Shards": page.iter().map(shard_json).collect::<Vec<_>>() });
    if let (true, Some(last)) = (shards.len() > limit, page.last()) {
        let token = encode_token(&format!("{}/{}", stream.name, shard_id_text(last.id)));
        out["NextToken"] = Value::String(token);
    }
    json(out)
}

pub(super) async fn list_tags_for_stream(
    cx: &Context<'_>,
    body: &[u8],
) -> Result<String, ApiError> {
    let target: StreamTarget = parse(body)?;
    let stream = cx.stream(&target).await?;
    let settings = stream.settings();
    let tags: Vec<Value> =
        settings.tags.iter().map(|(k, v)| j!({ "Key": k, "Value": v })).collect();
    json(j!({ "Tags": tags, "HasMoreTags": false }))
}

/// A stream has at most this many tags (AWS' limit).
const MAX_TAGS: usize = 50;

#[derive(Deserialize)]
struct AddTagsInput {
    #[serde(flatten)]
    target: StreamTarget,
    #[serde(rename = "Tags")]
    tags: Option<BTreeMap<String, String>>,
}

pub(super) async fn add_tags_to_stream(cx: &Context<'_>, body: &[u8]) -> Result<String, ApiError> {
    let input: AddTagsInput = parse(body)?;
    let name = input.target.name()?;
    let tags = input.tags.ok_or_else(|| ApiError::constraint("tags", "Member must not be null"))?;
    if tags.is_empty() || tags.len() > 10 {
        return Err(ApiError::constraint("tags", "Member must have between 1 and 10 entries"));
    }
    check_tags(&tags)?;
    cx.kinesis
        .update(&name, |settings| {
            let mut next = settings.tags.clone();
            next.extend(tags.clone());
            if next.len() > MAX_TAGS {
                return Err(KinesisError::Invalid(format!(
                    "a stream has at most {MAX_TAGS} tags; this would make {}",
                    next.len()
                )));
            }
            settings.tags = next;
            Ok(())
        })
        .await
        .map_err(|e| cx.error(e))?;
    json(j!({}))
}

#[derive(Deserialize)]
struct RemoveTagsInput {
    #[serde(flatten)]
    target: StreamTarget,
    #[serde(rename = "TagKeys")]
    tag_keys: Option<Vec<String>>,
}

pub(super) async fn remove_tags_from_stream(
    cx: &Context<'_>,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: RemoveTagsInput = parse(body)?;
    let name = input.target.name()?;
    let keys =
        input.tag_keys.ok_or_else(|| ApiError::constraint("tagKeys", "Member must not be null"))?;
    if keys.is_empty() || keys.len() > 10 {
        return Err(ApiError::constraint("tagKeys", "Member must have between 1 and 10 entries"));
    }
    cx.kinesis
        .update(&name, |settings| {
            keys.iter().for_each(|k| drop(settings.tags.remove(k)));
            Ok(())
        })
        .await
        .map_err(|e| cx.error(e))?;
    json(j!({}))
}

/// Tag keys of 1 to 128 characters, values of at most 256 (AWS' limits).
fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), ApiError> {
    for (key, value) in tags {
        if key.is_empty() || key.chars().count() > 128 {
            return Err(ApiError::new(
                ErrorType::InvalidArgument,
                format!("tag key {key:?} must have 1 to 128 characters"),
            ));
        }
        if value.chars().count() > 256 {
            return Err(ApiError::new(
                ErrorType::InvalidArgument,
                format!("the value of tag {key:?} must have at most 256 characters"),
            ));
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct RetentionInput {
    #[serde(flatten)]
    target: StreamTarget,
    #[serde(rename = "RetentionPeriodHours")]
    hours: Option<i64>,
}

/// `IncreaseStreamRetentionPeriod` (`increase`) and `DecreaseStreamRetentionPeriod`: the new
/// period must move the way the call says, within 24 hours to 365 days.
pub(super) async fn change_retention(
    cx: &Context<'_>,
    body: &[u8],
    increase: bool,
) -> Result<String, ApiError> {
    let input: RetentionInput = parse(body)?;
    let name = input.target.name()?;
    let hours = match input.hours {
        None => {
            return Err(ApiError::constraint("retentionPeriodHours", "Member must not be null"))
        }
        Some(h) if (24..=i64::from(MAX_RETENTION_HOURS)).contains(&h) => h as u32,
        Some(h) => {
            return Err(ApiError::new(
                ErrorType::InvalidArgument,
                format!(
                    "Minimum allowed retention period is 24 hours and maximum is \
                     {MAX_RETENTION_HOURS} hours. Requested retention period ({h} hours) is \
                     outside it."
                ),
            ))
        }
    };
    cx.kinesis
        .update(&name, |settings| {
            let current = settings.retention_hours;
            match (increase, hours.cmp(&current)) {
                (true, std::cmp::Ordering::Less) => Err(KinesisError::Invalid(format!(
                    "Requested retention period ({hours} hours) for stream {name} can not be \
                     shorter than existing retention period ({current} hours). Use \
                     DecreaseStreamRetentionPeriod API."
                ))),
                (false, std::cmp::Ordering::Greater) => Err(KinesisError::Invalid(format!(
                    "Requested retention period ({hours} hours) for stream {name} can not be \
                     longer than existing retention period ({current} hours). Use \
                     IncreaseStreamRetentionPeriod API."
                ))),
                _ => {
                    settings.retention_hours = hours;
                    Ok(())
                }
            }
        })
        .await
        .map_err(|e| cx.error(e))?;
    json(j!({}))
}

/// Paging tokens: opaque to clients, plain text to us.
fn encode_token(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

pub(super) fn decode_token(token: &str) -> Result<String, ApiError> {
    (URL_SAFE_NO_PAD.decode(token).ok()).and_then(|bytes| String::from_utf8(bytes).ok()).ok_or_else(
        || ApiError::new(ErrorType::InvalidArgument, "NextToken is not one this server gave"),
    )
}
