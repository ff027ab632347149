//! What `GET /readyz` answers: [`readiness`] decides, the HTTP handler only renders it (so the
//! endpoint can move to another listener without changing the rule).
//!
//! The rule, with Kubernetes in mind (a pod that is not ready is taken out of its Service, so
//! producers stop reaching it):
//!
//! * **503 not ready** only when the pod cannot take records: a shard's log refuses writes
//!   (a failed fsync poisons it until a restart). Sending producers elsewhere is then right.
//! * **200 ready** while delivery is held back (a destination failing, a worker restarting
//!   after a full disk): the pod still takes records and keeps them durably, which is what the
//!   log is for. Taking it out of the Service would turn a destination outage, which usually
//!   hits every pod at once, into an ingestion outage. The body then names every held-back
//!   stream and shard with the reason, and `hydrant_delivery_blocked_seconds` (alert on it)
//!   and an error log line say the same.
//!
//! The body is text: its first line is `ready`, `ready, delivery held back on N shards` or
//! `not ready`, then one line per shard.

use crate::registry::Registry;

/// The answer: whether the pod takes records, and the text to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub ready: bool,
    pub body: String,
}

/// Readiness of every stream's log and delivery.
pub fn readiness(streams: &Registry) -> Readiness {
    let mut refusing = Vec::new();
    let mut held_back = Vec::new();
    for stream in streams.all() {
        for problem in stream.log_problems() {
            refusing.push(format!(
                "stream={} shard={}: the log refuses writes: {}",
                stream.name, problem.shard, problem.reason
            ));
        }
        for (consumer, shard, problem) in stream.delivery_problems() {
            held_back.push(format!(
                "stream={} shard={shard} consumer={consumer} blocked_s={}: {}",
                stream.name,
                problem.blocked_for.as_secs(),
                problem.detail
            ));
        }
    }
    let headline = match (refusing.is_empty(), held_back.len()) {
        (false, _) => "not ready".to_owned(),
        (true, 0) => "ready".to_owned(),
        (true, n) => format!(
            "ready, delivery held back on {n} shard{} (records wait in the log)",
            if n == 1 { "" } else { "s" }
        ),
    };
    let mut body = headline;
    body.push('\n');
    for line in refusing.iter().chain(&held_back) {
        body.push_str(line);
        body.push('\n');
    }
    Readiness { ready: refusing.is_empty(), body }
}
