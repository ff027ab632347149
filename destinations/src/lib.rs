//! Hydrant's delivery destinations.
//!
//! Every destination implements the one small [`Destination`] trait: it receives a request that
//! the delivery layer has already built (formatted, compressed, named) and either delivers it or
//! says why not, classifying the failure so that the shared [`retry`] mechanism knows whether
//! trying again can help. Destinations know nothing about Hydrant's log, checkpoints or
//! buffering: that separation keeps each one small and testable on its own.

pub mod error;
pub mod retry;
pub mod s3;

pub use error::{DestinationError, ErrorClass};
pub use retry::{Backoff, RetryPolicy};

use async_trait::async_trait;

/// A place records are delivered to.
///
/// Contract: `deliver` either delivers the whole request or returns an error; delivering the
/// same request twice must leave the destination as if it were delivered once (object keys,
/// document ids and load checkpoints are derived from the batch, never from the wall clock),
/// which is what lets Hydrant promise exactly-once delivery across crashes.
#[async_trait]
pub trait Destination: Send + Sync + std::fmt::Debug + 'static {
    /// What one delivery carries (an object for S3, a `_bulk` body for search, ...).
    type Request: Send + Sync;

    /// Short name used in logs and metrics, e.g. `s3`.
    fn kind(&self) -> &'static str;

    /// Delivers one request.
    async fn deliver(&self, request: &Self::Request) -> Result<(), DestinationError>;
}
