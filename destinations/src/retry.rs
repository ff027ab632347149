//! How to retry: exponential backoff with jitter, bounded by a retry duration.
//!
//! Whether to retry is the destination's decision ([`crate::DestinationError::class`]); this
//! module only decides when. Firehose retries S3 for 24 hours and other destinations for
//! `RetryOptions.DurationInSeconds`; Hydrant keeps undelivered records in its durable log, so a
//! policy without a deadline simply keeps trying (and the backlog is visible in metrics).

use std::time::{Duration, Instant};

use rand::Rng;

use crate::{Destination, DestinationError, Outcome, Rejected};

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
    /// What counts against `max_duration`.
    pub clock: RetryClock,
}

/// What a retry duration measures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RetryClock {
    /// Wall-clock time since the sequence started, attempts included.
    #[default]
    Elapsed,
    /// Only the waits between attempts: time spent waiting for a destination's answer does not
    /// count (Firehose's HTTP endpoint `RetryOptions.DurationInSeconds`).
    WaitsOnly,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.15,
            max_duration: None,
            clock: RetryClock::Elapsed,
        }
    }
}

impl RetryPolicy {
    /// Starts a backoff sequence for one request.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            policy: self.clone(),
            attempt: 0,
            started: Instant::now(),
            waited: Duration::ZERO,
        }
    }
}

/// The waits of one request's retries.
#[derive(Debug)]
pub struct Backoff {
    policy: RetryPolicy,
    attempt: u32,
    started: Instant,
    /// Sum of the waits handed out so far.
    waited: Duration,
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
        let used = match self.policy.clock {
            RetryClock::Elapsed => self.started.elapsed(),
            RetryClock::WaitsOnly => self.waited,
        };
        // Retry until the duration is used up: the last wait is cut short so one more attempt
        // lands at the deadline, rather than giving up early because a full wait would pass it.
        let wait = match self.policy.max_duration {
            Some(limit) if used >= limit => return None,
            Some(limit) => wait.min(limit - used),
            None => wait,
        };
        self.waited += wait;
        Some(wait)
    }
}

/// A request that could not be delivered within its retry policy.
#[derive(Debug)]
pub struct GaveUp<R> {
    /// The last failure (a permanent error, or the transient one that outlived the deadline).
    pub error: DestinationError,
    /// What is still undelivered: the original request, or the last partial one.
    pub remaining: R,
    /// Records rejected for good by earlier partial attempts.
    pub rejected: Vec<Refused>,
    /// Attempts made, the first included.
    pub attempts: u32,
}

/// Delivers `request`, retrying by the destination's [`Destination::retry_policy`]: transient
/// errors and retryable items are tried again after a backoff, permanent errors end at once.
/// Returns the records rejected for good (everything else is delivered), or what was left when
/// the policy gave up. `on_retry` hears of every failure that will be retried (for logs and
/// metrics) with the attempt number and the wait before the next one.
pub async fn deliver_with_retry<D: Destination>(
    destination: &D,
    request: D::Request,
    mut on_retry: impl FnMut(&DestinationError, u32, Duration) + Send,
) -> Result<Vec<Refused>, GaveUp<D::Request>> {
    let mut backoff = destination.retry_policy().backoff();
    let mut current = request;
    let mut rejected = Vec::new();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let refused =
            |r: Vec<Rejected>| r.into_iter().map(move |record| Refused { record, attempts });
        let error = match destination.deliver(&current).await {
            Ok(Outcome::Delivered { rejected: more }) => {
                rejected.extend(refused(more));
                return Ok(rejected);
            }
            Ok(Outcome::RetryPartial { request, rejected: more }) => {
                rejected.extend(refused(more));
                current = request;
                DestinationError::transient(
                    format!("{}.PartialFailure", destination.kind()),
                    "some records failed with a retryable error",
                )
            }
            Err(e) => e,
        };
        let wait = if error.is_retryable() { backoff.next_wait() } else { None };
        match wait {
            Some(wait) => {
                on_retry(&error, attempts, wait);
                tokio::time::sleep(wait).await;
            }
            None => return Err(GaveUp { error, remaining: current, rejected, attempts }),
        }
    }
}

/// A record the destination refused for good, and on which attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub record: Rejected,
    /// Attempts made for the request that carried it when it was refused (the first is 1).
    pub attempts: u32,
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
        std::thread::sleep(b.next_wait().expect("200 ms fits"));
        // 400 ms would pass the deadline: the wait is cut so the last attempt lands on it.
        let last = b.next_wait().expect("one more attempt at the deadline");
        assert!(
            last <= Duration::from_millis(300) && last >= Duration::from_millis(200),
            "{last:?}"
        );
        std::thread::sleep(last);
        assert!(b.next_wait().is_none(), "the duration is used up");
    }

    #[test]
    fn a_waits_only_clock_ignores_time_spent_on_attempts() {
        let policy = RetryPolicy {
            max_duration: Some(Duration::from_millis(700)),
            jitter: 0.0,
            clock: RetryClock::WaitsOnly,
            ..RetryPolicy::default()
        };
        let mut b = policy.backoff();
        std::thread::sleep(Duration::from_millis(750)); // a slow attempt: not counted
        assert_eq!(b.next_wait(), Some(Duration::from_millis(200)));
        assert_eq!(b.next_wait(), Some(Duration::from_millis(400))); // 600 ms waited
        assert_eq!(b.next_wait(), Some(Duration::from_millis(100))); // cut to the deadline
        assert_eq!(b.next_wait(), None); // 700 ms waited: done
    }

    #[test]
    fn zero_retry_duration_means_no_retry() {
        let policy = RetryPolicy { max_duration: Some(Duration::ZERO), ..RetryPolicy::default() };
        assert!(policy.backoff().next_wait().is_none());
    }
}

#[cfg(test)]
mod driver_tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::ErrorClass;

    /// Items are numbers; odd numbers fail once with a retryable error, 13 is rejected for
    /// good, and a request of only `[99]` fails as a whole with `class`.
    #[derive(Debug)]
    struct Picky {
        seen: Mutex<Vec<Vec<u32>>>,
        class: ErrorClass,
        deadline: Option<Duration>,
    }

    #[async_trait]
    impl Destination for Picky {
        type Request = Vec<(usize, u32)>;
        fn kind(&self) -> &'static str {
            "picky"
        }
        fn retry_policy(&self) -> RetryPolicy {
            RetryPolicy {
                initial: Duration::from_millis(1),
                max: Duration::from_millis(2),
                jitter: 0.0,
                max_duration: self.deadline,
                ..RetryPolicy::default()
            }
        }
        async fn deliver(
            &self,
            request: &Self::Request,
        ) -> Result<Outcome<Self::Request>, DestinationError> {
            let first_time = {
                let mut seen = self.seen.lock().unwrap();
                seen.push(request.iter().map(|(_, n)| *n).collect());
                seen.len() == 1
            };
            if request.iter().any(|(_, n)| *n == 99) {
                return Err(DestinationError {
                    class: self.class,
                    code: "X".into(),
                    message: "no".into(),
                });
            }
            let rejected = request
                .iter()
                .filter(|(_, n)| *n == 13)
                .map(|(i, _)| Rejected { index: *i, code: "Bad".into(), message: "13".into() })
                .collect();
            let retry: Vec<_> = request
                .iter()
                .filter(|(_, n)| first_time && n % 2 == 1 && *n != 13)
                .copied()
                .collect();
            if retry.is_empty() {
                Ok(Outcome::Delivered { rejected })
            } else {
                Ok(Outcome::RetryPartial { request: retry, rejected })
            }
        }
    }

    fn picky(class: ErrorClass, deadline: Option<Duration>) -> Picky {
        Picky { seen: Mutex::new(Vec::new()), class, deadline }
    }

    #[tokio::test]
    async fn only_retryable_items_are_sent_again_and_rejections_keep_original_positions() {
        let dest = picky(ErrorClass::Transient, None);
        let request = vec![(0, 2), (1, 3), (2, 13), (3, 4), (4, 5)];
        let mut retries = 0;
        let rejected = deliver_with_retry(&dest, request, |_, _, _| retries += 1).await.unwrap();
        let record = Rejected { index: 2, code: "Bad".into(), message: "13".into() };
        assert_eq!(rejected, vec![Refused { record, attempts: 1 }]);
        assert_eq!(*dest.seen.lock().unwrap(), vec![vec![2, 3, 13, 4, 5], vec![3, 5]]);
        assert_eq!(retries, 1);
    }

    #[tokio::test]
    async fn a_permanent_error_gives_up_after_one_attempt() {
        let dest = picky(ErrorClass::Permanent, None);
        let gave_up = deliver_with_retry(&dest, vec![(0, 99)], |_, _, _| {}).await.unwrap_err();
        assert_eq!(gave_up.attempts, 1);
        assert_eq!(gave_up.remaining, vec![(0, 99)]);
        assert_eq!(dest.seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_transient_error_is_retried_until_the_retry_duration_ends() {
        let dest = picky(ErrorClass::Transient, Some(Duration::from_millis(30)));
        let gave_up = deliver_with_retry(&dest, vec![(0, 99)], |_, _, _| {}).await.unwrap_err();
        assert!(gave_up.attempts > 3, "{}", gave_up.attempts);
        assert_eq!(gave_up.error.code, "X");
    }
}
