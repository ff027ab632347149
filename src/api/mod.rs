//! The Firehose JSON 1.1 API: `POST /` routed by `X-Amz-Target: Firehose_20150804.<Op>`.
//!
//! Every response carries `x-amzn-RequestId` (botocore reads `ResponseMetadata.RequestId` from
//! it) and errors are `{"__type","message"}` ([`error`]). Operations live in [`ops`]; this
//! module only checks the envelope (signature, target, content type, size, the caller's
//! stream allow-list) and dispatches. With `auth: sigv4`, [`auth`] verifies every `POST /`
//! before anything else is looked at; `/healthz`, `/readyz` and `/metrics` stay open.

pub mod auth;
mod control_ops;
pub mod error;
pub(crate) mod ops;
mod wire;

use std::borrow::Cow;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

pub use auth::{AuthError, Caller, Verifier};
pub use error::{ApiError, ErrorType};

use crate::streams::Streams;
use crate::telemetry::Metrics;

/// The JSON 1.1 target prefix of every Firehose operation.
pub const TARGET_PREFIX: &str = "Firehose_20150804.";

/// Every operation Hydrant serves.
pub const OPERATIONS: [&str; 12] = [
    "PutRecord",
    "PutRecordBatch",
    "ListDeliveryStreams",
    "DescribeDeliveryStream",
    "CreateDeliveryStream",
    "DeleteDeliveryStream",
    "UpdateDestination",
    "TagDeliveryStream",
    "UntagDeliveryStream",
    "ListTagsForDeliveryStream",
    "StartDeliveryStreamEncryption",
    "StopDeliveryStreamEncryption",
];

/// Largest request body accepted. A full PutRecordBatch (4 MiB of data) is about 5.4 MiB once
/// base64-encoded; anything much larger cannot be a valid call.
pub const MAX_BODY_BYTES: usize = 8 << 20;

/// Request bodies held in memory at once, in MiB. The log's writers take appends without a
/// bound, so the API is where memory is capped: past this, callers wait briefly and then get
/// ServiceUnavailableException ("Slow down."), which every SDK retries with backoff.
pub const MAX_INFLIGHT_MIB: u32 = 256;

/// How long a call may wait for room before it is turned away.
const INFLIGHT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// What request handlers share.
#[derive(Clone)]
pub struct AppState {
    pub streams: Arc<Streams>,
    pub metrics: Metrics,
    /// One permit per MiB of request body in flight.
    pub inflight: Arc<tokio::sync::Semaphore>,
    /// SigV4 verification (`auth: sigv4`); `None` accepts every request (`auth: none`).
    pub auth: Option<Arc<Verifier>>,
}

impl AppState {
    pub fn new(streams: Arc<Streams>, metrics: Metrics) -> Self {
        Self {
            streams,
            metrics,
            inflight: Arc::new(tokio::sync::Semaphore::new(MAX_INFLIGHT_MIB as usize)),
            auth: None,
        }
    }

    /// Requires every Firehose request to be signed for `verifier` (`None`: no authentication).
    pub fn with_auth(mut self, verifier: Option<Verifier>) -> Self {
        self.auth = verifier.map(Arc::new);
        self
    }
}

/// The HTTP surface: Firehose on `POST /`, plus `/healthz`, `/readyz` and `/metrics`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", post(firehose))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            ApiError::new(
                ErrorType::UnknownOperation,
                "Firehose operations are POST / with an X-Amz-Target header",
            )
        })
        .layer(middleware::from_fn(request_id))
        // The body limit is enforced in `firehose` so the error has Firehose's shape.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

async fn request_id(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let id = uuid::Uuid::new_v4().to_string();
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-amzn-requestid", value);
    }
    response
}

/// Readiness: 200 when every shard's log accepts writes; 503 naming the shards that do not
/// (a log poisoned by an I/O error refuses puts until a restart). `/healthz` is liveness only.
async fn readyz(State(state): State<AppState>) -> Response {
    let broken: Vec<String> = state
        .streams
        .all()
        .iter()
        .flat_map(|stream| {
            stream.log.shards().iter().enumerate().filter_map(|(i, shard)| {
                shard.poisoned().map(|why| format!("{} shard {i}: {why}", stream.name))
            })
        })
        .collect();
    if broken.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready:\n{}\n", broken.join("\n")))
            .into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state.metrics.refresh_gauges(&state.streams);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

/// A JSON 1.1 response body.
pub(crate) fn json_body(body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-amz-json-1.1"));
    response
}

async fn firehose(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match dispatch(&state, &method, &uri, &headers, body).await {
        Ok(body) => (StatusCode::OK, json_body(body)).into_response(),
        Err(e) => {
            if e.kind.status().is_server_error() {
                tracing::warn!(error_type = e.kind.name(), message = %e.message, "request failed");
            } else {
                tracing::debug!(error_type = e.kind.name(), message = %e.message, "request rejected");
            }
            e.into_response()
        }
    }
}

async fn dispatch(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<String, ApiError> {
    let auth_failed = |e: AuthError| {
        state.metrics.auth_failure(e.reason());
        ApiError::from(e)
    };
    // Nothing of an unauthenticated request is read or looked at beyond its headers.
    let pending = match &state.auth {
        Some(verifier) => Some(
            verifier
                .check_headers(uri, headers, std::time::SystemTime::now())
                .map_err(auth_failed)?,
        ),
        None => None,
    };
    let operation = operation(headers)?;
    check_content_type(headers)?;
    let _room = reserve_memory(state, headers).await?;
    let body = read_body(body).await?;
    let caller = match pending {
        Some(pending) => Some(pending.verify(method, uri, headers, &body).map_err(auth_failed)?),
        None => None,
    };
    let restricted = caller.as_ref().filter(|c| c.is_restricted());
    if let Some(caller) = restricted {
        authorize(state, caller, operation, &body)?;
    }
    let result = match operation {
        "PutRecordBatch" => ops::put_record_batch(state, &body).await,
        "PutRecord" => ops::put_record(state, &body).await,
        "ListDeliveryStreams" => ops::list_delivery_streams(state, &body, |name| {
            restricted.is_none_or(|caller| caller.may_use(name))
        }),
        "DescribeDeliveryStream" => ops::describe_delivery_stream(state, &body),
        "CreateDeliveryStream" => control_ops::create_delivery_stream(state, &body).await,
        "DeleteDeliveryStream" => control_ops::delete_delivery_stream(state, &body).await,
        "UpdateDestination" => control_ops::update_destination(state, &body).await,
        "TagDeliveryStream" => control_ops::tag_delivery_stream(state, &body).await,
        "UntagDeliveryStream" => control_ops::untag_delivery_stream(state, &body).await,
        "ListTagsForDeliveryStream" => control_ops::list_tags_for_delivery_stream(state, &body),
        "StartDeliveryStreamEncryption" => {
            control_ops::start_delivery_stream_encryption(state, &body).await
        }
        "StopDeliveryStreamEncryption" => {
            control_ops::stop_delivery_stream_encryption(state, &body).await
        }
        other => Err(ApiError::new(
            ErrorType::UnknownOperation,
            format!(
                "operation {other} is not supported by this Hydrant; supported: {}",
                OPERATIONS.join(", ")
            ),
        )),
    };
    result.map_err(|mut e| {
        if restricted.is_some() && e.kind == ErrorType::ResourceNotFound {
            // A key limited to some streams does not get to learn the others' names.
            if let Some(at) = e.message.find(" Known delivery streams:") {
                e.message.truncate(at);
            }
        }
        e
    })
}

/// A key with a `streams` allow-list may only name those streams (in any operation that has
/// a `DeliveryStreamName`). Unknown streams are denied too, so the key learns nothing about
/// streams outside its list.
fn authorize(
    state: &AppState,
    caller: &Caller,
    operation: &str,
    body: &[u8],
) -> Result<(), ApiError> {
    #[derive(serde::Deserialize)]
    struct Named<'a> {
        #[serde(rename = "DeliveryStreamName", borrow)]
        name: Option<Cow<'a, str>>,
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let named: Named<'_> = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorType::Serialization,
            format!("request body is not a valid Firehose JSON request: {e}"),
        )
    })?;
    match named.name {
        Some(name) if !caller.may_use(&name) => {
            state.metrics.auth_failure("access_denied");
            let key = &caller.access_key_id;
            Err(ApiError::new(
                ErrorType::AccessDenied,
                format!(
                    "User {key} is not authorized to perform firehose:{operation} on delivery \
                     stream {name:?}: access key {key} may only use the streams listed in its \
                     auth.credentials[].streams; add {name:?} there to allow it"
                ),
            ))
        }
        _ => Ok(()),
    }
}

fn operation(headers: &HeaderMap) -> Result<&str, ApiError> {
    let target = headers.get("x-amz-target").ok_or_else(|| {
        ApiError::new(
            ErrorType::UnknownOperation,
            "missing X-Amz-Target header; send e.g. X-Amz-Target: Firehose_20150804.PutRecordBatch",
        )
    })?;
    let target = target.to_str().unwrap_or_default();
    target.strip_prefix(TARGET_PREFIX).filter(|op| !op.is_empty()).ok_or_else(|| {
        ApiError::new(
            ErrorType::UnknownOperation,
            format!("X-Amz-Target {target:?} is not a Firehose operation; expected {TARGET_PREFIX}<Operation>"),
        )
    })
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let value = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/x-amz-json-1.1" | "application/x-amz-json-1.0" | "application/json" => Ok(()),
        _ => Err(ApiError::new(
            ErrorType::Serialization,
            format!("Content-Type {value:?} is not accepted; send Content-Type: application/x-amz-json-1.1"),
        )),
    }
}

/// Reserves memory for the body (by Content-Length; the maximum when it is absent).
async fn reserve_memory(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(MAX_BODY_BYTES)
        .min(MAX_BODY_BYTES);
    let mib = length.div_ceil(1 << 20).max(1) as u32;
    let permit =
        tokio::time::timeout(INFLIGHT_WAIT, state.inflight.clone().acquire_many_owned(mib)).await;
    match permit {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(ApiError::new(
            ErrorType::ServiceUnavailable,
            "Slow down. Hydrant is holding its maximum of in-flight request data; retry with backoff",
        )),
    }
}

async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| {
        ApiError::new(
            ErrorType::InvalidArgument,
            format!(
                "request body is larger than {} MiB; PutRecordBatch accepts at most 500 records and 4 MiB of data per call",
                MAX_BODY_BYTES >> 20
            ),
        )
    })
}
