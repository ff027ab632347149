//! S3-compatible object storage through `object_store`: AWS S3, MinIO, Garage, s3s-fs, or a
//! local directory (one folder per bucket).

mod config;
mod local_dirs;
mod service;

pub use config::{ServerSideEncryption, StoreSpec};
pub use service::{Object, S3Destination};
