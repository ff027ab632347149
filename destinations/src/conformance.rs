//! The conformance suite every destination passes: what Hydrant's delivery layer relies on,
//! whatever the destination is.
//!
//! A destination joins by implementing [`Target`] (how to build a request of given records,
//! what reached the service) and calling [`conformance_tests!`](crate::conformance_tests)
//! with an async constructor of a fresh target, once per place it runs against: a local
//! stand-in in unit tests, the real service in integration tests (those skip when the service
//! is not configured, unless `HYDRANT_REQUIRE_SERVICES=1`).
//!
//! Faults come from a wrapper, as object_store wraps its stores: [`Faulty`] fails chosen
//! attempts before they reach the destination, so the retry cases run against every
//! destination and the stand-ins need no failure modes of their own. Per-record failures are
//! the service's own (a row the database refuses, a document the mapping refuses), or the
//! stand-in's where the real service cannot be made to fail an item on demand (a `_bulk` 429).
//!
//! The cases are public functions named as sentences, so a failure names the promise broken.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use crate::{
    deliver_with_retry, Destination, DestinationError, GaveUp, Outcome, Refused, RetryClock,
    RetryPolicy,
};

/// One destination, set up fresh for one case (its own prefix, index, table or receiver).
#[async_trait]
pub trait Target: Send + Sync {
    type D: Destination;

    /// The destination under test.
    fn destination(&self) -> Arc<Self::D>;

    /// A request carrying `records` in order: record `i` at original index `i`. Building it
    /// twice from the same records gives the same request (the same key, ids or load id), as
    /// a replay of the same batch does in Hydrant.
    fn request(&self, records: &[Bytes]) -> <Self::D as Destination>::Request;

    /// The original indexes of the records `request` carries.
    fn indexes(request: &<Self::D as Destination>::Request) -> Vec<usize>;

    /// Every record that reached the service, with how many times it is stored there.
    async fn stored(&self) -> BTreeMap<Bytes, u32>;

    /// A record the service itself refuses for good (a value the column or mapping does not
    /// take), if this destination refuses single records.
    fn refused_record(&self) -> Option<Bytes> {
        None
    }

    /// Makes the records at these indexes fail once with a retryable per-record error (a
    /// `_bulk` 429 item). `false` when the service cannot be made to (or has no per-record
    /// answers), which skips that case.
    fn fail_records_once(&self, _indexes: &[usize]) -> bool {
        false
    }
}

/// A whole attempt that [`Faulty`] fails before it reaches the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A retryable error (`Faulty.Transient`).
    Transient,
    /// An error that retrying cannot fix (`Faulty.Permanent`).
    Permanent,
}

/// A destination that fails the attempts it is told to, then delegates; it records the
/// original indexes each attempt carried, and retries on a short schedule so cases run fast.
pub struct Faulty<D: Destination> {
    inner: Arc<D>,
    faults: Mutex<VecDeque<Fault>>,
    /// Fail every attempt with [`Fault::Transient`] once `faults` is used up.
    always_transient: bool,
    policy: RetryPolicy,
    indexes: fn(&D::Request) -> Vec<usize>,
    attempts: Mutex<Vec<Vec<usize>>>,
    failed: AtomicU32,
}

impl<D: Destination> Faulty<D> {
    /// Wraps `inner`: no faults, retries after 5 ms, 10 ms, 20 ms..., no deadline.
    pub fn new(inner: Arc<D>, indexes: fn(&D::Request) -> Vec<usize>) -> Self {
        Faulty {
            inner,
            faults: Mutex::new(VecDeque::new()),
            always_transient: false,
            policy: RetryPolicy {
                initial: Duration::from_millis(5),
                max: Duration::from_millis(40),
                multiplier: 2.0,
                jitter: 0.0,
                max_duration: None,
                clock: RetryClock::Elapsed,
            },
            indexes,
            attempts: Mutex::new(Vec::new()),
            failed: AtomicU32::new(0),
        }
    }

    /// Fails the next attempts with these faults, one each.
    pub fn failing(self, faults: impl IntoIterator<Item = Fault>) -> Self {
        self.faults.lock().expect("faults").extend(faults);
        self
    }

    /// Fails every attempt with a transient error.
    pub fn always_failing(mut self) -> Self {
        self.always_transient = true;
        self
    }

    /// Gives up once `limit` has passed since the first attempt.
    pub fn retrying_for(mut self, limit: Duration) -> Self {
        self.policy.max_duration = Some(limit);
        self
    }

    /// The original indexes of every attempt, in order (the failed ones too).
    pub fn attempts(&self) -> Vec<Vec<usize>> {
        self.attempts.lock().expect("attempts").clone()
    }

    /// How many attempts this wrapper failed.
    pub fn failed(&self) -> u32 {
        self.failed.load(Ordering::Relaxed)
    }
}

impl<D: Destination> fmt::Debug for Faulty<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Faulty").field("inner", &self.inner).finish_non_exhaustive()
    }
}

#[async_trait]
impl<D: Destination> Destination for Faulty<D> {
    type Request = D::Request;

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn retry_policy(&self) -> RetryPolicy {
        self.policy.clone()
    }

    async fn deliver(
        &self,
        request: &Self::Request,
    ) -> Result<Outcome<Self::Request>, DestinationError> {
        self.attempts.lock().expect("attempts").push((self.indexes)(request));
        let fault = self.faults.lock().expect("faults").pop_front();
        let fault = fault.or(self.always_transient.then_some(Fault::Transient));
        match fault {
            Some(Fault::Transient) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                Err(DestinationError::transient("Faulty.Transient", "injected transient failure"))
            }
            Some(Fault::Permanent) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                Err(DestinationError::permanent("Faulty.Permanent", "injected permanent failure"))
            }
            None => self.inner.deliver(request).await,
        }
    }
}

/// `n` distinct JSON records, `{"n":0}`, `{"n":1}`, ...
pub fn records(n: usize) -> Vec<Bytes> {
    (0..n).map(|i| Bytes::from(format!("{{\"n\":{i}}}"))).collect()
}

/// The records refused for good by a delivery that must have succeeded.
fn delivered<R>(result: Result<Vec<Refused>, GaveUp<R>>, what: &str) -> Vec<Refused> {
    match result {
        Ok(refused) => refused,
        Err(gave_up) => {
            panic!("{what}: gave up after {} attempts: {}", gave_up.attempts, gave_up.error)
        }
    }
}

/// Each of `records` stored exactly once.
fn once(records: &[Bytes]) -> BTreeMap<Bytes, u32> {
    records.iter().map(|r| (r.clone(), 1)).collect()
}

fn faulty<T: Target>(target: &T) -> Faulty<T::D> {
    Faulty::new(target.destination(), T::indexes)
}

/// A replayed batch (the same request after a crash) leaves each record stored once.
pub async fn delivering_the_same_request_twice_stores_each_record_once<T: Target>(target: &T) {
    let batch = records(5);
    let destination = faulty(target);
    for _ in 0..2 {
        let rejected = delivered(
            deliver_with_retry(&destination, target.request(&batch), |_, _, _| {}).await,
            "delivered",
        );
        assert_eq!(rejected, []);
    }
    assert_eq!(target.stored().await, once(&batch));
}

/// Transient failures are retried with the whole request until one attempt succeeds.
pub async fn a_transient_failure_is_retried_until_it_clears<T: Target>(target: &T) {
    let batch = records(3);
    let destination = faulty(target).failing([Fault::Transient, Fault::Transient]);
    let mut retries = Vec::new();
    let result = deliver_with_retry(&destination, target.request(&batch), |e, attempt, _| {
        retries.push((e.code.clone(), attempt));
    })
    .await;
    let rejected = delivered(result, "delivered once the failures clear");
    assert_eq!(rejected, []);
    let expected: Vec<(String, u32)> =
        vec![("Faulty.Transient".into(), 1), ("Faulty.Transient".into(), 2)];
    assert_eq!(retries, expected);
    assert_eq!(destination.attempts(), vec![vec![0, 1, 2]; 3], "the whole request each time");
    assert_eq!(target.stored().await, once(&batch));
}

/// A permanent failure is not retried: the driver gives up after one attempt and hands back
/// the whole request, which delivers every record when sent later.
pub async fn a_permanent_failure_ends_at_once_with_what_remains<T: Target>(target: &T) {
    let batch = records(3);
    let destination = faulty(target).failing([Fault::Permanent]);
    let gave_up = deliver_with_retry(&destination, target.request(&batch), |e, _, _| {
        panic!("a permanent failure was retried: {e}")
    })
    .await
    .expect_err("a permanent failure gives up");
    assert_eq!(gave_up.attempts, 1);
    assert_eq!(gave_up.error.code, "Faulty.Permanent");
    assert!(!gave_up.error.is_retryable());
    assert_eq!(T::indexes(&gave_up.remaining), vec![0, 1, 2]);
    assert!(gave_up.rejected.is_empty());
    assert_eq!(target.stored().await, BTreeMap::new(), "nothing reached the service");

    let rejected = delivered(
        deliver_with_retry(&faulty(target), gave_up.remaining, |_, _, _| {}).await,
        "what remained delivers",
    );
    assert_eq!(rejected, []);
    assert_eq!(target.stored().await, once(&batch));
}

/// Records that failed with a retryable per-record error are sent again, alone and under
/// their original indexes; the others are not sent twice.
pub async fn retryable_records_are_resent_alone_with_their_original_indexes<T: Target>(target: &T) {
    if !target.fail_records_once(&[1, 3]) {
        eprintln!("skipping: this target cannot fail single records on demand");
        return;
    }
    let batch = records(5);
    let destination = faulty(target);
    let rejected = delivered(
        deliver_with_retry(&destination, target.request(&batch), |_, _, _| {}).await,
        "delivered once the records go through",
    );
    assert_eq!(rejected, []);
    assert_eq!(destination.attempts(), vec![vec![0, 1, 2, 3, 4], vec![1, 3]]);
    assert_eq!(target.stored().await, once(&batch));
}

/// A record the service refuses for good comes back with its original index, an error code
/// and message, and the attempt it failed on; the other records are stored.
pub async fn records_refused_for_good_come_back_with_code_and_index<T: Target>(target: &T) {
    let Some(bad) = target.refused_record() else {
        eprintln!("skipping: this destination refuses no single record");
        return;
    };
    let good = records(3);
    let batch = [good[0].clone(), bad, good[1].clone(), good[2].clone()];
    let refused = delivered(
        deliver_with_retry(&faulty(target), target.request(&batch), |e, _, _| {
            panic!("a refused record was retried: {e}")
        })
        .await,
        "the request is delivered, with one record refused",
    );
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].record.index, 1);
    assert_eq!(refused[0].attempts, 1);
    assert!(refused[0].record.code.contains('.'), "a Firehose-style code: {refused:?}");
    assert!(!refused[0].record.message.is_empty());
    assert_eq!(target.stored().await, once(&good));
}

/// A failure that never clears ends when the retry duration is used up, with the whole
/// request left over and nothing stored.
pub async fn the_retry_duration_bounds_the_attempts<T: Target>(target: &T) {
    let batch = records(2);
    let destination = faulty(target).always_failing().retrying_for(Duration::from_millis(100));
    let started = Instant::now();
    let gave_up = deliver_with_retry(&destination, target.request(&batch), |_, _, _| {})
        .await
        .expect_err("the deadline passes");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(100), "gave up early, after {took:?}");
    assert!(took < Duration::from_secs(5), "gave up late, after {took:?}");
    assert!(gave_up.attempts >= 3, "{} attempts", gave_up.attempts);
    assert_eq!(gave_up.attempts, destination.failed());
    assert_eq!(gave_up.error.code, "Faulty.Transient");
    assert_eq!(T::indexes(&gave_up.remaining), vec![0, 1]);
    assert_eq!(target.stored().await, BTreeMap::new());
}

/// One `#[tokio::test]` per case of the suite, each on a fresh target from `$setup`, an async
/// fn returning `Option<impl Target>` (`None`: the service is not configured, so skip).
#[macro_export]
macro_rules! conformance_tests {
    ($setup:path) => {
        $crate::conformance_tests!(@cases $setup;
            delivering_the_same_request_twice_stores_each_record_once,
            a_transient_failure_is_retried_until_it_clears,
            a_permanent_failure_ends_at_once_with_what_remains,
            retryable_records_are_resent_alone_with_their_original_indexes,
            records_refused_for_good_come_back_with_code_and_index,
            the_retry_duration_bounds_the_attempts,
        );
    };
    (@cases $setup:path; $($case:ident,)*) => {
        $(
            #[tokio::test]
            async fn $case() {
                if let Some(target) = $setup().await {
                    $crate::conformance::$case(&target).await;
                }
            }
        )*
    };
}
