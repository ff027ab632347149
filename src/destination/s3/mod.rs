//! S3: the object itself, and the S3 side every destination writes through ([`S3Output`]).

mod sink;

pub use sink::{Put, S3Output, S3Sink};
