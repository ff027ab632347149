//! Why a delivery failed, classified by what the caller should do about it.

use std::fmt;

/// Whether retrying a failed delivery can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Network trouble, throttling, a server error, a missing bucket that an operator may
    /// create: try again later.
    Transient,
    /// The request itself is wrong (too large, rejected by schema): retrying cannot help.
    Permanent,
}

/// A failed delivery. `code` follows Firehose's error codes (`S3.NoSuchBucket`,
/// `S3.AccessDenied`, ...) so error-output documents and logs read like Firehose's.
#[derive(Debug, Clone, thiserror::Error)]
pub struct DestinationError {
    pub class: ErrorClass,
    pub code: String,
    pub message: String,
}

impl DestinationError {
    pub fn transient(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { class: ErrorClass::Transient, code: code.into(), message: message.into() }
    }

    pub fn permanent(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { class: ErrorClass::Permanent, code: code.into(), message: message.into() }
    }

    pub fn is_retryable(&self) -> bool {
        self.class == ErrorClass::Transient
    }
}

impl fmt::Display for DestinationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}
