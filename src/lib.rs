//! Hydrant: a self-hosted delivery pipeline that speaks the Amazon Data Firehose API.
//!
//! Producers `PutRecord(Batch)` into [`api`]; records are appended to the durable sharded
//! [`log`] and acknowledged once fsync'd; [`delivery`] workers cut deterministic batches
//! from each shard, [`codec`] compresses them and `hydrant-destinations` writes them out.
//! [`pipeline`] builds one configured delivery stream's pieces, [`registry`] holds the running
//! streams, [`control`] creates, changes and removes them while serving, and [`server`] runs
//! them; [`listener`] serves HTTP within per-client bounds.

pub mod api;
pub mod bench;
pub mod clock;
pub mod codec;
pub mod config;
pub mod console;
pub mod control;
pub mod delivery;
pub mod destination;
#[doc(hidden)]
pub mod fuzzing;
pub mod health;
pub mod kinesis;
pub mod listener;
pub mod log;
pub mod names;
pub mod naming;
pub mod operations;
pub mod pipeline;
pub mod plan;
pub mod processors;
pub mod registry;
pub mod replay;
pub mod server;
pub mod telemetry;
pub mod tls;
pub mod wasm_host;

/// The binary's allocator in the unit tests too, so the jq memory bound is tested as it runs.
#[cfg(test)]
#[global_allocator]
static ALLOCATOR: hydrant_alloc_meter::Metered = hydrant_alloc_meter::Metered::SYSTEM;
