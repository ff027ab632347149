//! Delivery: per-shard workers that turn the log into objects at the destination.

pub mod assembler;
pub mod batch;
pub mod buffers;
pub mod error_output;
mod failure;
mod fault;
pub mod health;
pub mod markers;
pub mod signals;
pub mod sink;
pub mod status;
pub mod stream_workers;
#[cfg(test)]
mod tests;
pub mod worker;

pub use batch::BatchPolicy;
pub use health::DeliveryHealth;
pub use signals::{StopMode, StopReceiver, WorkerSignals};
pub use status::WorkerStatus;
pub use stream_workers::Workers;
pub use worker::{ShardWorker, StagesFactory};
