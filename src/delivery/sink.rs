//! Where a worker's sealed buffers go: a [`Sink`], one per destination kind (they live in
//! `crate::destination`).
//!
//! A sink takes one sealed buffer of data ([`Unit`]) and delivers it, retrying as its
//! destination's policy says, and writes whatever could not be delivered to the error output
//! in S3, so the uploader can move the checkpoint past it. Error units (documents the
//! pipeline already wrote) go straight to the sink's [`ErrorOutput`].
//!
//! What a sink cannot deliver is not an error: it goes to the error output, and `deliver`
//! returns `Ok`. A [`SinkError`] says that nothing could take the unit (not even the error
//! output), so the worker ends its run and delivers the unit again after a restart.

use std::future::Future;

use tokio::runtime::Handle;
use tokio::sync::watch;

use super::buffers::{Layout, Unit};
use super::health::DeliveryHealth;
use crate::naming::RenderError;
use crate::telemetry::Metrics;

pub type SinkResult<T> = Result<T, SinkError>;

/// Why a sink could neither deliver a unit nor write it to the error output. The worker ends
/// its run on any of them and starts again from the checkpoint, so the unit is delivered
/// again once the cause is gone.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A data object's key cannot be made from the stream's `Prefix` (a partition key is
    /// missing, the arrival time is out of range, ...). Sinks that can write the object to
    /// the error output instead do so (S3: `S3.InvalidKey`).
    #[error("the object's key cannot be made from Prefix: {0}")]
    DataKey(#[source] RenderError),
    /// An error object's key cannot be made from the stream's `ErrorOutputPrefix`: the
    /// records have nowhere to go.
    #[error("the error object's key cannot be made from ErrorOutputPrefix: {0}")]
    ErrorKey(#[source] RenderError),
    /// Error documents cannot be encrypted with the stream's keys.
    #[error("the error documents cannot be encrypted: {0}")]
    Encrypt(#[source] std::io::Error),
    /// The destination failed in a way its sink can neither retry nor route to the error
    /// output (a staged object that cannot be read back, say). The source is the
    /// destination's error (`crate::destination` converts it).
    #[error("{0}")]
    Destination(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// An error unit was handed over as data (the worker routes units by their key, so this
    /// is a bug).
    #[error("a data key was asked for an error unit")]
    ErrorUnitAsData,
    /// A data unit was handed to the error output (a bug, as above).
    #[error("not an error unit")]
    DataUnitAsErrors,
}

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
