//! The durable log that stores a delivery stream's records until they are delivered: records
//! are appended to shards and acknowledged once durable, and delivery reads each shard in
//! order from its consumer's checkpoint.
//!
//! [`embedded`] is its implementation on the local disk (segments, group commit, recovery).

pub mod embedded;

pub use embedded::{
    AppendError, AppendOutcome, DiskBudget, EmbeddedLog, FaultInjector, FsyncPolicy, LogOptions,
    OpenError, ReadError, Record, RecordLocation, Shard, ShardReader,
};
