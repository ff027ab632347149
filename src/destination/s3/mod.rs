//! S3: the object itself, and the S3 side every destination writes through ([`S3Output`]).

mod sink;

pub use sink::{Put, S3Output, S3Sink};

use std::sync::Arc;

use hydrant_destinations::s3::KeyRules;

use super::{Descriptor, DestinationPlan, PlanError};
use crate::config::DestinationKind;
use crate::delivery::assembler::StoreKeys;
use crate::delivery::sink::Sink;

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

/// S3 needs nothing beyond the stream's S3 side.
#[derive(Debug)]
pub(super) struct S3Plan;

impl DestinationPlan for S3Plan {
    fn descriptor(&self) -> &'static Descriptor {
        &DESCRIPTOR
    }

    fn build(&self, output: S3Output) -> Result<Arc<dyn Sink>, PlanError> {
        Ok(Arc::new(S3Sink { output, backup: false }))
    }
}

/// An S3 store's key rules, as the assembler applies them to partitioned records.
impl StoreKeys for KeyRules {
    fn check(&self, key: &str) -> Result<(), String> {
        KeyRules::check(self, key)
    }
}

#[cfg(test)]
mod tests;
