//! Whether a shard's delivery moves. Anything that holds a shard back (its oldest object
//! failing again and again, its worker down and restarting) is recorded here, so that it
//! shows in the metrics (`hydrant_delivery_blocked_seconds{stream,shard}`), in an error log
//! line once it lasts [`BLOCKED_AFTER`], and in `/readyz` (see [`crate::health`]).
//!
//! Records are never dropped while a shard is held back: they wait in the log. What this
//! adds is that nobody has to guess why.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a shard's delivery may fail before it is reported at error level.
pub const BLOCKED_AFTER: Duration = Duration::from_secs(60);
/// How often a still-blocked shard is reported again.
const REPORT_EVERY: Duration = Duration::from_secs(600);
/// Longest error text kept.
const MAX_ERROR_CHARS: usize = 512;

/// One worker's (one shard and consumer's) delivery health.
#[derive(Debug, Default)]
pub struct DeliveryHealth {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The object being delivered keeps failing.
    failing: Option<Trouble>,
    /// The worker stopped on an error; it is restarted after a backoff.
    down: Option<Trouble>,
}

#[derive(Debug, Clone)]
struct Trouble {
    since: Instant,
    /// Failed attempts (failing) or failed runs (down).
    count: u64,
    error: String,
    reported: Option<Instant>,
}

/// What holds a shard back, for `/readyz` and the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// How long the shard has not moved.
    pub blocked_for: Duration,
    /// One line: what fails, how often, the last error.
    pub detail: String,
}

impl DeliveryHealth {
    pub fn new() -> Self {
        Self::default()
    }

    /// A delivery attempt failed and will be retried.
    pub fn attempt_failed(&self, stream: &str, shard: u32, error: &dyn std::fmt::Display) {
        let mut state = self.state.lock().expect("not poisoned");
        let now = Instant::now();
        let trouble = state.failing.get_or_insert_with(|| Trouble::starting(now));
        trouble.count += 1;
        trouble.error = cut(error.to_string());
        if trouble.due_for_report(now) {
            tracing::error!(stream, shard, blocked_s = (now - trouble.since).as_secs(),
                attempts = trouble.count, error = %trouble.error,
                "delivery is blocked: the shard's oldest object keeps failing; its records and \
                 every record after them wait in the log");
        }
    }

    /// The worker stopped on `error` (in its `part`) and restarts in `restart_in`.
    pub fn worker_failed(
        &self,
        stream: &str,
        shard: u32,
        part: &str,
        error: &dyn std::fmt::Display,
        restart_in: Duration,
    ) {
        let mut state = self.state.lock().expect("not poisoned");
        let now = Instant::now();
        let trouble = state.down.get_or_insert_with(|| Trouble::starting(now));
        trouble.count += 1;
        trouble.error = cut(format!("{part}: {error}"));
        tracing::error!(stream, shard, part, failures = trouble.count,
            down_s = (now - trouble.since).as_secs(), restart_in_ms = restart_in.as_millis() as u64,
            error = %error,
            "delivery worker failed; restarting it (records stay in the log and are delivered once it runs again)");
    }

    /// An object was delivered and its checkpoint stored: the shard moves.
    pub fn delivered(&self, stream: &str, shard: u32) {
        let mut state = self.state.lock().expect("not poisoned");
        for trouble in [state.failing.take(), state.down.take()].into_iter().flatten() {
            if trouble.reported.is_some() || trouble.since.elapsed() >= BLOCKED_AFTER {
                tracing::info!(
                    stream,
                    shard,
                    blocked_s = trouble.since.elapsed().as_secs(),
                    "delivery resumed"
                );
            }
        }
    }

    /// The worker runs and has nothing left to deliver.
    pub fn caught_up(&self) {
        let mut state = self.state.lock().expect("not poisoned");
        state.down = None;
        state.failing = None;
    }

    /// Whether the worker is down (stopped on an error, waiting to restart).
    pub fn is_down(&self) -> bool {
        self.state.lock().expect("not poisoned").down.is_some()
    }

    /// What holds the shard back, if anything.
    pub fn problem(&self) -> Option<Problem> {
        let state = self.state.lock().expect("not poisoned");
        let since = [&state.failing, &state.down].into_iter().flatten().map(|t| t.since).min()?;
        let mut parts = Vec::new();
        if let Some(down) = &state.down {
            parts.push(format!(
                "worker down, restarting ({} failed runs): {}",
                down.count, down.error
            ));
        }
        if let Some(failing) = &state.failing {
            parts.push(format!("delivery failing ({} attempts): {}", failing.count, failing.error));
        }
        Some(Problem { blocked_for: since.elapsed(), detail: parts.join("; ") })
    }
}

impl Trouble {
    fn starting(now: Instant) -> Self {
        Self { since: now, count: 0, error: String::new(), reported: None }
    }

    /// Whether to log at error level now (and note that it was).
    fn due_for_report(&mut self, now: Instant) -> bool {
        let due = now - self.since >= BLOCKED_AFTER
            && self.reported.is_none_or(|at| now - at >= REPORT_EVERY);
        if due {
            self.reported = Some(now);
        }
        due
    }
}

fn cut(mut text: String) -> String {
    if let Some((at, _)) = text.char_indices().nth(MAX_ERROR_CHARS) {
        text.truncate(at);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_healthy_worker_has_no_problem() {
        assert_eq!(DeliveryHealth::new().problem(), None);
    }

    #[test]
    fn failing_attempts_and_a_down_worker_are_reported_until_the_shard_moves() {
        let health = DeliveryHealth::new();
        health.attempt_failed("s", 0, &"S3.ServiceException: down");
        health.attempt_failed("s", 0, &"S3.ServiceException: still down");
        let problem = health.problem().unwrap();
        assert!(problem.detail.contains("2 attempts"), "{}", problem.detail);
        assert!(problem.detail.contains("still down"), "{}", problem.detail);

        health.worker_failed("s", 0, "uploader", &"No space left on device", Duration::ZERO);
        assert!(health.is_down());
        let problem = health.problem().unwrap();
        assert!(problem.detail.contains("worker down"), "{}", problem.detail);
        assert!(problem.detail.contains("uploader: No space left"), "{}", problem.detail);

        health.delivered("s", 0);
        assert_eq!(health.problem(), None);
        assert!(!health.is_down());
    }

    #[test]
    fn a_blocked_shard_is_reported_after_a_minute_and_then_every_ten_minutes() {
        let start = Instant::now();
        let mut trouble = Trouble::starting(start);
        assert!(!trouble.due_for_report(start + Duration::from_secs(59)));
        assert!(trouble.due_for_report(start + BLOCKED_AFTER));
        assert!(!trouble.due_for_report(start + BLOCKED_AFTER + Duration::from_secs(30)));
        assert!(trouble.due_for_report(start + BLOCKED_AFTER + REPORT_EVERY));
    }

    #[test]
    fn long_errors_are_cut() {
        let health = DeliveryHealth::new();
        health.attempt_failed("s", 0, &"x".repeat(10_000));
        assert!(health.problem().unwrap().detail.chars().count() < 600);
    }
}
