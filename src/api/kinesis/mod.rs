//! The Kinesis Data Streams API (JSON 1.1, `X-Amz-Target: Kinesis_20131202.<Op>`) on the same
//! port as Firehose: streams ([`streams`]), and records in and out ([`records`]). The streams
//! themselves are [`crate::kinesis`]'s; this layer checks requests as the service model
//! defines them and shapes answers and errors as AWS's.

pub mod cbor;
mod records;
mod shards;
mod streams;

use serde::Deserialize;

use super::{ApiError, AppState, ErrorType};
use crate::kinesis::{KinesisError, KinesisStream, KinesisStreams};
use crate::log::{ReshardError, ShardId};
use crate::operations::Service;

/// Whether a request is a Kinesis call in CBOR (`Content-Type: application/x-amz-cbor-1.1`).
pub(super) fn is_cbor(headers: &axum::http::HeaderMap) -> bool {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let essence = header("content-type").split(';').next().unwrap_or("").trim();
    header("x-amz-target").starts_with(Service::Kinesis.target_prefix())
        && essence.eq_ignore_ascii_case(cbor::CONTENT_TYPE)
}

/// A CBOR response body for a JSON answer.
pub(super) fn cbor_body(json: &str) -> axum::response::Response {
    let mut response =
        axum::response::Response::new(axum::body::Body::from(cbor::answer_from_json(json)));
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(cbor::CONTENT_TYPE),
    );
    response
}

/// Runs `operation` (one of [`KINESIS_OPERATIONS`](crate::operations::KINESIS_OPERATIONS));
/// `may_use` says which streams the caller may see listed.
pub(super) async fn dispatch(
    state: &AppState,
    operation: &str,
    body: &[u8],
    may_use: &(dyn Fn(&str) -> bool + Sync),
) -> Result<String, ApiError> {
    let Some(kinesis) = state.kinesis.as_deref() else {
        return Err(ApiError::new(
            ErrorType::UnknownOperation,
            "the Kinesis Data Streams API is not served in the cluster mode yet \
             (core.type: jetstream); use it on a server with the embedded core",
        ));
    };
    let context = Context { state, kinesis };
    match operation {
        "CreateStream" => streams::create_stream(&context, body).await,
        "DeleteStream" => streams::delete_stream(&context, body).await,
        "DescribeStream" => streams::describe_stream(&context, body).await,
        "DescribeStreamSummary" => streams::describe_stream_summary(&context, body).await,
        "ListStreams" => streams::list_streams(&context, body, may_use),
        "ListShards" => streams::list_shards(&context, body).await,
        "ListTagsForStream" => streams::list_tags_for_stream(&context, body).await,
        "AddTagsToStream" => streams::add_tags_to_stream(&context, body).await,
        "RemoveTagsFromStream" => streams::remove_tags_from_stream(&context, body).await,
        "IncreaseStreamRetentionPeriod" => streams::change_retention(&context, body, true).await,
        "DecreaseStreamRetentionPeriod" => streams::change_retention(&context, body, false).await,
        "SplitShard" => shards::split_shard(&context, body).await,
        "MergeShards" => shards::merge_shards(&context, body).await,
        "UpdateShardCount" => shards::update_shard_count(&context, body).await,
        "UpdateStreamMode" => streams::update_stream_mode(&context, body).await,
        "StartStreamEncryption" => streams::change_encryption(&context, body, true).await,
        "StopStreamEncryption" => streams::change_encryption(&context, body, false).await,
        "PutRecord" => records::put_record(&context, body).await,
        "PutRecords" => records::put_records(&context, body).await,
        "GetShardIterator" => records::get_shard_iterator(&context, body).await,
        "GetRecords" => records::get_records(&context, body).await,
        other => Err(ApiError::new(
            ErrorType::InternalFailure,
            format!("operation {other} has no handler in this Hydrant"),
        )),
    }
}

/// What the handlers need: the server's settings and its streams.
struct Context<'a> {
    state: &'a AppState,
    kinesis: &'a KinesisStreams,
}

impl Context<'_> {
    fn account(&self) -> String {
        self.state.control.config().account_id.clone()
    }

    fn arn(&self, stream: &str) -> String {
        let config = self.state.control.config();
        format!("arn:aws:kinesis:{}:{}:stream/{stream}", config.region, config.account_id)
    }

    /// The stream a request names by `StreamName` or `StreamARN`.
    async fn stream(
        &self,
        target: &StreamTarget,
    ) -> Result<std::sync::Arc<KinesisStream>, ApiError> {
        let name = target.name()?;
        self.kinesis.get(&name).await.map_err(|e| self.error(e))
    }

    /// The answer for a failed stream operation.
    fn error(&self, e: KinesisError) -> ApiError {
        let account = self.account();
        match e {
            KinesisError::NotFound(name) => ApiError::new(
                ErrorType::ResourceNotFound,
                format!("Stream {name} under account {account} not found."),
            ),
            KinesisError::InUse(name) => ApiError::new(
                ErrorType::ResourceInUse,
                format!("Stream {name} under account {account} already exists."),
            ),
            KinesisError::LimitExceeded(why) => ApiError::new(ErrorType::LimitExceeded, why),
            e @ KinesisError::ReadBy { .. } => {
                ApiError::new(ErrorType::ResourceInUse, e.to_string())
            }
            KinesisError::Invalid(why) => ApiError::new(ErrorType::InvalidArgument, why),
            KinesisError::Reshard(e) => self.reshard_error(e),
            other => {
                tracing::error!(error = %other, "a Kinesis stream operation failed");
                ApiError::new(
                    ErrorType::InternalFailure,
                    "the stream operation failed inside Hydrant; the server log has the cause \
                     under this request's id",
                )
            }
        }
    }
}

impl Context<'_> {
    /// The answer for a split or merge the log refused (Kinesis' error types).
    fn reshard_error(&self, e: ReshardError) -> ApiError {
        let invalid = |why: String| ApiError::new(ErrorType::InvalidArgument, why);
        match e {
            ReshardError::UnknownShard(shard) => ApiError::new(
                ErrorType::ResourceNotFound,
                format!(
                    "Could not find shard {} under account {}.",
                    shard_id_text(shard),
                    self.account()
                ),
            ),
            ReshardError::Closed(shard) => invalid(format!(
                "Shard {} is closed (split or merged already): only open shards split and merge; \
                 ListShards with ShardFilter AT_LATEST lists them",
                shard_id_text(shard)
            )),
            ReshardError::SplitOutside { shard, range, .. } => invalid(format!(
                "NewStartingHashKey must be above the StartingHashKey ({}) of shard {} and at \
                 most its EndingHashKey ({})",
                range.start,
                shard_id_text(shard),
                range.end
            )),
            ReshardError::NotAdjacent { shard, adjacent } => invalid(format!(
                "Shards {} and {} are not adjacent: a merge takes two open shards whose hash \
                 key ranges touch",
                shard_id_text(shard),
                shard_id_text(adjacent)
            )),
            ReshardError::Unsupported => invalid(
                "this server's log cannot split or merge shards (docs/kinesis.md)".to_string(),
            ),
            other => {
                tracing::error!(error = %other, "a reshard failed");
                ApiError::new(
                    ErrorType::InternalFailure,
                    "the reshard failed inside Hydrant; the server log has the cause under this \
                     request's id",
                )
            }
        }
    }
}

/// `StreamName` or `StreamARN`, as most operations take them.
#[derive(Deserialize, Default)]
struct StreamTarget {
    #[serde(rename = "StreamName")]
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
}

impl StreamTarget {
    fn name(&self) -> Result<String, ApiError> {
        match (&self.stream_name, &self.stream_arn) {
            (Some(name), _) => valid_stream_name(name).map(str::to_string),
            (None, Some(arn)) => {
                let name = arn.split_once(":stream/").map(|(_, name)| name).unwrap_or_default();
                if !arn.starts_with("arn:") || valid_stream_name(name).is_err() {
                    return Err(ApiError::new(
                        ErrorType::InvalidArgument,
                        format!("StreamARN {arn:?} is not a stream's ARN (arn:aws:kinesis:<region>:<account>:stream/<name>)"),
                    ));
                }
                Ok(name.to_string())
            }
            (None, None) => Err(ApiError::new(
                ErrorType::InvalidArgument,
                "give the stream by StreamName or StreamARN",
            )),
        }
    }
}

/// Kinesis stream names: `[a-zA-Z0-9_.-]{1,128}`.
pub(super) fn is_valid_stream_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// The stream a request names, for authorization: `StreamName`, `StreamARN`, or the stream of
/// its shard iterator (`GetRecords`) or paging token (`ListShards`). `None` when it names none
/// the handler would accept (the handler then refuses the request itself).
pub(super) fn stream_named(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Named {
        #[serde(flatten)]
        target: StreamTarget,
        #[serde(rename = "ShardIterator")]
        shard_iterator: Option<String>,
        #[serde(rename = "NextToken")]
        next_token: Option<String>,
    }
    let named: Named = serde_json::from_slice(body).ok()?;
    if let Ok(name) = named.target.name() {
        return Some(name);
    }
    if let Some(token) = &named.shard_iterator {
        // Expired or not, the iterator names the stream it would read.
        return crate::kinesis::ShardIterator::parse(token, i64::MIN).ok().map(|it| it.stream);
    }
    let text = streams::decode_token(named.next_token.as_deref()?).ok()?;
    Some(text.rsplit_once('/').map_or(text.as_str(), |(name, _)| name).to_string())
}

fn valid_stream_name(name: &str) -> Result<&str, ApiError> {
    if is_valid_stream_name(name) {
        Ok(name)
    } else {
        Err(ApiError::constraint(
            "streamName",
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length 1..=128",
        ))
    }
}

/// Kinesis' shard ids: `shardId-` and 12 digits.
fn shard_id_text(shard: ShardId) -> String {
    format!("shardId-{:012}", shard.0)
}

/// The shard a `shardId-…` names (AWS also accepts the bare number).
fn parse_shard_id(text: &str) -> Option<ShardId> {
    let digits = text.strip_prefix("shardId-").unwrap_or(text);
    if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(ShardId)
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorType::Serialization,
            format!("request body is not a valid Kinesis JSON request: {e}"),
        )
    })
}

/// An optional count member within `range`, or `default`.
fn count(
    value: Option<i64>,
    member: &str,
    range: std::ops::RangeInclusive<i64>,
    default: usize,
) -> Result<usize, ApiError> {
    match value {
        None => Ok(default),
        Some(v) if range.contains(&v) => Ok(v as usize),
        Some(_) => Err(ApiError::constraint(
            member,
            &format!("Member must have value between {} and {}", range.start(), range.end()),
        )),
    }
}

fn json(value: serde_json::Value) -> Result<String, ApiError> {
    Ok(value.to_string())
}

/// Unix milliseconds as the epoch seconds AWS's JSON protocol sends for timestamps.
fn epoch_seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_ids_read_back_and_other_texts_are_refused() {
        for id in [0, 7, 999_999_999] {
            assert_eq!(parse_shard_id(&shard_id_text(ShardId(id))), Some(ShardId(id)));
        }
        assert_eq!(parse_shard_id("3"), Some(ShardId(3)));
        for bad in ["", "shardId-", "shardId-x", "shardId-0000000000001", "-1", "99999999999"] {
            assert_eq!(parse_shard_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_stream_is_named_by_name_or_arn() {
        let by_arn = StreamTarget {
            stream_arn: Some("arn:aws:kinesis:us-east-1:123:stream/clicks".into()),
            ..Default::default()
        };
        assert_eq!(by_arn.name().unwrap(), "clicks");
        let bad = StreamTarget { stream_arn: Some("clicks".into()), ..Default::default() };
        assert_eq!(bad.name().unwrap_err().kind, ErrorType::InvalidArgument);
        assert_eq!(StreamTarget::default().name().unwrap_err().kind, ErrorType::InvalidArgument);
        let long = StreamTarget { stream_name: Some("x".repeat(129)), ..Default::default() };
        assert_eq!(long.name().unwrap_err().kind, ErrorType::Validation);
    }
}
