//! Errors of loading a transform module and of invoking it.
//!
//! Per-record verdicts (MissingRecordId, DuplicatedRecordId, InvalidReturnFormat,
//! ProcessingFailedStatus) are not errors: they are [`crate::wasm_host::RecordResult`]s.
//! An [`InvocationError`] fails the whole batch, exactly as a failed Lambda invocation does
//! in Firehose.

use std::path::PathBuf;

use super::codes;

/// Why a module could not be loaded. Returned by [`crate::wasm_host::TransformEngine::load`];
/// a config that names such a module should be rejected at startup.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read transform module {path}: {source}")]
    Io {
        /// The module path as given.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid WebAssembly module (or WAT text).
    #[error("cannot compile transform module {path}: {message}")]
    Compile {
        /// The module path.
        path: PathBuf,
        /// Wasmtime's explanation.
        message: String,
    },
    /// Instantiating the module needs more memory (its initial memory and data) than the
    /// sandbox's cap allows, so no invocation could ever start.
    #[error(
        "transform module {path} needs more than its memory limit of {} MiB just to start (its \
         initial memory); raise hydrant.transform.memory_mib or build the module with a smaller \
         initial memory",
        limit_bytes >> 20
    )]
    MemoryLimit {
        /// The module path.
        path: PathBuf,
        /// The cap.
        limit_bytes: u64,
    },
    /// The module does not follow Hydrant's transform ABI (missing or mistyped exports,
    /// imports other than WASI preview 1, an unsupported ABI version).
    #[error("transform module {path} does not follow the Hydrant transform ABI: {message}")]
    Abi {
        /// The module path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Why the WebAssembly engine could not be created (once per server, at start).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot create the wasmtime engine: {0}")]
    Engine(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot add WASI to the linker: {0}")]
    Wasi(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Why a `LambdaArn` names no module this stream may use
/// ([`resolve_module`](crate::wasm_host::resolve_module)). The messages never say anything
/// about the server's file system.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// A stream of the API names a function that is not in `functions:` (`arn` is quoted
    /// and cut short).
    #[error(
        "LambdaArn {arn}: a stream created through the API may only name a function the \
         operator lists in `functions:` of the config file (by its Lambda ARN, e.g. \
         arn:aws:lambda:us-east-1:123456789012:function:name); use one of those, or ask the \
         operator to add this one"
    )]
    NotAllowed { arn: String },
    #[error(
        "LambdaArn {arn:?}: a file:// URL needs an absolute path (file:///dir/module.wasm); use \
         a plain relative path instead"
    )]
    RelativeFileUrl { arn: String },
    #[error(
        "LambdaArn {arn:?} is not in `functions:`; add it there with the path of its \
         WebAssembly module"
    )]
    NotInFunctions { arn: String },
    #[error("LambdaArn is blank")]
    Blank,
}

/// Why one invocation failed as a whole. Every record of the batch is then retried or sent
/// to the error output with [`InvocationError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvocationError {
    /// The guest trapped: a panic, `unreachable`, an out-of-bounds access, a stack overflow,
    /// or a call to `proc_exit`.
    #[error("transform trapped: {message}")]
    Trap {
        /// The trap, the wasm backtrace and the tail of the guest's stderr.
        message: String,
    },
    /// The guest used up its fuel (CPU budget) for this invocation: Hydrant's stand-in for
    /// the Lambda timeout.
    #[error("transform timed out: used up its budget of {fuel} fuel units")]
    Timeout {
        /// The budget that was exhausted.
        fuel: u64,
    },
    /// The guest tried to grow its memory past the cap.
    #[error("transform exceeded its memory limit of {limit_bytes} bytes")]
    MemoryLimitExceeded {
        /// The cap.
        limit_bytes: u64,
    },
    /// The response is larger than Lambda's 6 MB payload limit (or the configured limit).
    #[error("transform response of {size} bytes exceeds the limit of {limit} bytes")]
    ResponseTooLarge {
        /// Size of the response buffer.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The response could not be decoded at all (invalid JSON; a truncated or over-long
    /// binary response).
    #[error("transform response cannot be parsed: {message}")]
    ResponseUnparseable {
        /// Where and why decoding failed.
        message: String,
    },
    /// The guest broke the memory protocol of the ABI (a null or out-of-bounds buffer).
    #[error("transform broke the ABI: {message}")]
    Abi {
        /// What it did.
        message: String,
    },
    /// A fresh instance could not be created (e.g. its start function trapped, or its
    /// initial memory is over the cap).
    #[error("transform could not be instantiated: {message}")]
    Instantiation {
        /// Wasmtime's explanation.
        message: String,
    },
}

impl InvocationError {
    /// The Firehose error code written to the error output (`errorCode`) when the batch
    /// finally fails with this error.
    ///
    /// Traps, timeouts, memory exhaustion and instantiation failures are what Lambda reports
    /// as a function error. An unparseable response is `Lambda.JsonProcessingException`. An
    /// oversized response is reported by real Firehose as missing record ids (FIREHOSE.md
    /// §4.3), so it maps to `Lambda.MissingRecordId`. An ABI violation means the module is not
    /// a working function: `Lambda.FunctionError` as well.
    pub fn code(&self) -> &'static str {
        match self {
            InvocationError::Trap { .. }
            | InvocationError::Timeout { .. }
            | InvocationError::MemoryLimitExceeded { .. }
            | InvocationError::Abi { .. }
            | InvocationError::Instantiation { .. } => codes::FUNCTION_ERROR,
            InvocationError::ResponseTooLarge { .. } => codes::MISSING_RECORD_ID,
            InvocationError::ResponseUnparseable { .. } => codes::JSON_PROCESSING_EXCEPTION,
        }
    }

    /// Whether Firehose retries the invocation (up to `NumberOfRetries` times) before sending
    /// the batch to the error output.
    ///
    /// Function errors are retried, as in Firehose, even though a deterministic guest will
    /// usually fail the same way again. A response that came back but cannot be used (too
    /// large, unparseable) is not retried: the records go to the error output with
    /// `attemptsMade` 1 (FIREHOSE.md §4.4, observed).
    pub fn is_retryable(&self) -> bool {
        match self {
            InvocationError::Trap { .. }
            | InvocationError::Timeout { .. }
            | InvocationError::MemoryLimitExceeded { .. }
            | InvocationError::Abi { .. }
            | InvocationError::Instantiation { .. } => true,
            InvocationError::ResponseTooLarge { .. }
            | InvocationError::ResponseUnparseable { .. } => false,
        }
    }

    /// Whether the instance must be thrown away (the next invocation instantiates afresh).
    pub(crate) fn poisons_instance(&self) -> bool {
        !matches!(
            self,
            InvocationError::ResponseTooLarge { .. } | InvocationError::ResponseUnparseable { .. }
        )
    }
}
