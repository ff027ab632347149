//! Kinesis' per-shard write limits, enforced in provisioned streams: 1,000 records and 1 MiB
//! (data and partition keys) per second per shard, with up to [`BURST_SECONDS`] of unused
//! allowance saved for bursts. A record over the limit is not stored and is answered
//! `ProvisionedThroughputExceededException`, which the SDKs back off and retry; the
//! producer's other records of the call still go in.
//!
//! One bucket holds both allowances under one lock, so a record takes its record and its bytes
//! together or neither (two independent rate limiters could spend one and refuse the other).

use std::sync::Mutex;
use std::time::Instant;

/// Records one shard takes per second.
pub const RECORDS_PER_SECOND: f64 = 1000.0;
/// Bytes (data and partition key) one shard takes per second.
pub const BYTES_PER_SECOND: f64 = 1024.0 * 1024.0;
/// How many seconds of unused allowance a shard saves for a burst.
pub const BURST_SECONDS: f64 = 2.0;

/// One shard's write allowance.
#[derive(Debug)]
pub struct WriteBudget {
    state: Mutex<Allowance>,
}

#[derive(Debug)]
struct Allowance {
    records: f64,
    bytes: f64,
    at: Instant,
}

impl WriteBudget {
    /// A full budget (a new stream may burst at once).
    pub fn new(now: Instant) -> Self {
        let full = Allowance {
            records: RECORDS_PER_SECOND * BURST_SECONDS,
            bytes: BYTES_PER_SECOND * BURST_SECONDS,
            at: now,
        };
        Self { state: Mutex::new(full) }
    }

    /// Takes one record of `bytes` from the allowance at `now`; `false` (and nothing taken)
    /// when the shard is over its limit.
    pub fn admit(&self, bytes: usize, now: Instant) -> bool {
        let mut a = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(a.at).as_secs_f64();
        a.records =
            (a.records + elapsed * RECORDS_PER_SECOND).min(RECORDS_PER_SECOND * BURST_SECONDS);
        a.bytes = (a.bytes + elapsed * BYTES_PER_SECOND).min(BYTES_PER_SECOND * BURST_SECONDS);
        a.at = a.at.max(now);
        let bytes = bytes as f64;
        if a.records < 1.0 || a.bytes < bytes {
            return false;
        }
        a.records -= 1.0;
        a.bytes -= bytes;
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_shard_takes_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let budget = WriteBudget::new(t0);
        let burst = (RECORDS_PER_SECOND * BURST_SECONDS) as usize;
        assert!((0..burst).all(|_| budget.admit(1, t0)));
        assert!(!budget.admit(1, t0), "the burst is spent");
        // Half a second later: half a second's records.
        let later = t0 + Duration::from_millis(500);
        let taken = (0..2 * burst).filter(|_| budget.admit(1, later)).count();
        assert_eq!(taken, (RECORDS_PER_SECOND / 2.0) as usize);
    }

    #[test]
    fn bytes_are_limited_too_and_a_refused_record_takes_nothing() {
        let t0 = Instant::now();
        let budget = WriteBudget::new(t0);
        let mib = 1 << 20;
        assert!(budget.admit(mib, t0) && budget.admit(mib, t0));
        assert!(!budget.admit(1, t0), "2 MiB is the burst");
        // The refused records took no record allowance: a second later, 1 MiB fits again.
        assert!(budget.admit(mib, t0 + Duration::from_secs(1)));
    }

    #[test]
    fn an_idle_shard_saves_no_more_than_the_burst() {
        let t0 = Instant::now();
        let budget = WriteBudget::new(t0);
        let much_later = t0 + Duration::from_secs(3600);
        let taken = (0..10_000).filter(|_| budget.admit(1, much_later)).count();
        assert_eq!(taken, (RECORDS_PER_SECOND * BURST_SECONDS) as usize);
    }
}
