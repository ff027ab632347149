//! S3: the object itself, and the S3 side every destination writes through ([`S3Output`]).

mod sink;

pub use sink::{Put, S3Output, S3Sink};

use super::Descriptor;
use crate::config::DestinationKind;

pub const DESCRIPTOR: Descriptor = Descriptor {
    kind: DestinationKind::S3,
    // The deprecated form first, as Firehose lists them.
    update_members: &["S3DestinationUpdate", "ExtendedS3DestinationUpdate"],
    description_member: "ExtendedS3DestinationDescription",
    metric: "s3",
    log_name: "s3",
    // A refused object goes whole to `processing-failed` / `partitioning-failed`.
    error_output_type: None,
    secret: None,
    switchable: true,
};
