//! `BufferingHints` as buffer-cutting rules: how large one object may grow and how long (by
//! the records' arrival times, stored in the log) it may span. [`super::buffers`] applies them.

/// `BufferingHints` as batch-cutting rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPolicy {
    /// Largest batch, in bytes before compression.
    pub max_bytes: u64,
    /// Arrival-time window of one batch, in milliseconds. 0 is Firehose's "zero buffering":
    /// only records that arrived in the same millisecond (in practice, the same group commit)
    /// share an object.
    pub interval_ms: i64,
}

impl BatchPolicy {
    /// First arrival time (exclusive) that no longer belongs to a batch starting at `first`.
    pub fn window_end(&self, first_arrival_ms: i64) -> i64 {
        first_arrival_ms.saturating_add(self.interval_ms.max(1))
    }
}
