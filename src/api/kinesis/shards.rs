//! Resharding: `SplitShard`, `MergeShards` and `UpdateShardCount`. Each is done (and durable)
//! before it is answered, so the stream is `ACTIVE` again at once: a client that waits for
//! `ACTIVE`, as the AWS SDKs' waiters do, goes on immediately.

use serde::Deserialize;
use serde_json::json as j;

use super::{json, parse, parse_shard_id, Context, StreamTarget};
use crate::api::{ApiError, ErrorType};
use crate::kinesis::StreamMode;
use crate::log::{Reshard, ShardId};

#[derive(Deserialize)]
struct SplitShardInput {
    #[serde(flatten)]
    target: StreamTarget,
    #[serde(rename = "ShardToSplit")]
    shard_to_split: Option<String>,
    #[serde(rename = "NewStartingHashKey")]
    new_starting_hash_key: Option<String>,
}

pub(super) async fn split_shard(cx: &Context<'_>, body: &[u8]) -> Result<String, ApiError> {
    let input: SplitShardInput = parse(body)?;
    let name = input.target.name()?;
    let shard = shard_named(input.shard_to_split.as_deref(), "shardToSplit")?;
    let at = (input.new_starting_hash_key.as_deref())
        .ok_or_else(|| ApiError::constraint("newStartingHashKey", "Member must not be null"))?;
    let at = super::records::parse_hash_key(at).ok_or_else(|| {
        ApiError::constraint(
            "newStartingHashKey",
            "Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38}) (a decimal \
             number below 2^128)",
        )
    })?;
    provisioned(cx, &name, "SplitShard").await?;
    let change = Reshard::Split { shard, at };
    cx.kinesis.reshard(&name, change).await.map_err(|e| cx.error(e))?;
    json(j!({}))
}

#[derive(Deserialize)]
struct MergeShardsInput {
    #[serde(flatten)]
    target: StreamTarget,
    #[serde(rename = "ShardToMerge")]
    shard_to_merge: Option<String>,
    #[serde(rename = "AdjacentShardToMerge")]
    adjacent_shard_to_merge: Option<String>,
}

pub(super) async fn merge_shards(cx: &Context<'_>, body: &[u8]) -> Result<String, ApiError> {
    let input: MergeShardsInput = parse(body)?;
    let name = input.target.name()?;
    let shard = shard_named(input.shard_to_merge.as_deref(), "shardToMerge")?;
    let adjacent = shard_named(input.adjacent_shard_to_merge.as_deref(), "adjacentShardToMerge")?;
    provisioned(cx, &name, "MergeShards").await?;
    cx.kinesis.reshard(&name, Reshard::Merge { shard, adjacent }).await.map_err(|e| cx.error(e))?;
    json(j!({}))
}

#[derive(Deserialize)]
struct UpdateShardCountInput {
    #[serde(flatten)]
    target: StreamTarget,
    #[serde(rename = "TargetShardCount")]
    target_shard_count: Option<i64>,
    #[serde(rename = "ScalingType")]
    scaling_type: Option<String>,
}

pub(super) async fn update_shard_count(cx: &Context<'_>, body: &[u8]) -> Result<String, ApiError> {
    let input: UpdateShardCountInput = parse(body)?;
    let name = input.target.name()?;
    let target = match input.target_shard_count {
        None => return Err(ApiError::constraint("targetShardCount", "Member must not be null")),
        Some(n @ 1..=100_000) => n as u32,
        Some(_) => {
            return Err(ApiError::constraint(
                "targetShardCount",
                "Member must have value between 1 and 100000",
            ))
        }
    };
    match input.scaling_type.as_deref() {
        Some("UNIFORM_SCALING") => {}
        None => return Err(ApiError::constraint("scalingType", "Member must not be null")),
        Some(other) => {
            return Err(ApiError::constraint(
                "scalingType",
                &format!("Member must satisfy enum value set: [UNIFORM_SCALING] (got {other:?})"),
            ))
        }
    }
    provisioned(cx, &name, "UpdateShardCount").await?;
    let current = cx.kinesis.scale(&name, target).await.map_err(|e| cx.error(e))?;
    json(j!({
        "StreamName": name,
        "StreamARN": cx.arn(&name),
        "CurrentShardCount": current,
        "TargetShardCount": target,
    }))
}

/// Resharding by hand is for provisioned streams; an on-demand stream reshards itself.
async fn provisioned(cx: &Context<'_>, name: &str, operation: &str) -> Result<(), ApiError> {
    let stream = cx.kinesis.get(name).await.map_err(|e| cx.error(e))?;
    if stream.settings().mode == StreamMode::OnDemand {
        return Err(ApiError::new(
            ErrorType::InvalidArgument,
            format!(
                "{operation} is not supported for on-demand stream {name}: it splits and merges \
                 its shards with the load; switch it to PROVISIONED with UpdateStreamMode first"
            ),
        ));
    }
    Ok(())
}

/// A shard id argument (`shardId-000000000003`, or AWS' shorter forms).
fn shard_named(text: Option<&str>, field: &str) -> Result<ShardId, ApiError> {
    let text = text.ok_or_else(|| ApiError::constraint(field, "Member must not be null"))?;
    parse_shard_id(text).ok_or_else(|| {
        ApiError::new(
            ErrorType::InvalidArgument,
            format!("{field} {text:?} is not a shard id such as shardId-000000000000"),
        )
    })
}
