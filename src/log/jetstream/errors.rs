//! What JetStream's errors mean to the log (§5 of the design): a publish that may succeed when
//! tried again (an election, a lost connection, a timeout) is retried under the same message
//! id; a full stream is `AppendError::Full`; anything else is `Unavailable`.

use std::error::Error as StdError;
use std::fmt::{Debug, Display};

use async_nats::jetstream::context::{PublishError, PublishErrorKind};

use crate::log::Cause;

/// `maximum bytes exceeded` (discard new, `max_bytes` reached).
pub const JS_MAX_BYTES: u64 = 10077;
/// `insufficient resources` (the server's or account's storage is used up).
pub const JS_INSUFFICIENT_RESOURCES: u64 = 10023;
/// `duplicate message id is in process` (the same id is being stored right now).
pub const JS_DUPLICATE_IN_PROCESS: u64 = 10158;
/// `invalid operation on sealed stream` (Hydrant fences closed shards' streams instead, but a
/// sealed one is closed as surely).
pub const JS_STREAM_SEALED: u64 = 10109;
/// `stream not found`.
pub const JS_STREAM_NOT_FOUND: u64 = 10059;
/// `wrong last sequence` without the number: how the leader of a replicated stream refuses an
/// expected last (subject) sequence while another write to it is still being stored (nats-server
/// 2.11 and later). async-nats maps only 10071, the numbered form, to `WrongLastSequence`.
pub const JS_WRONG_LAST_SEQUENCE_IN_FLIGHT: u64 = 10164;

/// Whether a conditional publish (`expected_last_sequence`) lost to another writer.
pub fn is_wrong_last_sequence(e: &PublishError) -> bool {
    e.kind() == PublishErrorKind::WrongLastSequence
        || js_code(e) == Some(JS_WRONG_LAST_SEQUENCE_IN_FLIGHT)
}

/// Whether a key-value create found the key made by another writer (stored, or being stored).
pub fn is_already_created(e: &async_nats::jetstream::kv::CreateError) -> bool {
    e.kind() == async_nats::jetstream::kv::CreateErrorKind::AlreadyExists
        || js_code(e) == Some(JS_WRONG_LAST_SEQUENCE_IN_FLIGHT)
}

/// Whether a key-value update lost to another writer of the key (its revision moved on).
pub fn is_wrong_last_revision(e: &async_nats::jetstream::kv::UpdateError) -> bool {
    e.kind() == async_nats::jetstream::kv::UpdateErrorKind::WrongLastRevision
        || js_code(e) == Some(JS_WRONG_LAST_SEQUENCE_IN_FLIGHT)
}

/// The JetStream API error code somewhere in `e`'s chain of causes.
pub fn js_code<K>(e: &async_nats::error::Error<K>) -> Option<u64>
where
    K: Clone + Debug + Display + PartialEq,
{
    let mut source = StdError::source(e);
    while let Some(cause) = source {
        if let Some(js) = cause.downcast_ref::<async_nats::jetstream::Error>() {
            return Some(js.error_code().0);
        }
        source = cause.source();
    }
    None
}

/// What to do after a failed publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishFailure {
    /// No leader, no connection, no answer in time, or the same id in flight: publish the same
    /// message (same id) again.
    Retry,
    /// The stream or the server's storage is full.
    Full,
    /// The shard closed: route the record again, to its children.
    Closed,
    /// No stream takes the subject: the shard closed (its stream was fenced), or a stream is
    /// being made or moved; the caller looks which.
    NoStream,
    /// Trying again will not help.
    Fatal,
}

impl PublishFailure {
    /// Its name in metrics (`kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            PublishFailure::Retry => "retry",
            PublishFailure::Full => "full",
            PublishFailure::Closed => "closed",
            PublishFailure::NoStream => "no_stream",
            PublishFailure::Fatal => "fatal",
        }
    }
}

pub fn classify(e: &PublishError) -> PublishFailure {
    match e.kind() {
        PublishErrorKind::TimedOut
        | PublishErrorKind::BrokenPipe
        | PublishErrorKind::MaxAckPending => PublishFailure::Retry,
        PublishErrorKind::StreamNotFound => PublishFailure::NoStream,
        _ => match js_code(e) {
            Some(JS_MAX_BYTES | JS_INSUFFICIENT_RESOURCES) => PublishFailure::Full,
            Some(JS_DUPLICATE_IN_PROCESS) => PublishFailure::Retry,
            Some(JS_STREAM_NOT_FOUND) => PublishFailure::NoStream,
            Some(JS_STREAM_SEALED) => PublishFailure::Closed,
            _ => PublishFailure::Fatal,
        },
    }
}

/// `e` as a [`Cause`], with `context` before its text.
pub fn cause(context: impl Display, e: impl Display) -> Cause {
    Cause::new(std::io::Error::other(format!("{context}: {e}")))
}
