//! The Hydrant side of each destination: one
//! [`Sink`](crate::delivery::sink::Sink) per destination kind, in a folder of its own.
//!
//! A sink takes one sealed buffer and delivers it, retrying as its destination's policy says,
//! and writes whatever could not be delivered to the error output in S3, so the uploader can
//! move the checkpoint past it. Every sink writes its error documents and staged or backup
//! objects through an [`S3Output`].
//!
//! - [`S3Sink`]: the object itself (retried until it lands: Firehose retries S3 for 24 h,
//!   Hydrant keeps the records in its log until the store takes them);
//! - [`WarehouseSink`]: stage the object in S3, then COPY it (PostgreSQL or Redshift);
//! - [`SearchSink`]: one `_bulk` request of the buffer's records;
//! - [`HttpSink`]: one Firehose HTTP endpoint request of the buffer's records.

mod http;
mod s3;
mod search;
mod warehouse;

pub use self::http::HttpSink;
pub use self::s3::{Put, S3Output, S3Sink};
pub use self::search::SearchSink;
pub use self::warehouse::{Loader, WarehouseSink};
