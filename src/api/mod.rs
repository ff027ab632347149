//! The Firehose JSON 1.1 API: `POST /` routed by `X-Amz-Target: Firehose_20150804.<Op>`.
//!
//! Every response carries `x-amzn-RequestId` (botocore reads `ResponseMetadata.RequestId` from
//! it) and errors are `{"__type","message"}` ([`error`]). Operations live in [`ops`]; this
//! module only checks the envelope (signature, target, content type, size, the caller's
//! allowed actions and streams) and dispatches; [`body`] bounds the memory and time a request body may
//! take. With `auth: sigv4`, [`auth`] verifies every `POST /` before anything else is looked
//! at (an unknown key is refused before any memory is reserved for its body); `/healthz`,
//! `/readyz` and `/metrics` stay open. With `admin_listen`, `/readyz` and `/metrics` are
//! served by [`admin_router`] on their own listener instead ([`api_router`] has the rest).
//! Without it, on a `listen` address other machines can reach, [`shared_router`] keeps
//! `/readyz` to its headline.

pub mod actions;
pub mod auth;
pub mod body;
mod control_ops;
mod describe;
pub mod error;
pub mod kinesis;
pub(crate) mod ops;
mod record_id;
mod replay_ops;
mod wire;

use std::borrow::Cow;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

/// Every operation Hydrant serves.
pub use crate::operations::OPERATIONS;
pub use auth::{AuthError, Caller, Verifier};
pub use body::{BodyRate, MAX_BODY_BYTES, MAX_INFLIGHT_MIB};
pub use error::{ApiError, ErrorType};

use crate::control::ControlPlane;
use crate::listener::Peer;
use crate::operations::Service;
use crate::registry::Registry;
use crate::telemetry::Metrics;

/// The JSON 1.1 target prefix of every Firehose operation.
pub const TARGET_PREFIX: &str = "Firehose_20150804.";

/// What request handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The running streams, looked up by name.
    pub registry: Arc<Registry>,
    /// Creating, changing and deleting streams.
    pub control: Arc<ControlPlane>,
    pub metrics: Metrics,
    /// One permit per KiB of request body in flight ([`MAX_INFLIGHT_MIB`] in all).
    pub inflight: Arc<tokio::sync::Semaphore>,
    /// SigV4 verification (`auth: sigv4`); `None` accepts every request (`auth: none`).
    pub auth: Option<Arc<Verifier>>,
    /// How fast request bodies must arrive (`http:`).
    pub body_rate: BodyRate,
    /// The Kinesis Data Streams (embedded core only; `None` answers that the API is not
    /// served).
    pub kinesis: Option<Arc<crate::kinesis::KinesisStreams>>,
    /// Replays (`Hydrant_20261208.*`); `None` answers that they are not available.
    pub replays: Option<Arc<crate::replay::Replays>>,
}

impl AppState {
    pub fn new(control: Arc<ControlPlane>, metrics: Metrics) -> Self {
        Self {
            registry: control.registry().clone(),
            control,
            metrics,
            inflight: Arc::new(tokio::sync::Semaphore::new(MAX_INFLIGHT_MIB as usize * 1024)),
            auth: None,
            body_rate: BodyRate::default(),
            kinesis: None,
            replays: None,
        }
    }

    /// Serves the replay operations on `replays`.
    pub fn with_replays(mut self, replays: Arc<crate::replay::Replays>) -> Self {
        self.replays = Some(replays);
        self
    }

    /// Serves the Kinesis Data Streams API on `streams`.
    pub fn with_kinesis(mut self, streams: Arc<crate::kinesis::KinesisStreams>) -> Self {
        self.kinesis = Some(streams);
        self
    }

    /// Applies the body deadline of `http:`.
    pub fn with_http(mut self, http: &crate::config::HttpConfig) -> Self {
        self.body_rate = BodyRate::from_config(http);
        self
    }

    /// Requires every Firehose request to be signed for `verifier` (`None`: no authentication).
    pub fn with_auth(mut self, verifier: Option<Verifier>) -> Self {
        self.auth = verifier.map(Arc::new);
        self
    }
}

/// The HTTP surface on one port: Firehose on `POST /`, plus `/healthz`, `/readyz` and
/// `/metrics` (what is served without `admin_listen` on a loopback `listen`).
pub fn router(state: AppState) -> Router {
    with_envelope(firehose_routes(state.clone()).merge(admin_routes(state)))
}

/// [`router`] for a `listen` other machines can reach, without `admin_listen`: `/readyz`
/// answers only its headline and status (its detail lines name streams and quote destination
/// errors, which every producer could read). `/metrics` stays whole for Prometheus.
pub fn shared_router(state: AppState) -> Router {
    let admin = Router::new()
        .route("/readyz", get(readyz_headline))
        .route("/metrics", get(metrics))
        .with_state(state.clone());
    with_envelope(firehose_routes(state).merge(admin))
}

/// The producer-facing listener when `admin_listen` is set: Firehose on `POST /` and
/// `/healthz` (for load balancers), without `/readyz` and `/metrics`.
pub fn api_router(state: AppState) -> Router {
    with_envelope(firehose_routes(state))
}

/// The admin listener (`admin_listen`): `/readyz`, `/metrics` and `/healthz`.
pub fn admin_router(state: AppState) -> Router {
    with_envelope(admin_routes(state).route("/healthz", get(healthz)))
}

/// The API's `POST /` handler mounted at `path` as well (the console's same-origin door to
/// it, `POST /console/api/call`): the same envelope checks, signature and permissions.
pub fn call_route(path: &str, state: AppState) -> Router {
    Router::new()
        .route(path, post(firehose))
        .with_state(state)
        .layer(middleware::from_fn(request_id))
        .layer(axum::extract::DefaultBodyLimit::disable())
}

fn firehose_routes(state: AppState) -> Router {
    Router::new().route("/", post(firehose)).route("/healthz", get(healthz)).with_state(state)
}

fn admin_routes(state: AppState) -> Router {
    Router::new().route("/readyz", get(readyz)).route("/metrics", get(metrics)).with_state(state)
}

/// What every response shares: a request id, and Firehose's error for unknown paths.
fn with_envelope(routes: Router) -> Router {
    routes
        .fallback(|| async {
            ApiError::new(
                ErrorType::UnknownOperation,
                "Firehose operations are POST / with an X-Amz-Target header",
            )
        })
        .layer(middleware::from_fn(request_id))
        // The body limit is enforced in `firehose` so the error has Firehose's shape.
        .layer(axum::extract::DefaultBodyLimit::disable())
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Gives every request an id: in the `x-amzn-RequestId` header, and on every log line written
/// while it is served (so the cause of an error answered with a fixed text can be found).
async fn request_id(request: Request, next: Next) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    let span = tracing::info_span!("request", request_id = %id);
    let mut response = tracing::Instrument::instrument(next.run(request), span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-amzn-requestid", value);
    }
    response
}

/// Readiness: see [`crate::health::readiness`] (503 only when a shard's log refuses writes;
/// delivery held back is reported with 200). `/healthz` is liveness only.
async fn readyz(State(state): State<AppState>) -> Response {
    let readiness = crate::health::readiness(&state.registry);
    let status = if readiness.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, readiness.body).into_response()
}

/// [`readyz`]'s status and first line only.
async fn readyz_headline(State(state): State<AppState>) -> Response {
    let readiness = crate::health::readiness(&state.registry);
    let status = if readiness.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let headline = readiness.body.lines().next().unwrap_or_default();
    (status, format!("{headline}\n")).into_response()
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state.metrics.refresh_gauges(&state.registry.gauges());
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
    peer: Option<Extension<Peer>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let peer = peer.map(|Extension(peer)| peer);
    // A Kinesis call in CBOR is answered in CBOR, errors included.
    let cbor = kinesis::is_cbor(&headers);
    match dispatch(&state, peer.as_ref(), &method, &uri, &headers, body).await {
        Ok(body) if cbor => (StatusCode::OK, kinesis::cbor_body(&body)).into_response(),
        Ok(body) => (StatusCode::OK, json_body(body)).into_response(),
        Err(e) => {
            if e.kind.status().is_server_error() {
                tracing::warn!(error_type = e.kind.name(), message = %e.message, "request failed");
            } else {
                tracing::debug!(error_type = e.kind.name(), message = %e.message, "request rejected");
            }
            if cbor {
                let body = kinesis::cbor_body(&e.document());
                e.response_with(body)
            } else {
                e.into_response()
            }
        }
    }
}

async fn dispatch(
    state: &AppState,
    peer: Option<&Peer>,
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
    let (service, operation) = operation(headers)?;
    // Kinesis also takes CBOR (what the Java SDKs send); it is turned into JSON once the
    // signature, which covers the bytes as sent, is checked.
    let cbor = service == Service::Kinesis && kinesis::is_cbor(headers);
    if !cbor {
        check_content_type(headers)?;
    }
    let length = match body::declared_length(headers) {
        Ok(length) => length,
        Err(e) => {
            state.metrics.http_request_rejected("too_large");
            body::discard_body(body, headers, state.body_rate);
            return Err(e);
        }
    };
    if let Some(pending) = &pending {
        // The operation is known from the headers: a key that may not call it never makes
        // the server hold a large body. A small one (every control-plane call) is still read
        // and its signature checked, so the answer can name the stream.
        let small = length.is_some_and(|l| l <= MAX_DENIED_BODY_BYTES);
        if !pending.may_call(operation) && !small {
            body::discard_body(body, headers, state.body_rate);
            // Its signature is unchecked: the answer does not list what the key may call.
            let fix = action_fix(service, pending.access_key_id(), operation, None);
            let key = pending.access_key_id();
            return Err(access_denied(state, service, key, operation, None, fix));
        }
    }
    let _room = body::reserve_memory(state, peer, length).await?;
    let body = body::read_body(state, body, length).await?;
    let caller = match pending {
        Some(pending) => Some(pending.verify(method, uri, headers, &body).map_err(auth_failed)?),
        None => None,
    };
    let body: Cow<'_, [u8]> = if cbor {
        Cow::Owned(kinesis::cbor::request_to_json(&body)?)
    } else {
        Cow::Borrowed(&body)
    };
    if let Some(caller) = &caller {
        authorize(state, caller, operation, &body)?;
    }
    let restricted = caller.as_ref().filter(|c| c.is_restricted());
    let may_use = |name: &str| restricted.is_none_or(|caller| caller.may_use(name));
    let result = match service {
        Service::Kinesis => kinesis::dispatch(state, operation, &body, &may_use).await,
        Service::Hydrant => replay_ops::dispatch(state, operation, &body, &may_use).await,
        Service::Firehose => firehose_operation(state, operation, &body, &may_use).await,
    };
    // A key limited to some streams does not get to learn the others' names.
    result.map_err(|e| if restricted.is_some() { e.for_restricted_caller() } else { e })
}

/// Runs a Firehose `operation` (one of [`OPERATIONS`]); `may_use` says which streams the
/// caller may see listed.
async fn firehose_operation(
    state: &AppState,
    operation: &str,
    body: &[u8],
    may_use: &(dyn Fn(&str) -> bool + Sync),
) -> Result<String, ApiError> {
    match operation {
        "PutRecordBatch" => ops::put_record_batch(state, body).await,
        "PutRecord" => ops::put_record(state, body).await,
        "ListDeliveryStreams" => ops::list_delivery_streams(state, body, may_use),
        "DescribeDeliveryStream" => ops::describe_delivery_stream(state, body),
        "CreateDeliveryStream" => control_ops::create_delivery_stream(state, body).await,
        "DeleteDeliveryStream" => control_ops::delete_delivery_stream(state, body).await,
        "UpdateDestination" => control_ops::update_destination(state, body).await,
        "TagDeliveryStream" => control_ops::tag_delivery_stream(state, body).await,
        "UntagDeliveryStream" => control_ops::untag_delivery_stream(state, body).await,
        "ListTagsForDeliveryStream" => control_ops::list_tags_for_delivery_stream(state, body),
        "StartDeliveryStreamEncryption" => {
            control_ops::start_delivery_stream_encryption(state, body).await
        }
        "StopDeliveryStreamEncryption" => {
            control_ops::stop_delivery_stream_encryption(state, body).await
        }
        // `operation` is one of OPERATIONS; one without an arm here is a bug.
        other => Err(ApiError::new(
            ErrorType::InternalFailure,
            format!("operation {other} has no handler in this Hydrant"),
        )),
    }
}

/// Largest body read from a key that may not call its operation, so the refusal can name the
/// stream (control-plane calls are a few KiB; a larger body is refused unread).
const MAX_DENIED_BODY_BYTES: u64 = 64 << 10;

/// A signed call needs two permissions of its key: the operation (`actions`; `operation` is
/// one of its service's), and the stream it names (`streams`): Firehose's
/// `DeliveryStreamName`, Kinesis' `StreamName` or `StreamARN` (or the stream of its
/// iterator or paging token). Unknown streams are denied too, so the key learns nothing about
/// streams outside its list.
fn authorize(
    state: &AppState,
    caller: &Caller,
    operation: &str,
    body: &[u8],
) -> Result<(), ApiError> {
    let action_allowed = caller.may_call(operation);
    if action_allowed && !caller.is_restricted() {
        return Ok(()); // the body need not be parsed
    }
    let service = caller.service;
    let name = match service {
        Service::Firehose => stream_name(body)?,
        Service::Kinesis => kinesis::stream_named(body),
        Service::Hydrant => stream_name(body)?,
    };
    let key = &caller.access_key_id;
    if !action_allowed {
        let fix = action_fix(service, key, operation, Some(&caller.allowed_operations()));
        return Err(access_denied(state, service, key, operation, name.as_deref(), fix));
    }
    match name {
        Some(name) if !caller.may_use(&name) => Err(access_denied(
            state,
            service,
            key,
            operation,
            Some(&name),
            format!(
                "access key {key} may only use the streams listed in its \
                 auth.credentials[].streams; add {name:?} there to allow it"
            ),
        )),
        _ => Ok(()),
    }
}

/// The request's `DeliveryStreamName`, if it has one.
fn stream_name(body: &[u8]) -> Result<Option<String>, ApiError> {
    #[derive(serde::Deserialize)]
    struct Named<'a> {
        #[serde(rename = "DeliveryStreamName", borrow)]
        name: Option<Cow<'a, str>>,
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let named: Named<'_> = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorType::Serialization,
            format!("request body is not a valid Firehose JSON request: {e}"),
        )
    })?;
    Ok(named.name.map(Cow::into_owned))
}

/// What to do about an action the key's `actions` do not allow (`allowed`: what it may call,
/// told only to a caller whose signature was checked).
fn action_fix(service: Service, key: &str, operation: &str, allowed: Option<&[&str]>) -> String {
    let allowed = allowed.map(|a| format!("access key {key} may call {}; ", a.join(", ")));
    let prefix = service.id();
    format!(
        "{}add \"{prefix}:{operation}\" (or a pattern such as \"{prefix}:*\") to the \
         auth.credentials[].actions of access key {key} in the config file to allow it",
        allowed.unwrap_or_default()
    )
}

/// AWS's answer to a call its policy does not allow, followed by how to allow it.
fn access_denied(
    state: &AppState,
    service: Service,
    key: &str,
    operation: &str,
    stream: Option<&str>,
    fix: String,
) -> ApiError {
    state.metrics.auth_failure("access_denied");
    let config = state.control.config();
    let (region, account) = (&config.region, &config.account_id);
    let resource = match service {
        Service::Firehose | Service::Hydrant => {
            let stream = stream.filter(|s| crate::names::is_valid_stream_name(s)).unwrap_or("*");
            format!("arn:aws:firehose:{region}:{account}:deliverystream/{stream}")
        }
        Service::Kinesis => {
            let stream = stream.filter(|s| kinesis::is_valid_stream_name(s)).unwrap_or("*");
            format!("arn:aws:kinesis:{region}:{account}:stream/{stream}")
        }
    };
    let action = format!("{}:{operation}", service.id());
    ApiError::new(
        ErrorType::AccessDenied,
        format!(
            "User: {key} is not authorized to perform: {action} on resource: {resource} because \
             no identity-based policy allows the {action} action; {fix}"
        ),
    )
}

/// The service and operation of `X-Amz-Target`: only what Hydrant serves gets past here, so
/// authorization never meets an operation it does not know (and cannot let one through).
fn operation(headers: &HeaderMap) -> Result<(Service, &'static str), ApiError> {
    let target = headers.get("x-amz-target").ok_or_else(|| {
        ApiError::new(
            ErrorType::UnknownOperation,
            "missing X-Amz-Target header; send e.g. X-Amz-Target: Firehose_20150804.PutRecordBatch",
        )
    })?;
    let target = target.to_str().unwrap_or_default();
    let (service, operation) =
        Service::of_target(target).filter(|(_, op)| !op.is_empty()).ok_or_else(|| {
            ApiError::new(
                ErrorType::UnknownOperation,
                format!(
                    "X-Amz-Target {target:?} is not a Firehose operation; expected \
                     {TARGET_PREFIX}<Operation> (or Kinesis_20131202.<Operation>)"
                ),
            )
        })?;
    let known = service.operation(operation).ok_or_else(|| {
        let what = match service {
            Service::Firehose => "operation",
            Service::Kinesis => "Kinesis operation",
            Service::Hydrant => "Hydrant operation",
        };
        ApiError::new(
            ErrorType::UnknownOperation,
            format!(
                "{what} {operation} is not supported by this Hydrant; supported: {}",
                service.operations().join(", ")
            ),
        )
    })?;
    Ok((service, known))
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
