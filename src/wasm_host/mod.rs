//! Record transforms: Hydrant's replacement for Firehose's Lambda data transformation.
//!
//! A transform is a WebAssembly module (WASI preview 1) that exports Hydrant's transform ABI
//! (`docs/transforms.md`). The delivery path calls it once per buffered batch, exactly where
//! Firehose would invoke the Lambda function, and gets back one [`RecordOutcome`] per input
//! record: `Ok` (new bytes and partition keys), `Dropped`, or `ProcessingFailed` with a
//! Firehose error code. A failure of the whole invocation is an [`InvocationError`], which
//! says whether to retry ([`InvocationError::is_retryable`]) and which code the error output
//! gets ([`InvocationError::code`]).
//!
//! - [`TransformEngine`]: one per process; compiles and caches modules.
//! - [`Transform`]: one per delivery worker; owns an instance and reuses it across batches,
//!   starting a fresh one after a trap, a timeout or a memory error.
//! - [`config`]: the `Lambda` processor's parameters, [`resolve_module`], [`TransformLimits`].
//!
//! The guest runs in a sandbox: a fuel budget per invocation (CPU), a memory cap, WASI with
//! no files, no environment, no network, stdout discarded and stderr captured for error
//! messages.

pub(crate) mod abi;
pub mod config;
mod engine;
mod error;
mod outcome;
mod sandbox;

#[cfg(test)]
mod tests;

pub use abi::ABI_VERSION;
pub use config::{resolve_module, DefinedBy, TransformLimits};
pub use engine::{
    AbiKind, SandboxLimits, Transform, TransformContext, TransformEngine, TransformModule,
    DEFAULT_FUEL, DEFAULT_MEMORY_BYTES, MAX_RESPONSE_BYTES,
};
pub use error::{EngineError, InvocationError, LoadError, ResolveError};
pub use outcome::{
    codes, InputRecord, RecordOutcome, RecordResult, DUPLICATED_RECORD_ID_MESSAGE,
    MISSING_RECORD_ID_MESSAGE, PROCESSING_FAILED_MESSAGE,
};
