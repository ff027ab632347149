//! Verifying a request's AWS Signature Version 4 (`auth: { mode: sigv4 }`), the way AWS
//! verifies it.
//!
//! Verification has two steps so that nothing is read from an unknown caller:
//! 1. [`Verifier::check_headers`], before the body is read: the `Authorization` header parses
//!    (`AWS4-HMAC-SHA256 Credential=AKID/YYYYMMDD/REGION/firehose/aws4_request,
//!    SignedHeaders=..., Signature=<64 hex>`), the access key is configured, the credential
//!    scope names the service the (signed) `X-Amz-Target` calls (`firehose`, or `kinesis` for
//!    `Kinesis_20131202.*`), this server's region and the date of `X-Amz-Date` (or
//!    `Date`), that date is within 15 minutes of now, `host` and `x-amz-target` are signed,
//!    and every signed header is present.
//! 2. [`Pending::verify`], with the body: `x-amz-content-sha256`, when sent, is the body's
//!    SHA-256, and the signature recomputed by `aws-sigv4` from the received method, path,
//!    query, signed headers and body with the configured secret equals the one sent
//!    (compared in constant time).
//!
//! Failures carry the `__type` and HTTP status AWS uses ([`AuthError::kind`]) and a reason
//! label for `hydrant_auth_failures_total` ([`AuthError::reason`]). Secrets never appear in
//! errors, logs or `Debug` output. Presigned URLs (query-string auth) and session tokens are
//! not accepted: Hydrant's keys are long-term access keys.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings};
use axum::http::{HeaderMap, Method, Uri};
use chrono::{DateTime, NaiveDateTime, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::actions::AllowedActions;
use super::{ApiError, ErrorType};
use crate::config::AuthConfig;
use crate::operations::Service;

mod header;
use header::{Authorization, RequestDate};

/// The signing name of Firehose, the service of every request whose target is not Kinesis'.
pub const SERVICE: &str = "firehose";

/// Largest difference between the request's date and the server's clock (AWS: 15 minutes).
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const TERMINATOR: &str = "aws4_request";
const AMZ_DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";
/// More signed headers than any SDK sends; a guard against absurd requests.
const MAX_SIGNED_HEADERS: usize = 64;

/// AWS's wording when the recomputed signature differs.
pub const MISMATCH_MESSAGE: &str = "The request signature we calculated does not match the \
     signature you provided. Check your AWS Secret Access Key and signing method. Consult the \
     service documentation for details.";

/// AWS's wording for an access key it does not know.
pub const UNKNOWN_KEY_MESSAGE: &str = "The security token included in the request is invalid.";

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header at all.
    #[error(
        "Missing Authentication Token: this Hydrant requires AWS Signature Version 4; sign \
         the request with an access key from its auth.credentials"
    )]
    Missing,
    /// Query-string authentication (a presigned URL).
    #[error(
        "Presigned URLs (X-Amz-Signature in the query string) are not accepted; sign the \
         request with an Authorization header, as every AWS SDK and the aws CLI do"
    )]
    Presigned,
    /// The `Authorization` header or the date header is malformed or incomplete.
    #[error("{0}")]
    Incomplete(String),
    /// The access key id is not configured.
    #[error("{UNKNOWN_KEY_MESSAGE}")]
    UnknownKey,
    /// The request carries a session token, which only AWS STS can issue.
    #[error(
        "{UNKNOWN_KEY_MESSAGE} Hydrant's credentials are long-term access keys and it issues \
         no session tokens: remove X-Amz-Security-Token (unset AWS_SESSION_TOKEN)"
    )]
    SessionToken,
    /// The credential scope names another service.
    #[error(
        "Credential should be scoped to correct service: '{}'. The request was signed for \
         service '{got}'; use a {expected} client",
        expected.id()
    )]
    WrongService { got: String, expected: Service },
    /// The credential scope names another region.
    #[error(
        "Credential should be scoped to a valid region, not '{got}'. This Hydrant serves region \
         '{expected}': configure the client with region {expected} (--region, AWS_REGION or \
         region_name)"
    )]
    WrongRegion { got: String, expected: String },
    /// The credential scope does not end in `aws4_request`.
    #[error("Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{got}'.")]
    WrongTerminator { got: String },
    /// The credential scope's date is not the request date's.
    #[error(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
         HTTP: '{scope}' != '{date}', from '{stamp}'."
    )]
    ScopeDate { scope: String, date: String, stamp: String },
    /// The request date is more than [`MAX_SKEW`] in the past.
    #[error(
        "Signature expired: {stamp} is now earlier than {earliest} ({now} - 15 min.) Check the \
         client's clock, or send the request again with a fresh signature"
    )]
    Expired { stamp: String, earliest: String, now: String },
    /// The request date is more than [`MAX_SKEW`] in the future.
    #[error(
        "Signature not yet current: {stamp} is still later than {latest} ({now} + 15 min.) \
         Check the client's clock"
    )]
    NotYetCurrent { stamp: String, latest: String, now: String },
    /// A header named in `SignedHeaders` is not in the request (a proxy may have dropped it).
    #[error(
        "The request signature we calculated does not match the signature you provided: \
         SignedHeaders names '{0}', but the request has no such header"
    )]
    SignedHeaderMissing(String),
    /// `x-amz-content-sha256` is not the SHA-256 of the body.
    #[error(
        "The provided 'x-amz-content-sha256' header does not match what was computed: it must \
         be the hex SHA-256 of the request body (UNSIGNED-PAYLOAD and streaming payloads are \
         not accepted)"
    )]
    BodyHash,
    /// The recomputed signature differs from the one sent.
    #[error("{MISMATCH_MESSAGE}")]
    Mismatch,
}

impl AuthError {
    /// The Firehose error type (and so HTTP status) AWS answers this failure with.
    pub fn kind(&self) -> ErrorType {
        match self {
            AuthError::Missing => ErrorType::MissingAuthenticationToken,
            AuthError::Presigned | AuthError::Incomplete(_) => ErrorType::IncompleteSignature,
            AuthError::UnknownKey | AuthError::SessionToken => ErrorType::UnrecognizedClient,
            _ => ErrorType::InvalidSignature,
        }
    }

    /// Label of `hydrant_auth_failures_total{reason}`.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Presigned => "presigned",
            AuthError::Incomplete(_) => "incomplete",
            AuthError::UnknownKey => "unknown_key",
            AuthError::SessionToken => "session_token",
            AuthError::WrongService { .. } => "wrong_service",
            AuthError::WrongRegion { .. } => "wrong_region",
            AuthError::WrongTerminator { .. } => "wrong_terminator",
            AuthError::ScopeDate { .. } => "scope_date",
            AuthError::Expired { .. } => "expired",
            AuthError::NotYetCurrent { .. } => "not_yet_current",
            AuthError::SignedHeaderMissing(_) => "signed_header_missing",
            AuthError::BodyHash => "body_hash",
            AuthError::Mismatch => "signature_mismatch",
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::new(e.kind(), e.to_string())
    }
}

fn incomplete(message: impl Into<String>) -> AuthError {
    AuthError::Incomplete(message.into())
}

/// A value from the request, quoted and cut short, for an error message.
fn shown(value: &str) -> String {
    const MAX: usize = 64;
    match value.char_indices().nth(MAX) {
        Some((end, _)) => format!("{:?}...", &value[..end]),
        None => format!("{value:?}"),
    }
}

/// One configured access key.
struct Key {
    secret: String,
    /// `None`: every stream.
    streams: Option<Arc<HashSet<String>>>,
    /// The operations it may call (`actions`).
    actions: Arc<AllowedActions>,
}

/// Who sent a verified request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The access key id the request was signed with.
    pub access_key_id: String,
    /// The service the request calls (by its target; the signature's scope names it too).
    pub service: Service,
    streams: Option<Arc<HashSet<String>>>,
    actions: Arc<AllowedActions>,
}

impl Caller {
    /// Whether this caller may use the delivery stream `name`.
    pub fn may_use(&self, name: &str) -> bool {
        self.streams.as_ref().is_none_or(|allowed| allowed.contains(name))
    }

    /// Whether this caller is limited to some streams (so requests must be checked).
    pub fn is_restricted(&self) -> bool {
        self.streams.is_some()
    }

    /// Whether this caller may call `operation` of its service (its key's `actions`).
    pub fn may_call(&self, operation: &str) -> bool {
        self.actions.allows(self.service, operation)
    }

    /// The operations of its service this caller may call, for messages.
    pub fn allowed_operations(&self) -> Vec<&'static str> {
        self.actions.names(self.service)
    }
}

/// Checks SigV4 signatures against the configured keys.
pub struct Verifier {
    region: String,
    keys: HashMap<String, Key>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&String> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("Verifier")
            .field("region", &self.region)
            .field("access_key_ids", &ids)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// The verifier for `auth`, or `None` when requests are not authenticated (`mode: none`).
    pub fn from_config(auth: &AuthConfig, region: &str) -> Option<Self> {
        let AuthConfig::Sigv4 { credentials } = auth else { return None };
        let keys = credentials
            .iter()
            .map(|c| {
                let streams =
                    c.streams.as_ref().map(|s| Arc::new(s.iter().cloned().collect::<HashSet<_>>()));
                let actions = Arc::new(AllowedActions::from_config(c.actions.as_deref()));
                let key = Key { secret: c.secret_access_key.expose().to_owned(), streams, actions };
                (c.access_key_id.clone(), key)
            })
            .collect();
        Some(Self { region: region.to_owned(), keys })
    }

    /// Step 1: everything that can be checked without the body. `now` is the server's clock.
    pub fn check_headers<'v>(
        &'v self,
        uri: &Uri,
        headers: &HeaderMap,
        now: SystemTime,
    ) -> Result<Pending<'v>, AuthError> {
        let mut values = headers.get_all(axum::http::header::AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            let query = uri.query().unwrap_or("");
            let presigned = query.split('&').any(|pair| {
                let name = pair.split('=').next().unwrap_or("");
                name == "X-Amz-Signature" || name == "X-Amz-Credential"
            });
            return Err(if presigned { AuthError::Presigned } else { AuthError::Missing });
        };
        if values.next().is_some() {
            return Err(incomplete("send exactly one Authorization header"));
        }
        let value = std::str::from_utf8(value.as_bytes())
            .map_err(|_| incomplete("the Authorization header is not valid UTF-8"))?;
        let auth = Authorization::parse(value)?;
        let date = RequestDate::from_headers(headers)?;

        let key = self.keys.get(auth.access_key_id).ok_or(AuthError::UnknownKey)?;
        if headers.contains_key("x-amz-security-token") {
            return Err(AuthError::SessionToken);
        }
        // The target is a signed header (checked below), so the service it names is the
        // caller's own claim, covered by the signature.
        let target = headers.get("x-amz-target").and_then(|t| t.to_str().ok()).unwrap_or("");
        let service = Service::of_target(target).map_or(Service::Firehose, |(s, _)| s);
        if auth.service != service.id() {
            return Err(AuthError::WrongService {
                got: auth.service.to_owned(),
                expected: service,
            });
        }
        if auth.region != self.region {
            return Err(AuthError::WrongRegion {
                got: auth.region.to_owned(),
                expected: self.region.clone(),
            });
        }
        if auth.terminator != TERMINATOR {
            return Err(AuthError::WrongTerminator { got: auth.terminator.to_owned() });
        }
        let date_stamp = date.time.format("%Y%m%d").to_string();
        if auth.scope_date != date_stamp {
            return Err(AuthError::ScopeDate {
                scope: auth.scope_date.to_owned(),
                date: date_stamp,
                stamp: date.time.format(AMZ_DATE_FORMAT).to_string(),
            });
        }
        check_skew(date.time, DateTime::<Utc>::from(now))?;
        for name in &auth.signed_headers {
            if !headers.contains_key(name.as_str()) {
                return Err(AuthError::SignedHeaderMissing(name.clone()));
            }
        }
        Ok(Pending {
            access_key_id: auth.access_key_id.to_owned(),
            service,
            key,
            region: &self.region,
            time: date.time,
            signed_headers: auth.signed_headers,
            signature: auth.signature.to_owned(),
        })
    }

    /// Both steps at once (for tests and callers that already hold the body).
    pub fn verify(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Caller, AuthError> {
        self.check_headers(uri, headers, now)?.verify(method, uri, headers, body)
    }
}

fn check_skew(time: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), AuthError> {
    let skew = chrono::TimeDelta::from_std(MAX_SKEW).expect("15 minutes fits");
    let stamp = |t: DateTime<Utc>| t.format(AMZ_DATE_FORMAT).to_string();
    if time < now - skew {
        return Err(AuthError::Expired {
            stamp: stamp(time),
            earliest: stamp(now - skew),
            now: stamp(now),
        });
    }
    if time > now + skew {
        return Err(AuthError::NotYetCurrent {
            stamp: stamp(time),
            latest: stamp(now + skew),
            now: stamp(now),
        });
    }
    Ok(())
}

/// A request whose headers passed [`Verifier::check_headers`]; the signature is still to check.
pub struct Pending<'v> {
    access_key_id: String,
    service: Service,
    key: &'v Key,
    region: &'v str,
    time: DateTime<Utc>,
    signed_headers: Vec<String>,
    signature: String,
}

impl fmt::Debug for Pending<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending")
            .field("access_key_id", &self.access_key_id)
            .field("time", &self.time)
            .field("signed_headers", &self.signed_headers)
            .finish_non_exhaustive()
    }
}

impl Pending<'_> {
    /// The access key id the request claims (its signature is not checked yet).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// Whether the claimed key may call `operation` of the request's service (its `actions`),
    /// known before the body.
    pub fn may_call(&self, operation: &str) -> bool {
        self.key.actions.allows(self.service, operation)
    }

    /// Step 2: the body hash and the signature.
    pub fn verify(
        self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Caller, AuthError> {
        let body_hash = hex(&Sha256::digest(body));
        let mut claimed = headers.get_all("x-amz-content-sha256").iter();
        if let Some(value) = claimed.next() {
            let value = value.to_str().unwrap_or("");
            if claimed.next().is_some() || !value.eq_ignore_ascii_case(&body_hash) {
                return Err(AuthError::BodyHash);
            }
        }

        let mut signed: Vec<(&str, &str)> = Vec::new();
        for name in &self.signed_headers {
            for value in headers.get_all(name.as_str()) {
                let value = std::str::from_utf8(value.as_bytes()).map_err(|_| {
                    incomplete(format!("the value of signed header {name} is not valid UTF-8"))
                })?;
                signed.push((name.as_str(), value));
            }
        }
        let mut settings = SigningSettings::default();
        // Sign exactly what the client signed: aws-sigv4 adds X-Amz-Date to what it signs, so
        // leave it out when the client did not sign it (it signed `Date` instead).
        settings.excluded_headers =
            Some(if self.signed_headers.iter().any(|h| h == "x-amz-date") {
                Vec::new()
            } else {
                vec!["x-amz-date".into()]
            });
        let identity = aws_credential_types::Credentials::new(
            self.access_key_id.clone(),
            self.key.secret.clone(),
            None,
            None,
            "hydrant-config",
        )
        .into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region)
            .name(self.service.id())
            .time(SystemTime::from(self.time))
            .settings(settings)
            .build()
            .map_err(|e| incomplete(format!("cannot compute the signature: {e}")))?
            .into();
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let request = SignableRequest::new(
            method.as_str(),
            path,
            signed.into_iter(),
            SignableBody::Precomputed(body_hash),
        )
        .map_err(|e| incomplete(format!("cannot canonicalize the request: {e}")))?;
        let (_, expected) = aws_sigv4::http_request::sign(request, &params)
            .map_err(|e| incomplete(format!("cannot canonicalize the request: {e}")))?
            .into_parts();
        if !bool::from(expected.as_bytes().ct_eq(self.signature.as_bytes())) {
            return Err(AuthError::Mismatch);
        }
        Ok(Caller {
            access_key_id: self.access_key_id,
            service: self.service,
            streams: self.key.streams.clone(),
            actions: self.key.actions.clone(),
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
