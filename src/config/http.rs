//! `http:`: how long and how much of the server one HTTP client may hold.
//!
//! The defaults suit a server reachable from the internet: a connection that sends nothing,
//! or sends its headers or body a few bytes at a time, is closed after seconds; one client
//! address can hold only a share of the request memory (the rest stays for everyone else);
//! an honest producer on a slow link still fits. Checked by [`HttpConfig::issues`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::model::de;
use super::Issue;

/// Default of `http.header_timeout_seconds`.
pub const HEADER_TIMEOUT_SECONDS: u64 = 10;
/// Default of `http.idle_timeout_seconds`.
pub const IDLE_TIMEOUT_SECONDS: u64 = 60;
/// Default of `http.body_timeout_seconds`.
pub const BODY_TIMEOUT_SECONDS: u64 = 10;
/// Default of `http.min_body_bytes_per_second`: 32 KiB/s (256 kbit/s). A full 5.4 MiB
/// PutRecordBatch body then has almost three minutes.
pub const MIN_BODY_BYTES_PER_SECOND: u64 = 32 << 10;
/// Default of `http.max_connections_per_client`.
pub const MAX_CONNECTIONS_PER_CLIENT: u32 = 128;
/// Default of `http.max_inflight_bytes_per_client`: 32 MiB, an eighth of the server's
/// 256 MiB of request memory.
pub const MAX_INFLIGHT_BYTES_PER_CLIENT: u64 = 32 << 20;

/// Largest request body accepted. A full PutRecordBatch (4 MiB of data) is about 5.4 MiB once
/// base64-encoded; anything much larger cannot be a valid call. The API refuses larger bodies;
/// `http.max_inflight_bytes_per_client` must leave room for one.
pub const MAX_BODY_BYTES: usize = 8 << 20;

/// Largest accepted value of each timeout, in seconds.
const MAX_TIMEOUT_SECONDS: u64 = 3600;

/// Timeouts and per-client caps of the HTTP listeners (`http:`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Seconds a client has to send a complete request head (request line and headers):
    /// counted from the moment its connection is accepted (including the TLS handshake with
    /// `tls`), or on a kept-alive connection from the first byte of the next request. Past
    /// it the connection is closed. Default 10.
    #[serde(default = "header_timeout_seconds")]
    pub header_timeout_seconds: u64,

    /// Seconds a kept-alive connection may stay open with no request on it before it is
    /// closed. Default 60.
    #[serde(default = "idle_timeout_seconds")]
    pub idle_timeout_seconds: u64,

    /// Seconds a request body may take before `min_body_bytes_per_second` applies: the whole
    /// body must have arrived `body_timeout_seconds` + (bytes received so far) /
    /// `min_body_bytes_per_second` after reading began. A body that falls behind is answered
    /// `408 RequestTimeoutException` and its connection closed. Default 10.
    #[serde(default = "body_timeout_seconds")]
    pub body_timeout_seconds: u64,

    /// The slowest sustained rate a request body may arrive at, in bytes per second, as a
    /// number or with a unit (`32KiB`). Default 32KiB.
    #[serde(default = "min_body_bytes_per_second", deserialize_with = "de::byte_size")]
    pub min_body_bytes_per_second: u64,

    /// Most connections one client address may have open at once (an IPv6 client counts per
    /// /64 network); more are closed as soon as they are accepted. 0: no limit. Default 128.
    #[serde(default = "max_connections_per_client")]
    pub max_connections_per_client: u32,

    /// Most request body bytes one client address may have in flight at once (bytes or with
    /// a unit); past it its requests wait up to 5 seconds for room, then get `503
    /// ServiceUnavailableException`, which every SDK retries. At least 8MiB (the largest
    /// request), or 0 for no limit. Default 32MiB.
    #[serde(default = "max_inflight_bytes_per_client", deserialize_with = "de::byte_size")]
    pub max_inflight_bytes_per_client: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_timeout_seconds: HEADER_TIMEOUT_SECONDS,
            idle_timeout_seconds: IDLE_TIMEOUT_SECONDS,
            body_timeout_seconds: BODY_TIMEOUT_SECONDS,
            min_body_bytes_per_second: MIN_BODY_BYTES_PER_SECOND,
            max_connections_per_client: MAX_CONNECTIONS_PER_CLIENT,
            max_inflight_bytes_per_client: MAX_INFLIGHT_BYTES_PER_CLIENT,
        }
    }
}

fn header_timeout_seconds() -> u64 {
    HEADER_TIMEOUT_SECONDS
}
fn idle_timeout_seconds() -> u64 {
    IDLE_TIMEOUT_SECONDS
}
fn body_timeout_seconds() -> u64 {
    BODY_TIMEOUT_SECONDS
}
fn min_body_bytes_per_second() -> u64 {
    MIN_BODY_BYTES_PER_SECOND
}
fn max_connections_per_client() -> u32 {
    MAX_CONNECTIONS_PER_CLIENT
}
fn max_inflight_bytes_per_client() -> u64 {
    MAX_INFLIGHT_BYTES_PER_CLIENT
}

impl HttpConfig {
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_seconds)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_seconds)
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_seconds)
    }

    /// Every problem with the block, each naming its field.
    pub fn issues(&self) -> Vec<Issue> {
        let mut issues = Vec::new();
        for (field, value) in [
            ("http.header_timeout_seconds", self.header_timeout_seconds),
            ("http.idle_timeout_seconds", self.idle_timeout_seconds),
            ("http.body_timeout_seconds", self.body_timeout_seconds),
        ] {
            if !(1..=MAX_TIMEOUT_SECONDS).contains(&value) {
                issues.push(Issue::new(
                    field,
                    format!("must be 1..={MAX_TIMEOUT_SECONDS} seconds, got {value}"),
                ));
            }
        }
        if self.min_body_bytes_per_second < 1024 {
            issues.push(Issue::new(
                "http.min_body_bytes_per_second",
                format!(
                    "must be at least 1KiB (1024 bytes per second), got {}; the default is 32KiB",
                    self.min_body_bytes_per_second
                ),
            ));
        }
        let largest = MAX_BODY_BYTES as u64;
        let inflight = self.max_inflight_bytes_per_client;
        if inflight != 0 && inflight < largest {
            issues.push(Issue::new(
                "http.max_inflight_bytes_per_client",
                format!(
                    "must be at least {}MiB (the largest request Hydrant accepts) or 0 for no \
                     limit, got {inflight}; the default is 32MiB",
                    largest >> 20
                ),
            ));
        }
        issues
    }
}
