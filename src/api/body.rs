//! A request body on its way in: how large it says it is, the memory it may hold, and how
//! fast it must arrive.
//!
//! 1. [`declared_length`]: a `Content-Length` beyond [`MAX_BODY_BYTES`] is answered `413
//!    RequestEntityTooLargeException` at once, before anything of the body is read or any
//!    memory is reserved for it.
//! 2. [`reserve_memory`]: room for the body (its `Content-Length`, or the maximum when it is
//!    sent chunked) in its client's allowance (`http.max_inflight_bytes_per_client`) and
//!    then in the server's ([`MAX_INFLIGHT_MIB`]). A caller waits up to [`INFLIGHT_WAIT`]
//!    in all, then gets `503 ServiceUnavailableException`, which every SDK retries.
//! 3. [`read_body`]: the body must arrive by `body_timeout + received / min_rate` (the
//!    deadline moves as bytes come in, so any client faster than the minimum rate never
//!    meets it), and no more than `body_timeout` may pass without a byte (a rate earned by
//!    sending most of a body at once cannot be spent stalling while its memory is held); a
//!    body that falls behind is answered `408 RequestTimeoutException` and its connection
//!    closed.
//!
//! A body refused as too large is read and thrown away in the background, at the same
//! minimum rate and up to [`MAX_DISCARD_BYTES`], so that a client that sends the whole body
//! before reading the answer (every SDK) sees the 413 instead of a reset connection.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use bytes::BytesMut;
use futures::StreamExt;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::{ApiError, AppState, ErrorType};
use crate::config::HttpConfig;
use crate::listener::Peer;

/// Largest request body accepted (`http:` checks its per-client cap against it).
pub use crate::config::MAX_BODY_BYTES;

/// Request bodies held in memory at once, in MiB. The log's writers take appends without a
/// bound, so the API is where memory is capped: past this, callers wait briefly and then get
/// ServiceUnavailableException ("Slow down."), which every SDK retries with backoff.
pub const MAX_INFLIGHT_MIB: u32 = 256;

/// How long a call may wait for room before it is turned away.
pub const INFLIGHT_WAIT: Duration = Duration::from_secs(5);

/// Most bytes of a refused body read (and dropped) so its client can see the answer; a larger
/// one has its connection closed instead.
pub const MAX_DISCARD_BYTES: u64 = 4 * MAX_BODY_BYTES as u64;

/// How fast a request body must arrive (`http.body_timeout_seconds`,
/// `http.min_body_bytes_per_second`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyRate {
    pub grace: Duration,
    pub min_bytes_per_second: u64,
}

impl BodyRate {
    pub fn from_config(http: &HttpConfig) -> Self {
        Self { grace: http.body_timeout(), min_bytes_per_second: http.min_body_bytes_per_second }
    }

    /// When the next bytes must have arrived, given that reading began at `start`,
    /// `received` bytes have arrived and the last of them came at `last_progress`: the
    /// average rate since the start must stay above the minimum, and no pause may be longer
    /// than the grace period.
    fn deadline(&self, start: Instant, received: u64, last_progress: Instant) -> Instant {
        let earned = Duration::from_secs_f64(received as f64 / self.min_bytes_per_second as f64);
        (start + self.grace + earned).min(last_progress + self.grace)
    }
}

impl Default for BodyRate {
    fn default() -> Self {
        Self::from_config(&HttpConfig::default())
    }
}

fn too_large(what: String) -> ApiError {
    ApiError::new(
        ErrorType::RequestEntityTooLarge,
        format!(
            "{what}, over the {} MiB this server accepts: PutRecordBatch takes at most 500 \
             records and 4 MiB of data per call (about 5.4 MiB once base64-encoded); split \
             the batch",
            MAX_BODY_BYTES >> 20
        ),
    )
}

/// The body's `Content-Length` (`None` when it is sent chunked), refused when it is larger
/// than any valid request.
pub fn declared_length(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(header::CONTENT_LENGTH) else { return Ok(None) };
    // hyper has already refused a malformed or repeated Content-Length.
    let length = value.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok());
    match length {
        Some(length) if length > MAX_BODY_BYTES as u64 => {
            Err(too_large(format!("the request body is {length} bytes (Content-Length)")))
        }
        length => Ok(length),
    }
}

/// Room reserved for one request body; dropping it gives the room back.
#[derive(Debug)]
pub struct Room {
    _client: Option<OwnedSemaphorePermit>,
    _server: OwnedSemaphorePermit,
}

/// The in-flight memory for a body of `length` bytes (the maximum when unknown), first in
/// the client's allowance, then in the server's; one permit is one KiB.
pub async fn reserve_memory(
    state: &AppState,
    peer: Option<&Peer>,
    length: Option<u64>,
) -> Result<Room, ApiError> {
    let length = length.unwrap_or(MAX_BODY_BYTES as u64).min(MAX_BODY_BYTES as u64);
    let kib = length.div_ceil(1024).max(1) as u32;
    let deadline = Instant::now() + INFLIGHT_WAIT;
    let client = match peer {
        Some(peer) => peer.client.reserve(kib, deadline).await.map_err(|_| {
            state.metrics.http_request_rejected("client_inflight");
            ApiError::new(
                ErrorType::ServiceUnavailable,
                format!(
                    "Slow down. Requests from {} already hold this server's per-client limit \
                     of in-flight request data (http.max_inflight_bytes_per_client); retry \
                     with backoff or send fewer calls at once",
                    peer.client.key
                ),
            )
        })?,
        None => None,
    };
    let server =
        tokio::time::timeout_at(deadline, state.inflight.clone().acquire_many_owned(kib)).await;
    match server {
        Ok(Ok(server)) => Ok(Room { _client: client, _server: server }),
        _ => {
            state.metrics.http_request_rejected("inflight");
            Err(ApiError::new(
                ErrorType::ServiceUnavailable,
                "Slow down. Hydrant is holding its maximum of in-flight request data; retry with backoff",
            ))
        }
    }
}

/// Reads the whole body within its rate deadline. `length` is its `Content-Length`.
pub async fn read_body(
    state: &AppState,
    body: Body,
    length: Option<u64>,
) -> Result<Bytes, ApiError> {
    let rate = state.body_rate;
    let start = Instant::now();
    let capacity = length.unwrap_or(0).min(MAX_BODY_BYTES as u64) as usize;
    let mut data = BytesMut::with_capacity(capacity);
    let mut stream = body.into_data_stream();
    let mut last_progress = start;
    loop {
        let received = data.len() as u64;
        let deadline = rate.deadline(start, received, last_progress);
        let next = tokio::time::timeout_at(deadline, stream.next()).await;
        match next {
            Ok(None) => return Ok(data.freeze()),
            Ok(Some(Ok(chunk))) => {
                if !chunk.is_empty() {
                    last_progress = Instant::now();
                }
                if data.len() + chunk.len() > MAX_BODY_BYTES {
                    state.metrics.http_request_rejected("too_large");
                    discard(stream, rate, MAX_DISCARD_BYTES.saturating_sub(received));
                    return Err(too_large("the request body (sent chunked) is larger".into()));
                }
                data.extend_from_slice(&chunk);
            }
            Ok(Some(Err(e))) => {
                return Err(ApiError::new(
                    ErrorType::Serialization,
                    format!(
                        "the request body could not be read ({e}); the connection failed or \
                         closed before the whole body arrived"
                    ),
                ))
            }
            Err(_) => {
                state.metrics.http_connection_timed_out("api", "body");
                let of = length.map_or(String::new(), |l| format!(" of {l}"));
                let elapsed = start.elapsed().as_secs_f64();
                tracing::debug!(
                    received,
                    elapsed_seconds = elapsed,
                    "request body too slow; closing the connection"
                );
                return Err(ApiError::new(
                    ErrorType::RequestTimeout,
                    format!(
                        "the request body arrived too slowly ({received}{of} bytes in \
                         {elapsed:.1} s): after its first {} s a body must keep arriving at \
                         {} bytes per second or more, with no pause longer than {0} s (this \
                         server's http.body_timeout_seconds and http.min_body_bytes_per_second); \
                         retry on a faster connection or send smaller batches",
                        rate.grace.as_secs(),
                        rate.min_bytes_per_second
                    ),
                ));
            }
        }
    }
}

/// Reads and drops a refused body in the background, at the minimum rate and up to
/// [`MAX_DISCARD_BYTES`], so its client gets to read the answer; then lets it go (which
/// closes the connection). A client that asked `Expect: 100-continue` has sent nothing yet
/// and will not once it reads the answer: its body is not asked for.
pub fn discard_body(body: Body, headers: &HeaderMap, rate: BodyRate) {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if headers.contains_key(header::EXPECT) || declared.is_some_and(|l| l > MAX_DISCARD_BYTES) {
        return;
    }
    discard(body.into_data_stream(), rate, MAX_DISCARD_BYTES);
}

fn discard(mut stream: axum::body::BodyDataStream, rate: BodyRate, budget: u64) {
    tokio::spawn(async move {
        let start = Instant::now();
        let mut received = 0u64;
        let mut last_progress = start;
        while received <= budget {
            let deadline = rate.deadline(start, received, last_progress);
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(Ok(chunk))) => {
                    received += chunk.len() as u64;
                    last_progress = Instant::now();
                }
                _ => return,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(length: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, length.parse().unwrap());
        headers
    }

    #[test]
    fn a_content_length_over_the_largest_request_is_refused_as_too_large() {
        let e = declared_length(&headers("8388609")).unwrap_err();
        assert_eq!(e.kind, ErrorType::RequestEntityTooLarge);
        assert_eq!(e.kind.status().as_u16(), 413);
        assert!(e.message.contains("8388609 bytes"), "{}", e.message);
        assert!(e.message.contains("4 MiB"), "{}", e.message);
        let e = declared_length(&headers("18446744073709551615")).unwrap_err();
        assert_eq!(e.kind, ErrorType::RequestEntityTooLarge);
    }

    #[test]
    fn the_largest_request_and_a_missing_length_pass() {
        assert_eq!(declared_length(&headers("8388608")).unwrap(), Some(8 << 20));
        assert_eq!(declared_length(&headers("0")).unwrap(), Some(0));
        assert_eq!(declared_length(&HeaderMap::new()).unwrap(), None);
    }

    #[test]
    fn the_body_deadline_moves_by_one_second_per_min_rate_bytes() {
        let rate = BodyRate { grace: Duration::from_secs(10), min_bytes_per_second: 1024 };
        let start = Instant::now();
        let now = start + Duration::from_secs(8);
        assert_eq!(rate.deadline(start, 0, start), start + Duration::from_secs(10));
        assert_eq!(rate.deadline(start, 5 * 1024, now), start + Duration::from_secs(15));
        // The defaults: a full-size PutRecordBatch body may take almost three minutes.
        let default = BodyRate::default();
        let full =
            default.deadline(start, (5.4 * 1048576.0) as u64, start + Duration::from_secs(170))
                - start;
        assert!(full > Duration::from_secs(170), "{full:?}");
    }

    #[test]
    fn a_rate_earned_up_front_cannot_be_spent_on_a_pause_longer_than_the_grace() {
        let rate = BodyRate { grace: Duration::from_secs(10), min_bytes_per_second: 32 * 1024 };
        let start = Instant::now();
        // 8 MiB - 1 byte at once would earn 256 s on average; the pause may last only 10 s.
        let arrived = start + Duration::from_millis(100);
        let deadline = rate.deadline(start, (8 << 20) - 1, arrived);
        assert_eq!(deadline, arrived + Duration::from_secs(10));
    }
}
