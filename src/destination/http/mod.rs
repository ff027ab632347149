//! A Firehose HTTP endpoint: one request of the buffer's records.

mod sink;

pub use sink::HttpSink;
