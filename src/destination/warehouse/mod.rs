//! The warehouse: stage the object in S3, then COPY it (PostgreSQL or Redshift).

mod sink;

pub use sink::{Loader, WarehouseSink};
