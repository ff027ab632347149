//! Firehose errors on the wire: `{"__type": ..., "message": ...}` with the status AWS uses.
//!
//! Client mistakes are 4xx with a message that says what to fix and are logged at debug, not
//! as server errors; internal failures never leak details beyond a short reason.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::config::LogKeyError;
use crate::control::ControlError;
use crate::log::AppendError;
use crate::registry::{NotFound, PutError};

/// The `__type` names a Firehose client can see from Hydrant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// The body is not JSON, or a member has the wrong type or encoding (bad base64).
    Serialization,
    /// A member violates a modelled constraint (length, range, pattern, required).
    Validation,
    /// Parameters that are well formed but not acceptable together (e.g. a call over 4 MiB).
    InvalidArgument,
    /// The delivery stream does not exist.
    ResourceNotFound,
    /// The stream exists already, is being deleted, or is owned by the config file.
    ResourceInUse,
    /// `CurrentDeliveryStreamVersionId` is not the stream's current version.
    ConcurrentModification,
    /// Too many tags.
    LimitExceeded,
    /// The encryption key a stream asks for is not one this server has (KMS in Firehose).
    InvalidKmsResource,
    /// A stream that decompresses CloudWatch Logs records was sent a record that is not one.
    InvalidSource,
    /// The `X-Amz-Target` names no Firehose operation Hydrant serves.
    UnknownOperation,
    /// Back-pressure: the log's disk budget is full or the disk is; SDKs retry 503s.
    ServiceUnavailable,
    /// Something failed inside Hydrant (an I/O error on the log).
    InternalFailure,
    /// `auth: sigv4` and the request has no `Authorization` header (HTTP 403).
    MissingAuthenticationToken,
    /// The `Authorization` header (or the date it needs) is malformed or incomplete.
    IncompleteSignature,
    /// The access key id is not one of the configured keys.
    UnrecognizedClient,
    /// The signature does not verify: wrong secret, scope (region, service, date) or expired.
    InvalidSignature,
    /// The access key may not call the operation (`auth.credentials[].actions`) or use the
    /// delivery stream it names (`auth.credentials[].streams`).
    AccessDenied,
    /// The request is larger than any valid Firehose call (HTTP 413), told before its body is
    /// read. AWS's JSON services answer an oversized payload with 413 and this name (Lambda's
    /// `Invoke` models it); SDKs do not retry it, which is right: the same request fails again.
    RequestEntityTooLarge,
    /// Kinesis: the shard iterator is older than 5 minutes.
    ExpiredIterator,
    /// Kinesis: the shard (or here, the disk under the log) cannot take more now; SDKs back
    /// off and retry.
    ProvisionedThroughputExceeded,
    /// The request body arrived slower than `http.min_body_bytes_per_second` allows (HTTP 408).
    /// botocore and the other SDKs retry this name as a transient error.
    RequestTimeout,
}

impl ErrorType {
    pub fn name(self) -> &'static str {
        match self {
            Self::Serialization => "SerializationException",
            Self::Validation => "ValidationException",
            Self::InvalidArgument => "InvalidArgumentException",
            Self::ResourceNotFound => "ResourceNotFoundException",
            Self::ResourceInUse => "ResourceInUseException",
            Self::ConcurrentModification => "ConcurrentModificationException",
            Self::LimitExceeded => "LimitExceededException",
            Self::InvalidKmsResource => "InvalidKMSResourceException",
            Self::InvalidSource => "InvalidSourceException",
            Self::UnknownOperation => "UnknownOperationException",
            Self::ServiceUnavailable => "ServiceUnavailableException",
            Self::InternalFailure => "InternalFailure",
            Self::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            Self::IncompleteSignature => "IncompleteSignatureException",
            Self::UnrecognizedClient => "UnrecognizedClientException",
            Self::InvalidSignature => "InvalidSignatureException",
            Self::AccessDenied => "AccessDeniedException",
            Self::RequestEntityTooLarge => "RequestEntityTooLargeException",
            Self::RequestTimeout => "RequestTimeoutException",
            Self::ExpiredIterator => "ExpiredIteratorException",
            Self::ProvisionedThroughputExceeded => "ProvisionedThroughputExceededException",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::InternalFailure => StatusCode::INTERNAL_SERVER_ERROR,
            Self::MissingAuthenticationToken => StatusCode::FORBIDDEN,
            Self::RequestEntityTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// A failed call, answered as Firehose answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorType,
    pub message: String,
    /// For an unknown stream: the streams that do exist, told after the message unless the
    /// caller's key is limited to some streams ([`ApiError::for_restricted_caller`]).
    pub known_streams: Option<Vec<String>>,
}

impl ApiError {
    pub fn new(kind: ErrorType, message: impl Into<String>) -> Self {
        Self { kind, message: bounded(message.into()), known_streams: None }
    }

    /// The answer for a caller whose key may use only some streams: it does not learn the
    /// names of the others.
    pub fn for_restricted_caller(mut self) -> Self {
        self.known_streams = None;
        self
    }

    /// The message as the caller reads it.
    pub fn full_message(&self) -> String {
        match &self.known_streams {
            None => self.message.clone(),
            Some(known) if known.is_empty() => {
                format!("{}. Known delivery streams: none", self.message)
            }
            Some(known) => {
                format!("{}. Known delivery streams: {}", self.message, known.join(", "))
            }
        }
    }

    /// AWS's wording for constraint violations, so the message reads like the real service's.
    pub fn constraint(path: &str, constraint: &str) -> Self {
        Self::new(
            ErrorType::Validation,
            format!("1 validation error detected: Value at '{path}' failed to satisfy constraint: {constraint}"),
        )
    }
}

impl From<NotFound> for ApiError {
    fn from(e: NotFound) -> Self {
        let message = e.to_string();
        ApiError {
            known_streams: Some(e.known),
            ..ApiError::new(ErrorType::ResourceNotFound, message)
        }
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        let e = match e {
            ControlError::NotFound(not_found) => return not_found.into(),
            e => e,
        };
        let kind = match &e {
            ControlError::NotFound(_) => ErrorType::ResourceNotFound,
            ControlError::OwnedByConfigFile { .. }
            | ControlError::Deleting { .. }
            | ControlError::Exists { .. } => ErrorType::ResourceInUse,
            ControlError::VersionMismatch { .. } => ErrorType::ConcurrentModification,
            ControlError::UnknownDestinationId { .. }
            | ControlError::Invalid(_)
            | ControlError::Merge(_)
            | ControlError::NotStartable(_)
            | ControlError::ServerFile(_) => ErrorType::InvalidArgument,
            ControlError::TooManyTags { .. }
            | ControlError::ApiStreamsOff { .. }
            | ControlError::TooManyStreams { .. }
            | ControlError::TooManyShards { .. }
            | ControlError::OverLimits(_) => ErrorType::LimitExceeded,
            ControlError::Keys(LogKeyError::UnknownKey { .. }) => ErrorType::InvalidKmsResource,
            ControlError::Keys(LogKeyError::Load { .. })
            | ControlError::StartFailed(_)
            | ControlError::Internal { .. } => ErrorType::InternalFailure,
            ControlError::Keys(_) => ErrorType::InvalidArgument,
        };
        if kind == ErrorType::InternalFailure {
            // The details of an internal failure (paths, I/O errors) stay in the server's log.
            tracing::error!(error = %e, "a control-plane call failed inside Hydrant");
            return ApiError::new(
                kind,
                "the change could not be carried out on the server; its log has the details. \
                 Retry later, or ask the operator",
            );
        }
        ApiError::new(kind, e.to_string())
    }
}

impl From<PutError> for ApiError {
    fn from(e: PutError) -> Self {
        match e {
            PutError::Deleting { .. } => ApiError::new(ErrorType::ResourceNotFound, e.to_string()),
            PutError::NotDirectPut { .. } => {
                ApiError::new(ErrorType::InvalidArgument, e.to_string())
            }
        }
    }
}

/// A record `stream`'s log did not store, as the producer sees it: ServiceUnavailable, which
/// SDKs retry. The text is fixed; the cause (which may name server paths or I/O errors) is for
/// the server's log, which the caller logs with the request id.
pub fn put_record_error(stream: &str, e: &AppendError) -> ApiError {
    let message = match e {
        AppendError::Full(_) => format!(
            "Slow down. Delivery stream {stream} cannot store more records now; retry with backoff"
        ),
        _ => format!("Delivery stream {stream} could not store the records; retry later"),
    };
    ApiError::new(ErrorType::ServiceUnavailable, message)
}

impl ApiError {
    /// The error document: `{"__type","message"}`.
    pub fn document(&self) -> String {
        serde_json::json!({ "__type": self.kind.name(), "message": self.full_message() })
            .to_string()
    }

    /// The answer with `body` (the [`document`](Self::document), in the request's encoding).
    pub fn response_with(self, body: Response) -> Response {
        let mut response = (self.kind.status(), body).into_response();
        response
            .headers_mut()
            .insert("x-amzn-errortype", HeaderValue::from_static(self.kind.name()));
        if matches!(self.kind, ErrorType::RequestEntityTooLarge | ErrorType::RequestTimeout) {
            // The body was not (all) read: this connection cannot carry another request.
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = super::json_body(self.document());
        self.response_with(body)
    }
}

/// Longest error message an answer carries: parser errors quote the input (`invalid type:
/// string "..."`), and a caller must not get back a megabyte it sent.
pub const MAX_MESSAGE_CHARS: usize = 4096;

/// `message`, cut at [`MAX_MESSAGE_CHARS`] characters with a note that it was.
fn bounded(message: String) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        None => message,
        Some((end, _)) => {
            format!("{}... (message cut at {MAX_MESSAGE_CHARS} characters)", &message[..end])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Cause;

    #[test]
    fn a_record_the_log_did_not_store_is_answered_with_a_fixed_text() {
        let io = std::io::Error::other("open /var/lib/hydrant/streams/s/shard-0000/00000001.log");
        let e = put_record_error("s", &AppendError::Unavailable(Cause::new(io)));
        assert_eq!(e.kind, ErrorType::ServiceUnavailable);
        assert_eq!(e.message, "Delivery stream s could not store the records; retry later");
        let full = std::io::Error::other("disk budget of /var/lib/hydrant exceeded");
        let e = put_record_error("s", &AppendError::Full(Cause::new(full)));
        assert_eq!(e.kind, ErrorType::ServiceUnavailable);
        assert_eq!(
            e.message,
            "Slow down. Delivery stream s cannot store more records now; retry with backoff"
        );
    }

    #[test]
    fn an_unknown_stream_is_answered_with_the_known_ones() {
        let e = ApiError::from(NotFound {
            stream: "ghost".into(),
            account: "123456789012".into(),
            known: vec!["a".into(), "b".into()],
        });
        assert_eq!(e.kind, ErrorType::ResourceNotFound);
        assert_eq!(
            e.full_message(),
            "Firehose ghost under account 123456789012 not found. Known delivery streams: a, b"
        );
        assert_eq!(
            e.for_restricted_caller().full_message(),
            "Firehose ghost under account 123456789012 not found"
        );
        let deleting =
            ApiError::from(PutError::Deleting { stream: "s".into(), account: "1".into() });
        assert_eq!(deleting.kind, ErrorType::ResourceNotFound);
        assert!(deleting.message.contains("being deleted"), "{}", deleting.message);
    }

    #[test]
    fn control_errors_keep_their_firehose_types_and_internal_ones_hide_their_detail() {
        let stream = || "s".to_string();
        let cases = [
            (ControlError::OwnedByConfigFile { stream: stream() }, ErrorType::ResourceInUse),
            (ControlError::Deleting { stream: stream() }, ErrorType::ResourceInUse),
            (
                ControlError::Exists { stream: stream(), account: "1".into(), deleting: false },
                ErrorType::ResourceInUse,
            ),
            (
                ControlError::VersionMismatch { stream: stream(), current: 2, given: "1".into() },
                ErrorType::ConcurrentModification,
            ),
            (ControlError::UnknownDestinationId { given: "x".into() }, ErrorType::InvalidArgument),
            (
                ControlError::Merge(crate::control::MergeError::NoDestination),
                ErrorType::InvalidArgument,
            ),
            (ControlError::TooManyTags { stream: stream(), count: 51 }, ErrorType::LimitExceeded),
            (ControlError::ApiStreamsOff { stream: stream() }, ErrorType::LimitExceeded),
            (
                ControlError::TooManyShards { stream: stream(), shards: 4, in_use: 8, max: 10 },
                ErrorType::LimitExceeded,
            ),
            (ControlError::Keys(LogKeyError::NoKeys), ErrorType::InvalidArgument),
            (
                ControlError::Keys(LogKeyError::UnknownKey {
                    arn: "a".into(),
                    id: "k".into(),
                    configured: "k1".into(),
                    ring: "storage.encryption",
                }),
                ErrorType::InvalidKmsResource,
            ),
        ];
        for (e, kind) in cases {
            let text = e.to_string();
            let api = ApiError::from(e);
            assert_eq!(api.kind, kind, "{text}");
            assert_eq!(api.message, text);
        }
        let shards =
            ControlError::TooManyShards { stream: stream(), shards: 4, in_use: 8, max: 10 };
        assert!(shards.to_string().contains("ask for at most 2,"), "{shards}");

        let internal = ApiError::from(ControlError::Internal {
            what: "cannot store the change",
            detail: "/var/lib/hydrant/api-streams/s.json: permission denied".into(),
        });
        assert_eq!(internal.kind, ErrorType::InternalFailure);
        assert!(!internal.message.contains("/var/lib"), "{}", internal.message);
    }

    #[test]
    fn an_unknown_stream_of_the_control_plane_is_told_with_the_known_ones_unless_restricted() {
        let not_found =
            NotFound { stream: "x".into(), account: "1".into(), known: vec!["a".into()] };
        let api = ApiError::from(ControlError::NotFound(not_found));
        assert_eq!(api.kind, ErrorType::ResourceNotFound);
        assert!(
            api.full_message().ends_with("Known delivery streams: a"),
            "{}",
            api.full_message()
        );
        assert!(!api.for_restricted_caller().full_message().contains("Known"));
    }
}
