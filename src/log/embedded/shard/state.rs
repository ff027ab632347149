//! What a shard's handles, its writer thread and its readers share.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::log::embedded::budget::DiskBudget;
use crate::log::embedded::segment::SegmentInfo;

/// Locks a mutex, ignoring poisoning (every critical section leaves the data consistent).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Wall clock in Unix epoch milliseconds.
pub(crate) fn now_unix_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

pub(crate) struct LogState {
    /// Oldest first; the last one is active. `len` of the active one is its committed length.
    pub(crate) segments: Vec<SegmentInfo>,
    /// One past the last committed record.
    pub(crate) committed: u64,
    /// Whether this shard's bytes are counted in the budget (until the writer stops).
    pub(crate) accounted: bool,
}

pub(crate) struct Clock {
    pub(crate) last_ts: i64,
    pub(crate) in_flight: Option<i64>,
}

/// State shared by the handles, the writer thread and the readers.
pub(crate) struct Shared {
    pub(crate) dir: PathBuf,
    pub(crate) budget: Arc<DiskBudget>,
    pub(crate) state: Mutex<LogState>,
    pub(crate) committed: AtomicU64,
    pub(crate) clock: Mutex<Clock>,
    pub(crate) notify: watch::Sender<u64>,
    /// Registered consumers and their checkpoints. Held while a checkpoint is written and
    /// retention runs, which serialises both.
    pub(crate) consumers: Mutex<BTreeMap<String, u64>>,
    pub(crate) disk_bytes: AtomicU64,
    pub(crate) poisoned: Mutex<Option<String>>,
}

impl Shared {
    pub(super) fn first_retained(&self) -> u64 {
        lock(&self.state).segments[0].base
    }
}
