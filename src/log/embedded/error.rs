//! One error enum per operation, so callers match on what can really happen.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Why [`Shard::open`](super::Shard::open) failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A file system operation failed.
    #[error("log i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A segment holds bytes that are not a valid record where acknowledged data must be.
    /// Nothing is skipped or truncated; the operator decides (see docs/log-format.md).
    #[error(
        "segment {path} is corrupt at byte offset {offset}: {reason}; refusing to open the shard \
         rather than skip acknowledged records. To recover: stop hydrant, back up the shard \
         directory, then move this segment and every later segment of the shard out of the \
         directory (or, for the newest segment, truncate it to {offset} bytes to keep the \
         records before the damage) and restart (see docs/log-format.md)"
    )]
    Corrupt { path: PathBuf, offset: u64, reason: String },
    /// A checkpoint file cannot be read or parsed.
    #[error("checkpoint file {path} is unreadable: {reason}; fix or remove it (the consumer then starts at the oldest retained record)")]
    Checkpoint { path: PathBuf, reason: String },
    /// Another open shard (in this or another process) holds the directory's lock.
    #[error("shard directory is in use: {path} is locked by another open shard (is another hydrant running on this data directory?)")]
    Locked { path: PathBuf },
    /// The writer thread could not be started.
    #[error("cannot start the log writer thread: {0}")]
    Spawn(#[source] io::Error),
}

/// Why [`Shard::append`](super::Shard::append) failed. No record of a failed call is
/// acknowledged; after `SyncFailed` some may still reach the disk (at-least-once).
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    /// The file system is full (ENOSPC); nothing was written (the file was truncated back).
    #[error("disk full: the records were not stored")]
    DiskFull,
    /// The process-wide disk budget would be exceeded; nothing was written. Retention (consumers
    /// storing checkpoints) frees space.
    #[error("disk budget exceeded: {used} of {max} bytes used")]
    BudgetExceeded { used: u64, max: u64 },
    /// A record is larger than [`MAX_PAYLOAD_LEN`](super::record::MAX_PAYLOAD_LEN).
    #[error("record {index} is {len} bytes, more than the maximum of {max}")]
    RecordTooLarge { index: usize, len: usize, max: usize },
    /// Writing failed for another reason than a full disk; nothing was written.
    #[error("log write failed: {0}")]
    Io(#[source] Arc<io::Error>),
    /// fdatasync failed: the records are not acknowledged and the shard is now poisoned.
    #[error("fsync of the log failed, the records are not stored and the shard is poisoned (restart to recover): {0}")]
    SyncFailed(#[source] Arc<io::Error>),
    /// An earlier failure left the on-disk state unknown; no more appends until restart.
    #[error("shard log is poisoned by an earlier failure ({reason}); restart hydrant to re-run recovery")]
    Poisoned { reason: String },
    /// The shard was closed (or its writer thread is gone).
    #[error("shard log is closed")]
    Closed,
}

/// Why creating a [`ShardReader`](super::ShardReader) or reading from it failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The requested records were deleted by retention.
    #[error("sequence number {requested} was deleted by retention; the oldest retained is {first_retained}")]
    Trimmed { requested: u64, first_retained: u64 },
    /// The requested start lies beyond the last committed record.
    #[error("sequence number {requested} is beyond the end of the log (next_seq {next_seq})")]
    BeyondEnd { requested: u64, next_seq: u64 },
    /// A committed record failed its checksum or framing checks.
    #[error("segment {path} is corrupt at byte offset {offset}: {reason}")]
    Corrupt { path: PathBuf, offset: u64, reason: String },
    /// A file system operation failed.
    #[error("log read error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}
