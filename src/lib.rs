//! Hydrant: a self-hosted delivery pipeline that speaks the Amazon Data Firehose API.
//!
//! Producers `PutRecord(Batch)` into [`api`]; records are appended to the durable sharded log
//! in [`core`] and acknowledged once fsync'd; [`delivery`] workers cut deterministic batches
//! from each shard, [`codec`] compresses them and `hydrant-destinations` writes them out.
//! [`streams`] ties one configured delivery stream's pieces together, [`control`] creates,
//! changes and removes streams while serving, and [`server`] runs them.

pub mod api;
pub mod bench;
pub mod clock;
pub mod codec;
pub mod config;
pub mod control;
pub mod core;
pub mod delivery;
#[doc(hidden)]
pub mod fuzzing;
pub mod processors;
pub mod server;
pub mod streams;
pub mod telemetry;
pub mod tls;
pub mod transform;
