//! The log's errors, by what the caller can do about them. Each implementation keeps its own
//! precise error (a file and an offset, a NATS status) as the [`Cause`]: its text is for the
//! server's log, and callers decide by the variant.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use super::types::{HashRange, ShardId};

/// An implementation's own error behind one of the variants below. Its text is the
/// implementation's; it may name server paths, so it goes to logs, never to API callers.
#[derive(Clone)]
pub struct Cause(Arc<dyn Error + Send + Sync>);

impl Cause {
    pub fn new(error: impl Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(error))
    }

    /// The implementation's error, if it is an `E`.
    pub fn downcast_ref<E: Error + 'static>(&self) -> Option<&E> {
        self.0.downcast_ref()
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Error for Cause {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

/// Why [`LogStore::open`](super::LogStore::open) did not open a log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The log exists with another number of shards.
    #[error("the log has {existing} shards, not {configured}")]
    ShardCount { existing: u32, configured: u32 },
    /// Someone else has the log open (another process on the same data directory).
    #[error(transparent)]
    Locked(Cause),
    /// Stored data is damaged where acknowledged records must be; nothing was skipped. The
    /// operator decides (docs/log-format.md).
    #[error(transparent)]
    Damaged(Cause),
    /// The keys cannot open what is encrypted at rest, or cannot encrypt.
    #[error(transparent)]
    Keys(Cause),
    /// Storage cannot be reached or used now.
    #[error(transparent)]
    Unavailable(Cause),
}

/// Why [`LogStore::delete`](super::LogStore::delete) did not delete a log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error(transparent)]
    Unavailable(Cause),
}

/// Why a record was not stored. Nothing of it is acknowledged.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// The log is full (disk, disk budget, storage limits): retry with backoff once consumers
    /// free space.
    #[error(transparent)]
    Full(Cause),
    /// The log cannot store records now (a failed write or sync, a closed log, storage that
    /// cannot be reached): retry later.
    #[error(transparent)]
    Unavailable(Cause),
    /// The record is larger than the log takes.
    #[error("record {index} is {len} bytes, more than the maximum of {max}")]
    TooLarge { index: usize, len: usize, max: usize },
}

/// Why a reader could not be made or could not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// Retention deleted the requested entries.
    #[error(
        "position {requested} was deleted by retention; the oldest retained is {first_retained}"
    )]
    Trimmed { requested: u64, first_retained: u64 },
    /// The requested position lies beyond the last committed entry.
    #[error("position {requested} is beyond the end of the shard (next_seq {next_seq})")]
    BeyondEnd { requested: u64, next_seq: u64 },
    #[error("the log has no shard {0}")]
    UnknownShard(ShardId),
    /// A committed entry is damaged.
    #[error(transparent)]
    Damaged(Cause),
    /// A record encrypted at rest cannot be opened with the log's keys.
    #[error(transparent)]
    Decrypt(Cause),
    /// Storage cannot be reached or read now.
    #[error(transparent)]
    Unavailable(Cause),
}

/// Why a lease's state could not be loaded or stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError {
    /// Another owner holds the shard now; nothing was stored. Stop consuming it.
    #[error("the lease on shard {shard} for consumer {consumer} was lost to another owner")]
    Lost { shard: ShardId, consumer: String },
    /// Consumer names are 1 to 200 characters of `[A-Za-z0-9._-]`.
    #[error("invalid consumer name {0:?}: use 1 to 200 characters of A-Z a-z 0-9 . _ -")]
    InvalidConsumer(String),
    /// `next_seq` lies outside the shard's retained entries.
    #[error("next_seq {next_seq} is outside the shard's retained entries {first} ..= {end}")]
    OutOfRange { next_seq: u64, first: u64, end: u64 },
    /// Storage cannot be reached or written now.
    #[error(transparent)]
    Unavailable(Cause),
}

/// Why encryption at rest could not be switched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptionError {
    /// The keys cannot encrypt (no key ring, a key file that does not open).
    #[error(transparent)]
    Keys(Cause),
    #[error(transparent)]
    Unavailable(Cause),
}

/// Why a [`Reshard`](super::Reshard) was not done. Nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReshardError {
    #[error("shard {0} does not exist")]
    UnknownShard(ShardId),
    /// Only open shards split and merge.
    #[error("shard {0} is closed (split or merged already)")]
    Closed(ShardId),
    /// A split's new starting hash key must lie inside the shard, above its first key.
    #[error(
        "the new starting hash key {at} is not inside shard {shard} ({}..={}) above its first key",
        range.start, range.end
    )]
    SplitOutside { shard: ShardId, at: u128, range: HashRange },
    /// Only shards whose hash-key ranges touch merge.
    #[error("shards {shard} and {adjacent} are not adjacent")]
    NotAdjacent { shard: ShardId, adjacent: ShardId },
    /// This log's shards never split or merge ([`Capabilities::shards_can_end`](super::Capabilities::shards_can_end)).
    #[error("this log cannot split or merge shards")]
    Unsupported,
    #[error(transparent)]
    Unavailable(Cause),
}
