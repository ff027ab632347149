//! How to retry: exponential backoff with jitter, bounded by a retry duration.
//!
//! Whether to retry is the destination's decision ([`crate::DestinationError::class`]); this
//! module only decides when. Firehose retries S3 for 24 hours and other destinations for
//! `RetryOptions.DurationInSeconds`; Hydrant keeps undelivered records in its durable log, so a
//! policy without a deadline simply keeps trying (and the backlog is visible in metrics).

use std::time::{Duration, Instant};

use rand::Rng;

/// Backoff shape plus an optional overall deadline.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// First wait after a failure.
    pub initial: Duration,
    /// Upper bound for one wait.
    pub max: Duration,
    /// Growth factor per attempt.
    pub multiplier: f64,
    /// Relative jitter: each wait is scaled by a random factor in `1 ± jitter`.
    pub jitter: f64,
    /// Stop retrying once this much time has passed since the first failure (`None`: never).
    pub max_duration: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.15,
            max_duration: None,
        }
    }
}

impl RetryPolicy {
    /// Starts a backoff sequence for one request.
    pub fn backoff(&self) -> Backoff {
        Backoff { policy: self.clone(), attempt: 0, started: Instant::now() }
    }
}

/// The waits of one request's retries.
#[derive(Debug)]
pub struct Backoff {
    policy: RetryPolicy,
    attempt: u32,
    started: Instant,
}

impl Backoff {
    /// Number of failed attempts recorded so far.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Records a failed attempt and returns how long to wait before the next one, or `None`
    /// when the retry duration is used up.
    pub fn next_wait(&mut self) -> Option<Duration> {
        self.attempt += 1;
        let exp = self.policy.multiplier.powi(self.attempt.saturating_sub(1).min(64) as i32);
        let base = self.policy.initial.as_secs_f64() * exp;
        let capped = base.min(self.policy.max.as_secs_f64());
        let factor = if self.policy.jitter > 0.0 {
            rand::rng().random_range(1.0 - self.policy.jitter..=1.0 + self.policy.jitter)
        } else {
            1.0
        };
        let wait = Duration::from_secs_f64((capped * factor).max(0.0));
        match self.policy.max_duration {
            Some(limit) if self.started.elapsed() + wait > limit => None,
            _ => Some(wait),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_exponentially_up_to_the_cap() {
        let policy = RetryPolicy { jitter: 0.0, ..RetryPolicy::default() };
        let mut b = policy.backoff();
        let waits: Vec<_> = (0..10).map(|_| b.next_wait().unwrap()).collect();
        assert_eq!(waits[0], Duration::from_millis(200));
        assert_eq!(waits[1], Duration::from_millis(400));
        assert_eq!(waits[2], Duration::from_millis(800));
        assert_eq!(*waits.last().unwrap(), Duration::from_secs(30));
        assert_eq!(b.attempts(), 10);
    }

    #[test]
    fn jitter_stays_within_its_band() {
        let policy = RetryPolicy { jitter: 0.15, ..RetryPolicy::default() };
        for _ in 0..100 {
            let w = policy.backoff().next_wait().unwrap().as_secs_f64();
            assert!((0.17..=0.23).contains(&w), "{w}");
        }
    }

    #[test]
    fn a_retry_duration_ends_the_sequence() {
        let policy = RetryPolicy {
            max_duration: Some(Duration::from_millis(500)),
            jitter: 0.0,
            ..RetryPolicy::default()
        };
        let mut b = policy.backoff();
        assert!(b.next_wait().is_some()); // 200 ms fits
        assert!(b.next_wait().is_some()); // 400 ms fits (elapsed is ~0 in this test)
        assert!(b.next_wait().is_none()); // 800 ms would pass the deadline
    }

    #[test]
    fn zero_retry_duration_means_no_retry() {
        let policy = RetryPolicy { max_duration: Some(Duration::ZERO), ..RetryPolicy::default() };
        assert!(policy.backoff().next_wait().is_none());
    }
}
