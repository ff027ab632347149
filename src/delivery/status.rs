//! What a delivery worker shares with the metrics endpoint and `/readyz`: how far it got, what
//! it holds, and whether it moves.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::health::DeliveryHealth;

/// What a worker shares with the metrics endpoint.
#[derive(Debug)]
pub struct WorkerStatus {
    next_seq: AtomicU64,
    /// Oldest arrival time in the cutter's open buffers (`i64::MAX`: none).
    open_oldest: AtomicI64,
    /// Oldest arrival time of each sealed object not yet delivered, in delivery order.
    in_flight: Mutex<VecDeque<i64>>,
    /// Whether delivery moves.
    health: Arc<DeliveryHealth>,
}

impl Default for WorkerStatus {
    fn default() -> Self {
        Self {
            next_seq: AtomicU64::new(0),
            open_oldest: AtomicI64::new(i64::MAX),
            in_flight: Mutex::new(VecDeque::new()),
            health: Arc::new(DeliveryHealth::new()),
        }
    }
}

impl WorkerStatus {
    pub fn new() -> Self {
        Self::default()
    }
    /// The checkpoint: the first sequence number a restart would read again.
    pub fn next_seq(&self) -> u64 {
        self.next_seq.load(Ordering::Relaxed)
    }
    /// Arrival time of the oldest record not yet delivered (for DataFreshness).
    pub fn oldest_undelivered_ms(&self) -> Option<i64> {
        let in_flight = self.in_flight.lock().expect("not poisoned").iter().copied().min();
        let open = Some(self.open_oldest.load(Ordering::Relaxed)).filter(|&t| t != i64::MAX);
        match (in_flight, open) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
    /// Whether the shard's delivery moves (and if not, why).
    pub fn health(&self) -> &DeliveryHealth {
        &self.health
    }
    /// The same, for a sink to record its attempts in.
    pub(super) fn health_handle(&self) -> Arc<DeliveryHealth> {
        self.health.clone()
    }
    /// A new run of the worker starts from the checkpoint: nothing is open or in flight.
    pub(super) fn restart(&self) {
        self.open_oldest.store(i64::MAX, Ordering::Relaxed);
        self.in_flight.lock().expect("not poisoned").clear();
    }
    pub(super) fn buffers_hold(&self, oldest_arrival_ms: Option<i64>) {
        self.open_oldest.store(oldest_arrival_ms.unwrap_or(i64::MAX), Ordering::Relaxed);
    }
    pub(super) fn object_sealed(&self, oldest_arrival_ms: i64) {
        self.in_flight.lock().expect("not poisoned").push_back(oldest_arrival_ms);
    }
    pub(super) fn object_delivered(&self, checkpoint: u64) {
        self.in_flight.lock().expect("not poisoned").pop_front();
        self.checkpointed(checkpoint);
    }
    /// The checkpoint is `next_seq` now.
    pub(super) fn checkpointed(&self, next_seq: u64) {
        self.next_seq.store(next_seq, Ordering::Relaxed);
    }
}
