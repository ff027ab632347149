//! The embedded log: checksummed frames in numbered segment files, one directory per shard,
//! group commit, checkpoints and retention, all on the local disk; [`EmbeddedStore`] and
//! [`EmbeddedLog`] implement the log's traits on it. The on-disk format and the recovery rules
//! are in docs/log-format.md.

pub mod at_rest;
pub mod budget;
pub mod checkpoint;
pub mod consumer;
pub mod dirs;
pub mod error;
pub mod layout;
mod lease;
pub mod options;
mod reader;
pub mod record;
pub mod segment;
pub mod shard;
mod store;
pub mod stream_log;
mod topology;
mod writer;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use budget::DiskBudget;
pub use error::{AppendError, OpenError, ReadError};
pub use options::{FaultInjector, FsyncPolicy, LogOptions};
pub use record::Record;
pub use shard::{AppendOutcome, Shard, ShardReader};
pub use store::EmbeddedStore;
pub use stream_log::EmbeddedLog;
