//! Where a worker's sealed buffers go: a [`Sink`], one per destination kind (they live in
//! `crate::destination`).
//!
//! A sink takes one sealed buffer of data ([`Unit`]) and delivers it, retrying as its
//! destination's policy says, and writes whatever could not be delivered to the error output
//! in S3, so the uploader can move the checkpoint past it. Error units (documents the
//! pipeline already wrote) go straight to the sink's [`ErrorOutput`].

use std::future::Future;

use tokio::runtime::Handle;
use tokio::sync::watch;

use super::buffers::{Layout, Unit};
use super::health::DeliveryHealth;
use crate::telemetry::Metrics;

pub type SinkResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A destination as the delivery worker sees it.
pub trait Sink: Send + Sync {
    /// How this destination wants its buffers: one encoded object, or the records one by one.
    fn layout(&self) -> Layout {
        Layout::Object
    }

    /// Delivers one sealed buffer of data (error units go to [`Sink::error_output`]).
    /// `Ok(false)` when shutdown interrupted it: nothing was checkpointed, so it is delivered
    /// again after a restart.
    fn deliver(&self, unit: &Unit, ctx: &SinkContext) -> SinkResult<bool>;

    /// Where the stream's error documents go (in S3, whatever the destination).
    fn error_output(&self) -> &dyn ErrorOutput;
}

/// The stream's error output: where the uploader delivers error units, the documents the
/// pipeline wrote for records it could not process, partition or convert.
pub trait ErrorOutput: Send + Sync {
    /// Writes one error unit. `Ok(false)` when shutdown interrupted it.
    fn deliver_errors(&self, unit: &Unit, ctx: &SinkContext) -> SinkResult<bool>;
}

/// What a sink needs from the worker that runs it.
pub struct SinkContext {
    pub stream: String,
    pub shard: u32,
    /// The stream's version, part of object names.
    pub version: u64,
    pub metrics: Metrics,
    pub runtime: Handle,
    pub shutdown: watch::Receiver<bool>,
    /// Where failed attempts are recorded (metrics, logs and `/readyz` read it).
    pub health: std::sync::Arc<DeliveryHealth>,
}

impl SinkContext {
    /// Runs `future` to completion on the runtime, or returns `None` once shutdown begins.
    pub fn run<F: Future>(&self, future: F) -> Option<F::Output> {
        let mut shutdown = self.shutdown.clone();
        if *shutdown.borrow() {
            return None;
        }
        self.runtime.block_on(async {
            tokio::select! {
                out = future => Some(out),
                _ = shutdown.wait_for(|s| *s) => None,
            }
        })
    }
}
