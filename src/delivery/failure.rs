//! [`WorkerError`]: why one run of a shard's delivery worker ended early. The supervisor logs
//! it, shows it on `/readyz` (`delivery::health`) and starts the worker again from its
//! checkpoint; nothing is matched on its text. [`Failure`] adds which part of the worker
//! (the stages, the cutter, the uploader) it came from.

use crate::log::{LeaseError, ReadError};

use super::sink::SinkError;

/// Why a run of a delivery worker failed, by the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The processing stages (transforms, partitioning) could not be built.
    #[error("{0}")]
    Stages(String),
    /// The consumer's checkpoint and markers could not be read.
    #[error("reading the delivery progress: {0}")]
    State(#[source] LeaseError),
    /// The shard's log could not be opened or read, or a cut not recorded in it.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Records could not be processed into objects (encoding, compression, encryption).
    #[error(transparent)]
    Assemble(#[from] std::io::Error),
    /// An object could not be handed to the destination or the error output.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// What was delivered could not be stored.
    #[error("storing the delivery progress: {0}")]
    Commit(#[source] LeaseError),
    /// The cutter's thread could not be started.
    #[error("starting the cutter thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The cutter or the uploader panicked.
    #[error("panicked: {0}")]
    Panic(String),
}

/// Why one run of a worker ended early.
pub(super) struct Failure {
    pub part: &'static str,
    pub error: WorkerError,
}

/// The outcome of a joined thread: its error, or its panic as an error.
pub(super) fn joined(
    outcome: std::thread::Result<Result<(), WorkerError>>,
    part: &'static str,
) -> Result<(), Failure> {
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(Failure { part, error }),
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(Failure { part, error: WorkerError::Panic(message) })
        }
    }
}
