//! Why the registry cannot serve a call: typed by meaning; the API turns them into Firehose
//! errors (`api/error.rs`).

/// No delivery stream of this name exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Firehose {stream} under account {account} not found")]
pub struct NotFound {
    pub stream: String,
    pub account: String,
    /// The streams that do exist, sorted (told only to callers that may see every stream).
    pub known: Vec<String>,
}

/// Why a put was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PutError {
    /// The stream is being deleted (or removed from the config file) and accepts no records.
    #[error("Firehose {stream} under account {account} not found: it is being deleted and accepts no more records")]
    Deleting { stream: String, account: String },
    /// The stream reads a Kinesis stream: producers put records there (Firehose's message).
    #[error(
        "This operation is not permitted on KinesisStreamAsSource delivery stream type: {stream} \
         reads Kinesis stream {kinesis}; put the records there (PutRecord(s) of the Kinesis API)"
    )]
    NotDirectPut { stream: String, kinesis: String },
}
