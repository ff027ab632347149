//! The warehouse: stage the object in S3, then COPY it (PostgreSQL or Redshift).

mod sink;

pub use sink::{Loader, WarehouseSink};

use super::{Descriptor, Kept, Secret};
use crate::config::DestinationKind;

/// `!{firehose:error-output-type}` of rows the warehouse refused.
pub const REDSHIFT_FAILED: &str = "redshift-failed";

pub const DESCRIPTOR: Descriptor = Descriptor {
    kind: DestinationKind::Redshift,
    update_members: &["RedshiftDestinationUpdate"],
    description_member: "RedshiftDestinationDescription",
    metric: "redshift",
    log_name: "warehouse",
    error_output_type: Some(REDSHIFT_FAILED),
    secret: Some(Secret { endpoint: &["/ClusterJDBCURL"], kept: Kept::InBlock("/Password") }),
    switchable: true,
};
