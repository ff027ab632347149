//! The web console at `/console/` (docs/console.md): one page that polls JSON under
//! `/console/api/` every few seconds and draws it.
//!
//! - [`assets`]: the embedded files (our page, the vendored uPlot and aws4fetch);
//! - [`overview`], [`stream`], [`cluster`]: what the page polls;
//! - [`sampler`]: the last hour of every stream's rates, read from the process's metrics
//!   ([`prom`]) every 10 s; [`status`]: a stream's state in words;
//! - [`definition`]: a definition as YAML with its secrets hidden; [`errors`]: the last
//!   error-output documents (fed by `telemetry::recent` where the S3 output writes them).
//!
//! Writes (a test record, a replay) are not the console's own: the page calls the Firehose
//! API's handler, mounted at `POST /console/api/call` on the console's listener
//! ([`crate::api::call_route`]), so the same signature check and permissions apply. Where the
//! console is served is [`placement`]'s decision.

pub mod assets;
pub mod cluster;
pub mod definition;
pub mod errors;
pub mod overview;
pub mod prom;
pub mod sampler;
pub mod status;
pub mod stream;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;

use crate::api::AppState;
use crate::config::Config;

/// What the console's handlers share.
pub struct Console {
    pub app: AppState,
    pub sampler: Arc<sampler::Sampler>,
}

/// Why a console request has no answer.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Internal(String),
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, kind) = match &self {
            ConsoleError::NotFound(_) => (StatusCode::NOT_FOUND, "NotFound"),
            ConsoleError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure"),
        };
        let body = serde_json::json!({ "error": kind, "message": self.to_string() });
        (status, json(body.to_string())).into_response()
    }
}

/// Which listener serves the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// `admin_listen`.
    Admin,
    /// `listen`: it is loopback, or `console.on_shared_listen` says so.
    Listen,
    /// Nowhere (`console.enabled: false`, or a shared `listen` without opting in).
    Nowhere,
}

/// Where the console is served for `config`, whose `listen` is bound to `listen`: on
/// `admin_listen` when set; otherwise on `listen` when only this machine reaches it or the
/// operator opted in, since the console shows stream names, definitions and errors.
pub fn placement(config: &Config, listen: SocketAddr) -> Placement {
    let console = &config.console;
    if !console.enabled {
        Placement::Nowhere
    } else if config.admin_listen.is_some() {
        Placement::Admin
    } else if listen.ip().is_loopback() || console.on_shared_listen {
        Placement::Listen
    } else {
        Placement::Nowhere
    }
}

/// The console's routes (`/console`, `/console/...`), starting its sampler on the current
/// Tokio runtime. Merge it into the listener's router.
pub fn router(app: AppState) -> Router {
    let sampler = sampler::Sampler::start(app.metrics.clone());
    let call = crate::api::call_route("/console/api/call", app.clone());
    let console = Arc::new(Console { app, sampler });
    Router::new()
        .route("/console", get(|| async { Redirect::permanent("/console/") }))
        .route("/console/", get(index))
        .route("/console/assets/{*file}", get(asset))
        .route("/console/api/overview", get(overview))
        .route("/console/api/cluster", get(cluster))
        .route("/console/api/streams/{kind}/{name}", get(stream))
        .route("/console/api/{*rest}", get(unknown))
        .with_state(console)
        .merge(call)
}

type Shared = State<Arc<Console>>;

async fn index(headers: HeaderMap) -> Response {
    assets::serve("index.html", &headers).unwrap_or_else(|| not_a_file("index.html"))
}

async fn asset(file: Result<Path<String>, PathRejection>, headers: HeaderMap) -> Response {
    let Ok(Path(file)) = file else { return not_a_file("?") };
    if file == "index.html" {
        return not_a_file(&file);
    }
    assets::serve(&file, &headers).unwrap_or_else(|| not_a_file(&file))
}

fn not_a_file(file: &str) -> Response {
    ConsoleError::NotFound(format!("no console file {file:?}")).into_response()
}

async fn overview(State(console): Shared, headers: HeaderMap) -> Response {
    answer(blocking(move || Ok(overview::overview(&console))).await, &headers)
}

async fn cluster(State(console): Shared, headers: HeaderMap) -> Response {
    answer(blocking(move || Ok(cluster::cluster(&console))).await, &headers)
}

async fn stream(
    State(console): Shared,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let Ok(Path((kind, name))) = path else {
        return ConsoleError::NotFound("no such stream: the name is not UTF-8".into())
            .into_response();
    };
    answer(blocking(move || stream::detail(&console, &kind, &name)).await, &headers)
}

async fn unknown() -> ConsoleError {
    ConsoleError::NotFound(
        "no such console endpoint; see /console/api/overview, /console/api/streams/<kind>/<name>, \
         /console/api/cluster"
            .into(),
    )
}

/// Runs `f` (it reads every stream's state and renders the metrics) off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ConsoleError> + Send + 'static,
) -> Result<T, ConsoleError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(ConsoleError::Internal(format!("the console's task failed: {e}"))))
}

/// The JSON of `result`, gzip'd (quickly) when it is large and the browser takes gzip: an
/// hour of charts is tens of KiB of numbers that compress well.
fn answer<T: Serialize>(result: Result<T, ConsoleError>, headers: &HeaderMap) -> Response {
    let body = match result
        .and_then(|v| serde_json::to_string(&v).map_err(|e| ConsoleError::Internal(e.to_string())))
    {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    if body.len() < 1024 || !assets::accepts_gzip(headers) {
        return json(body);
    }
    match assets::gzip_fast(body.as_bytes()) {
        Some(gz) => {
            let mut response = json(String::new());
            *response.body_mut() = axum::body::Body::from(gz);
            let h = response.headers_mut();
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
            response
        }
        None => json(body),
    }
}

/// A JSON answer that is never cached.
fn json(body: String) -> Response {
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    security_headers(h);
    response
}

/// What every console answer carries: nothing but our own files may run or be fetched, and
/// no other site may frame the page.
fn security_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}
