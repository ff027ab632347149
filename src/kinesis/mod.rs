//! Kinesis Data Streams on the core: streams that producers write with `PutRecord(s)` and any
//! number of consumers read with shard iterators, each stream a log of the same core that
//! Firehose delivery streams use. This module is the streams and their encodings; the API
//! layer (`api::kinesis`) speaks the wire protocol. The list of streams is a [`catalog`]: a
//! file of one server, or a bucket the nodes of a cluster share. docs/kinesis.md says what exists.

pub mod catalog;
mod expiry;
mod iterator;
pub mod on_demand;
pub mod record;
mod sequence;
pub mod source;
mod streams;
pub mod throughput;

pub use iterator::{IteratorError, ShardIterator, ITERATOR_LIFETIME_MS, MAX_TOKEN_CHARS};
pub use sequence::SequenceNumber;
pub use streams::{
    shard_of, KinesisError, KinesisLimits, KinesisStream, KinesisStreams, StreamMode,
    StreamSettings, MAX_RETENTION_HOURS,
};
