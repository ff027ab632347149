//! Turning a batch of records into object bytes: framing, compression (and later Parquet and
//! encryption). Each step is a small trait so the delivery worker never matches on formats.

pub mod compression;

pub use compression::{compression_for, CompressWriter, Compression};
