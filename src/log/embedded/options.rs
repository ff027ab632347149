//! How a shard log writes: durability policy, segment size, test hooks.

use std::sync::Arc;
use std::time::Duration;

/// When an append is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// `fdatasync` before acknowledging (the default): an acknowledged record survives power
    /// loss.
    #[default]
    Always,
    /// Acknowledge after `write()`; the writer `fdatasync`s dirty data every interval (and
    /// before a segment roll and on close). Acknowledged records survive a crash of the
    /// process but the last interval can be lost on power loss or a kernel crash.
    Interval(Duration),
}

/// Test hooks. `before_sync` is called by the writer right before each `fdatasync` of a segment
/// file (group commits, interval flushes, segment rolls; not for recovery or checkpoint files).
/// Returning `Err` makes the writer behave exactly as if the `fdatasync` had failed (the real
/// one is then not called).
pub trait FaultInjector: Send + Sync + std::fmt::Debug {
    fn before_sync(&self) -> std::io::Result<()>;

    /// Called right before a group is written; `Err` is handled as if the write had failed
    /// with it (e.g. `ErrorKind::StorageFull` for a full disk).
    fn before_write(&self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Options of one shard log.
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub fsync: FsyncPolicy,
    /// The active segment is sealed and a new one started once it holds at least this many
    /// bytes (checked after each group commit, so segments can be larger by one group).
    pub segment_bytes: u64,
    /// Test hook; `None` in production.
    pub fault: Option<Arc<dyn FaultInjector>>,
}

/// Default segment size: 64 MiB.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions { fsync: FsyncPolicy::Always, segment_bytes: DEFAULT_SEGMENT_BYTES, fault: None }
    }
}
