//! Why a stream could not start.

use hydrant_destinations::DestinationError;

use crate::log::{LeaseError, OpenError};
use crate::naming::NamerError;

/// Why a stream could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("delivery stream {stream}: cannot open its log: {source}")]
    Log { stream: String, source: OpenError },
    #[error("delivery stream {stream}: cannot open bucket {bucket}: {source}")]
    Destination { stream: String, bucket: String, source: DestinationError },
    #[error("delivery stream {stream}: processing: {message}")]
    Processing { stream: String, message: String },
    /// The `LambdaArn` names no module this stream may use.
    #[error("delivery stream {stream}: processing: {source}")]
    Resolve { stream: String, source: crate::wasm_host::ResolveError },
    /// The module a `LambdaArn` names cannot be read, compiled or used. The message quotes
    /// the file (a compiler error shows its text), so it is for the operator's eyes only.
    #[error("delivery stream {stream}: processing: LambdaArn {lambda_arn}: {error}")]
    Transform { stream: String, lambda_arn: String, error: crate::wasm_host::LoadError },
    #[error("delivery stream {stream}: destination: {source}")]
    Sink { stream: String, source: crate::destination::PlanError },
    #[error("delivery stream {stream}: encryption keys: {message}")]
    Keys { stream: String, message: String },
    #[error("delivery stream {stream}: {source}")]
    Naming { stream: String, source: NamerError },
    /// The prefix as written makes keys the store refuses whatever the records hold, so
    /// every object would fail.
    #[error(
        "delivery stream {stream}: {field}: the object keys it makes cannot be written ({message}); \
         fix {field} (no empty \"//\", \".\" or \"..\" segment, no control character, within \
         the store's length limits)"
    )]
    UnwritableKeys { stream: String, field: &'static str, message: String },
    #[error(
        "delivery stream {stream}: its log has {on_disk} open shards but the configuration says \
         {configured}, and this log cannot split or merge shards (cluster mode, docs/cluster.md): \
         restore hydrant.shards: {on_disk}"
    )]
    ShardCount { stream: String, on_disk: u32, configured: u32 },
    #[error("delivery stream {stream}: cannot read Kinesis stream {kinesis}: {message}")]
    Source { stream: String, kinesis: String, message: String },
    #[error("delivery stream {stream}: cannot reshard its log to hydrant.shards: {source}")]
    Reshard { stream: String, source: Box<crate::log::ReshardError> },
    #[error("delivery stream {stream}: cannot consume its log: {source}")]
    Consume { stream: String, source: LeaseError },
    #[error("delivery stream {stream}: cannot start its delivery threads: {source}")]
    Threads { stream: String, source: std::io::Error },
}
