//! Hydrant's own operations on the API port (`X-Amz-Target: Hydrant_20261208.<Op>`, signed for
//! the service `hydrant` when `auth` is on, allowed by `hydrant:<Op>` actions): replays
//! (`src/replay/`). `hydrant replay` and the console call them.

use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{ApiError, ErrorType};
use super::ops::parse;
use super::AppState;
use crate::replay::{ReplayError, ReplayRequest, ReplayStatus, ReplayTarget};

/// Runs one of [`HYDRANT_OPERATIONS`](crate::operations::HYDRANT_OPERATIONS); `may_use` says
/// which streams the caller may name.
pub(super) async fn dispatch(
    state: &AppState,
    operation: &str,
    body: &[u8],
    may_use: &(dyn Fn(&str) -> bool + Sync),
) -> Result<String, ApiError> {
    let Some(replays) = state.replays.as_ref() else {
        return Err(ApiError::new(
            ErrorType::InvalidArgument,
            "replays are not available on this server",
        ));
    };
    let allowed = |name: &str| {
        if may_use(name) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorType::AccessDenied,
                format!(
                    "the access key may not use delivery stream {name:?}; add it to its \
                     auth.credentials[].streams"
                ),
            ))
        }
    };
    let answer = match operation {
        "StartReplay" => {
            let request: StartReplay = parse(body)?;
            allowed(&request.stream)?;
            if let Some(target) = &request.target_stream {
                allowed(target)?;
            }
            let status = replays.start(request.into_request()?).await.map_err(error)?;
            json!({ "ReplayId": status.job.id, "Replay": replay_json(&status) })
        }
        "DescribeReplay" => {
            let request: DescribeReplay = parse(body)?;
            let status = replays.describe(&request.id).map_err(error)?;
            allowed(&status.job.stream)?;
            json!({ "Replay": replay_json(&status) })
        }
        "ListReplays" => {
            let list: Vec<Value> = (replays.list().iter())
                .filter(|s| may_use(&s.job.stream))
                .map(replay_json)
                .collect();
            json!({ "Replays": list })
        }
        "DescribeReplayWindow" => {
            let request: Window = parse(body)?;
            allowed(&request.stream)?;
            let oldest = replays.oldest_replayable_ms(&request.stream).await.map_err(error)?;
            let newest = oldest.map(|_| crate::clock::now_ms());
            json!({ "Oldest": oldest.map(seconds), "Newest": newest.map(seconds) })
        }
        other => {
            return Err(ApiError::new(
                ErrorType::InternalFailure,
                format!("operation {other} has no handler in this Hydrant"),
            ))
        }
    };
    Ok(answer.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartReplay {
    #[serde(rename = "DeliveryStreamName")]
    stream: String,
    /// Epoch seconds, as the AWS JSON protocol sends timestamps.
    #[serde(rename = "From")]
    from: f64,
    #[serde(rename = "To")]
    to: f64,
    #[serde(rename = "Prefix", default)]
    prefix: Option<String>,
    #[serde(rename = "TargetDeliveryStreamName", default)]
    target_stream: Option<String>,
}

impl StartReplay {
    fn into_request(self) -> Result<ReplayRequest, ApiError> {
        let target =
            match (self.prefix, self.target_stream) {
                (Some(prefix), None) => ReplayTarget::Prefix(prefix),
                (None, Some(stream)) => ReplayTarget::Stream(stream),
                _ => return Err(ApiError::new(
                    ErrorType::InvalidArgument,
                    "give exactly one of Prefix (a new prefix of the stream's own destination) \
                     and TargetDeliveryStreamName (another stream's destination)",
                )),
            };
        let millis = |field: &str, secs: f64| {
            if secs.is_finite() && (0.0..=1e11).contains(&secs) {
                Ok((secs * 1000.0).round() as i64)
            } else {
                Err(ApiError::new(
                    ErrorType::InvalidArgument,
                    format!("{field} must be a time in epoch seconds, got {secs}"),
                ))
            }
        };
        Ok(ReplayRequest {
            stream: self.stream,
            from_ms: millis("From", self.from)?,
            to_ms: millis("To", self.to)?,
            target,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DescribeReplay {
    #[serde(rename = "ReplayId")]
    id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Window {
    #[serde(rename = "DeliveryStreamName")]
    stream: String,
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

fn error(e: ReplayError) -> ApiError {
    let kind = match &e {
        ReplayError::StreamNotFound(_) | ReplayError::NotFound(_) => ErrorType::ResourceNotFound,
        ReplayError::Invalid { .. } => ErrorType::InvalidArgument,
        ReplayError::Store(..) | ReplayError::Read(_) => ErrorType::InternalFailure,
    };
    ApiError::new(kind, e.to_string())
}

/// A replay as the API shows it.
pub(crate) fn replay_json(status: &ReplayStatus) -> Value {
    let job = &status.job;
    let mut out = json!({
        "ReplayId": job.id,
        "DeliveryStreamName": job.stream,
        "From": seconds(job.from_ms),
        "To": seconds(job.to_ms),
        "Status": job.state,
        "Records": status.records,
        "Bytes": status.bytes,
        "ShardsDone": status.shards_done,
        "ShardsTotal": status.shards_total,
        "Progress": status.progress,
        "StartedAt": seconds(job.started_ms),
    });
    match &job.target {
        ReplayTarget::Prefix(p) => out["Prefix"] = json!(p),
        ReplayTarget::Stream(s) => out["TargetDeliveryStreamName"] = json!(s),
    }
    if let Some(t) = job.finished_ms {
        out["FinishedAt"] = json!(seconds(t));
    }
    if let Some(e) = &job.error {
        out["Error"] = json!(e);
    }
    out
}
