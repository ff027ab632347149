//! OpenSearch and Elasticsearch: one `_bulk` request of the buffer's records.

mod sink;

pub use sink::SearchSink;
