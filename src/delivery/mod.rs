//! Delivery: per-shard workers that turn the log into objects at the destination.

pub mod assembler;
pub mod batch;
pub mod buffers;
pub mod error_output;
pub mod health;
pub mod sink;
pub mod stream_workers;
pub mod worker;

pub use batch::BatchPolicy;
pub use health::DeliveryHealth;
pub use stream_workers::Workers;
pub use worker::{ShardWorker, StagesFactory, StopMode, StopReceiver, WorkerSignals, WorkerStatus};
