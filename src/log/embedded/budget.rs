//! Process-wide disk budget for segment files, shared by every shard of every stream.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Counts the bytes of all segment files of all open shards and enforces an optional limit.
///
/// Appends reserve their frame bytes before writing ([`DiskBudget::try_reserve`]); retention
/// and failed writes give bytes back. Segment headers and the files found at open are always
/// counted, even past the limit. A shard's bytes are released when its writer stops.
#[derive(Debug)]
pub struct DiskBudget {
    max: Option<u64>,
    used: AtomicU64,
}

/// A reservation that did not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget {
    pub used: u64,
    pub max: u64,
}

impl DiskBudget {
    /// A budget of at most `max_bytes` (unlimited with `None`).
    pub fn new(max_bytes: Option<u64>) -> Arc<Self> {
        Arc::new(DiskBudget { max: max_bytes, used: AtomicU64::new(0) })
    }

    /// Bytes currently counted.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// The limit, if any.
    pub fn max(&self) -> Option<u64> {
        self.max
    }

    /// Counts `bytes` if they fit under the limit; otherwise counts nothing.
    pub fn try_reserve(&self, bytes: u64) -> Result<(), OverBudget> {
        let Some(max) = self.max else {
            self.used.fetch_add(bytes, Ordering::AcqRel);
            return Ok(());
        };
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= max)
            })
            .map(|_| ())
            .map_err(|used| OverBudget { used, max })
    }

    /// Counts `bytes` regardless of the limit.
    pub fn add(&self, bytes: u64) {
        self.used.fetch_add(bytes, Ordering::AcqRel);
    }

    /// Stops counting `bytes`.
    pub fn release(&self, bytes: u64) {
        let _ = self.used.fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
            Some(used.saturating_sub(bytes))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reservation_over_the_limit_counts_nothing() {
        let b = DiskBudget::new(Some(100));
        b.try_reserve(60).unwrap();
        assert_eq!(b.try_reserve(41), Err(OverBudget { used: 60, max: 100 }));
        assert_eq!(b.used(), 60);
        b.try_reserve(40).unwrap();
        b.release(100);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn an_unlimited_budget_accepts_everything() {
        let b = DiskBudget::new(None);
        b.try_reserve(u64::MAX / 2).unwrap();
        assert_eq!(b.used(), u64::MAX / 2);
    }
}
