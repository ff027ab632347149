//! What a connection is doing, and so how long it may stay quiet.
//!
//! A connection is always in one of three phases:
//! - **head**: a new connection (its TLS handshake included), or a kept-alive one that has
//!   received the first byte of its next request. The request head must be complete within
//!   `http.header_timeout_seconds` from the start of the phase.
//! - **busy**: a request is being served: from its complete head until both its handler has
//!   answered and its body is no longer read. No connection deadline applies: the body has
//!   its own (rate-based, [`crate::api`]) and the handler's waits are bounded where they are.
//! - **idle**: between requests on a kept-alive connection (also while a finished answer is
//!   still being written to a client that does not read it). It must see a new request's
//!   first byte within `http.idle_timeout_seconds`.
//!
//! The phases change on I/O ([`Activity::bytes_read`]) and on the service's calls
//! ([`Activity::request_started`]); the connection task asks [`Activity::expired`] when to
//! close the connection.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
enum Phase {
    Head { since: Instant },
    Busy { requests: u32 },
    Idle { since: Instant },
}

/// Why a connection was closed by its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// The request head (or the TLS handshake) took longer than the header timeout.
    Header,
    /// No new request within the idle timeout.
    Idle,
}

impl Expired {
    /// Label of `hydrant_http_connections_timed_out_total{phase}`.
    pub fn label(self) -> &'static str {
        match self {
            Expired::Header => "header",
            Expired::Idle => "idle",
        }
    }
}

/// The connection deadlines (`http.header_timeout_seconds`, `http.idle_timeout_seconds`).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header: Duration,
    pub idle: Duration,
}

/// The phase of one connection, shared by its I/O, its service and its task.
#[derive(Debug)]
pub struct Activity {
    phase: Mutex<Phase>,
}

impl Activity {
    /// A connection just accepted: its head phase starts now.
    pub fn new() -> Arc<Self> {
        Arc::new(Self { phase: Mutex::new(Phase::Head { since: Instant::now() }) })
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes arrived: on an idle connection they start the next request's head.
    pub fn bytes_read(&self) {
        let mut phase = self.phase();
        if let Phase::Idle { .. } = *phase {
            *phase = Phase::Head { since: Instant::now() };
        }
    }

    /// A request head is complete; the request counts as in progress until the returned
    /// value (and every clone of it) is dropped.
    pub fn request_started(self: &Arc<Self>) -> InProgress {
        let mut phase = self.phase();
        *phase = match *phase {
            Phase::Busy { requests } => Phase::Busy { requests: requests + 1 },
            _ => Phase::Busy { requests: 1 },
        };
        InProgress { activity: self.clone() }
    }

    fn request_finished(&self) {
        let mut phase = self.phase();
        *phase = match *phase {
            Phase::Busy { requests } if requests > 1 => Phase::Busy { requests: requests - 1 },
            _ => Phase::Idle { since: Instant::now() },
        };
    }

    /// When the connection must be closed unless its phase changes first, and why; `None`
    /// while a request is in progress.
    pub fn deadline(&self, timeouts: Timeouts) -> Option<(Instant, Expired)> {
        match *self.phase() {
            Phase::Head { since } => Some((since + timeouts.header, Expired::Header)),
            Phase::Idle { since } => Some((since + timeouts.idle, Expired::Idle)),
            Phase::Busy { .. } => None,
        }
    }

    /// Resolves once the connection has outlived its deadline.
    pub async fn expired(&self, timeouts: Timeouts) -> Expired {
        loop {
            match self.deadline(timeouts) {
                Some((deadline, why)) if deadline <= Instant::now() => return why,
                Some((deadline, _)) => tokio::time::sleep_until(deadline).await,
                // Busy: look again later (the phase has no waker; a request that ends starts
                // an idle phase whose deadline is at least `idle` away).
                None => tokio::time::sleep(timeouts.idle.min(timeouts.header)).await,
            }
        }
    }
}

/// A request in progress (see [`Activity::request_started`]).
#[derive(Debug)]
pub struct InProgress {
    activity: Arc<Activity>,
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.activity.request_finished();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real time, kept short: tokio's paused clock needs its test-util feature.
    const TIMEOUTS: Timeouts =
        Timeouts { header: Duration::from_millis(100), idle: Duration::from_millis(300) };

    fn phase_of(activity: &Activity) -> Option<Expired> {
        activity.deadline(TIMEOUTS).map(|(_, why)| why)
    }

    #[tokio::test]
    async fn a_new_connection_must_send_its_head_within_the_header_timeout() {
        let activity = Activity::new();
        let started = Instant::now();
        activity.bytes_read();
        assert_eq!(activity.expired(TIMEOUTS).await, Expired::Header);
        let took = started.elapsed();
        assert!(took >= TIMEOUTS.header && took < TIMEOUTS.idle, "{took:?}");
    }

    #[tokio::test]
    async fn a_request_in_progress_has_no_deadline_and_its_end_starts_the_idle_phase() {
        let activity = Activity::new();
        let request = activity.request_started();
        assert_eq!(phase_of(&activity), None);
        let waiting = tokio::spawn({
            let activity = activity.clone();
            async move { activity.expired(TIMEOUTS).await }
        });
        tokio::time::sleep(TIMEOUTS.idle * 2).await;
        assert!(!waiting.is_finished(), "a busy connection never expires");
        let ended = Instant::now();
        drop(request);
        assert_eq!(waiting.await.unwrap(), Expired::Idle);
        assert!(ended.elapsed() >= TIMEOUTS.idle, "{:?}", ended.elapsed());
    }

    #[tokio::test]
    async fn the_first_byte_after_idling_starts_a_header_deadline() {
        let activity = Activity::new();
        drop(activity.request_started());
        assert_eq!(phase_of(&activity), Some(Expired::Idle));
        tokio::time::sleep(Duration::from_millis(50)).await;
        activity.bytes_read();
        let (deadline, why) = activity.deadline(TIMEOUTS).unwrap();
        assert_eq!(why, Expired::Header);
        assert!(deadline - Instant::now() <= TIMEOUTS.header);
        // Bytes during the head phase do not extend it.
        tokio::time::sleep(Duration::from_millis(20)).await;
        activity.bytes_read();
        assert_eq!(activity.deadline(TIMEOUTS).unwrap().0, deadline);
    }

    #[test]
    fn a_request_counts_until_every_holder_lets_go() {
        let activity = Activity::new();
        let handler = Arc::new(activity.request_started());
        let body = handler.clone();
        drop(handler);
        assert_eq!(phase_of(&activity), None, "the body is still being read");
        drop(body);
        assert_eq!(phase_of(&activity), Some(Expired::Idle));
    }

    #[test]
    fn overlapping_requests_keep_the_connection_busy_until_the_last_ends() {
        let activity = Activity::new();
        let first = activity.request_started();
        let second = activity.request_started();
        drop(first);
        assert_eq!(phase_of(&activity), None);
        drop(second);
        assert_eq!(phase_of(&activity), Some(Expired::Idle));
    }
}
