//! Hydrant's delivery destinations.
//!
//! Every destination implements the one small [`Destination`] trait: it receives a request that
//! the delivery layer has already built (formatted, compressed, named) and either delivers it or
//! says why not, classifying the failure so that the shared [`retry`] mechanism knows whether
//! trying again can help. Destinations know nothing about Hydrant's log, checkpoints or
//! buffering: that separation keeps each one small and testable on its own.

#[cfg(feature = "conformance")]
pub mod conformance;
pub mod error;
pub mod error_output;
pub mod http;
pub mod redact;
pub mod retry;
pub mod s3;
pub mod search;
pub mod warehouse;

pub use error::{DestinationError, ErrorClass};
pub use retry::{deliver_with_retry, Backoff, GaveUp, Refused, RetryClock, RetryPolicy};

use async_trait::async_trait;

/// A place records are delivered to.
///
/// Contract: `deliver` makes **one attempt**. It either delivers the request (possibly with some
/// records rejected for good, which the caller sends to the error output), asks for a smaller
/// request to be sent again (the records that failed with a retryable per-item error), or
/// returns an error whose [`ErrorClass`] says whether another attempt can help. How often and
/// how long to try again is [`deliver_with_retry`]'s business, driven by [`Destination::retry_policy`].
///
/// Delivering the same request twice must leave the destination as if it were delivered once
/// (object keys, document ids and load checkpoints are derived from the batch, never from the
/// wall clock), which is what lets Hydrant promise exactly-once delivery across crashes.
#[async_trait]
pub trait Destination: Send + Sync + std::fmt::Debug + 'static {
    /// What one delivery carries (an object for S3, a `_bulk` body for search, ...).
    type Request: Send + Sync;

    /// Short name used in logs and metrics, e.g. `s3`.
    fn kind(&self) -> &'static str;

    /// How failed attempts are retried (Firehose: S3 for 24 h, others for
    /// `RetryOptions.DurationInSeconds`).
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::default()
    }

    /// Makes one delivery attempt.
    async fn deliver(
        &self,
        request: &Self::Request,
    ) -> Result<Outcome<Self::Request>, DestinationError>;
}

/// What one successful attempt achieved.
#[derive(Debug)]
pub enum Outcome<R> {
    /// Everything not listed in `rejected` is delivered.
    Delivered { rejected: Vec<Rejected> },
    /// Some records failed with a retryable per-item error (an HTTP 429 item in a `_bulk`
    /// response): `request` carries only those and must be sent again; `rejected` failed for
    /// good; everything else is delivered.
    RetryPartial { request: R, rejected: Vec<Rejected> },
}

impl<R> Outcome<R> {
    /// The whole request was delivered.
    pub fn delivered() -> Self {
        Outcome::Delivered { rejected: Vec::new() }
    }
}

/// One record the destination refused for good (a mapping error, a row the database rejects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Position of the record in the request the caller first built (partial requests keep the
    /// original positions).
    pub index: usize,
    /// Firehose-style error code, e.g. `OS.MapperParsingException`, `Redshift.DataLoadFailed`.
    pub code: String,
    /// What the destination said, for the error output.
    pub message: String,
}
