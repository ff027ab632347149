//! S3-compatible object storage through `object_store`: AWS S3, MinIO, Garage, s3s-fs, or a
//! local directory (one folder per bucket).

mod config;
mod key;
mod local_dirs;
mod service;

pub use config::{ServerSideEncryption, StoreSpec};
pub use key::{KeyRules, MAX_KEY_BYTES, MAX_LOCAL_SEGMENT_BYTES};
pub use service::{Object, S3Destination};
