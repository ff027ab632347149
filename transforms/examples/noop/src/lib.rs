//! Identity: every record is delivered unchanged. Used to measure the host's own overhead.

use hydrant_transform_sdk::{Outcome, Record};

hydrant_transform_sdk::transform!(
    fn identity(record: Record) -> Outcome {
        Outcome::unchanged(&record)
    }
);
