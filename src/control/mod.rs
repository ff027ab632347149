//! The control plane: creating, changing, tagging and deleting streams while Hydrant serves,
//! reloading the config file (SIGHUP) and stopping gracefully.
//!
//! Ownership: a stream defined in the config file belongs to the file. The API reads it
//! (Describe, List, ListTags) but changing it (Delete, UpdateDestination, Tag, Untag,
//! Start/StopDeliveryStreamEncryption) is refused with ResourceInUseException: edit the file
//! and reload. Streams created through the API live in `<data_dir>/api-streams/` and are
//! re-opened at every start ([`persist`]).
//!
//! Every change is serialised by [`Registry::control`]. A change of a running stream's
//! configuration (UpdateDestination, a reload) prepares the new pipeline first (a bad
//! destination leaves the old one running), then stops the old workers with
//! [`StopMode::Stop`](crate::delivery::StopMode::Stop) (what is sealed is delivered, nothing
//! new is cut) and starts new ones on the same log with the new version, so the next objects
//! carry it in their names. Deleting or removing a stream closes it to puts, drains it
//! ([`StopMode::Drain`](crate::delivery::StopMode::Drain)) and then deletes its log (API
//! delete) or keeps it (removal from the file, so re-adding resumes it).
//!
//! One file per operation: `create.rs`, `delete.rs` (and removal from the config file),
//! `update.rs` (UpdateDestination, and replacing a stream's pipeline), `tags.rs`,
//! `encryption.rs`, `startup.rs` (opening every stream at start, finishing deletions),
//! `drain.rs` (graceful stop), [`reload`] (SIGHUP); this file has what they share.

pub mod api_policy;
mod create;
mod delete;
mod drain;
mod encryption;
pub mod merge;
pub mod persist;
pub mod reload;
mod startup;
mod tags;
mod update;

use std::sync::Arc;
use std::time::Duration;

use crate::api::{ApiError, ErrorType};
use crate::config::{
    DeliveryStreamConfig, Issue, LimitExcess, LimitKind, LimitsConfig, LogKeyError,
};
use crate::pipeline::StartError;
use crate::registry::{DeliveryStream, Owner, Registry};

pub use merge::UpdateKind;
pub use reload::ReloadError;

/// Most tags a stream may have (Firehose).
pub const MAX_TAGS: usize = crate::config::MAX_TAGS;

/// Why a control-plane call was refused. Each carries the whole message (which names the
/// stream or member and what to do); the API turns them into Firehose's error types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// ResourceNotFoundException.
    #[error("{0}")]
    NotFound(String),
    /// ResourceInUseException: the name is taken, the stream is being deleted, or it belongs
    /// to the config file.
    #[error("{0}")]
    InUse(String),
    /// InvalidArgumentException.
    #[error("{0}")]
    Invalid(String),
    /// ConcurrentModificationException.
    #[error("{0}")]
    VersionMismatch(String),
    /// LimitExceededException.
    #[error("{0}")]
    LimitExceeded(String),
    /// InvalidKMSResourceException: the key a stream asks for is not configured.
    #[error("{0}")]
    Kms(String),
    /// InternalFailure: the change could not be stored or started.
    #[error("{0}")]
    Internal(String),
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        if let ControlError::Internal(detail) = &e {
            // Details of an internal failure (paths, I/O errors) stay in the server's log.
            tracing::error!(error = %detail, "a control-plane call failed inside Hydrant");
            return ApiError::new(
                ErrorType::InternalFailure,
                "the change could not be carried out on the server; its log has the details. \
                 Retry later, or ask the operator",
            );
        }
        let kind = match &e {
            ControlError::NotFound(_) => ErrorType::ResourceNotFound,
            ControlError::InUse(_) => ErrorType::ResourceInUse,
            ControlError::Invalid(_) => ErrorType::InvalidArgument,
            ControlError::VersionMismatch(_) => ErrorType::ConcurrentModification,
            ControlError::LimitExceeded(_) => ErrorType::LimitExceeded,
            ControlError::Kms(_) => ErrorType::InvalidKmsResource,
            ControlError::Internal(_) => ErrorType::InternalFailure,
        };
        ApiError::new(kind, e.to_string())
    }
}

fn internal(what: &str) -> impl Fn(String) -> ControlError + '_ {
    move |e| ControlError::Internal(format!("{what}: {e}"))
}

fn now_secs() -> f64 {
    crate::clock::now_ms() as f64 / 1000.0
}

/// A start failure as the API reports it: the caller's configuration, or Hydrant's disk.
///
/// For a stream of the API (`owner`), failures that involve the server's files (a transform
/// module, key files, a local bucket directory) are logged here with their details, and the
/// caller learns only which member failed: a compiler error quotes the module's text and an
/// I/O error names a path. A config-file stream's failure keeps its details (the operator
/// reads it in the reload log).
fn start_error(e: StartError, owner: Owner) -> ControlError {
    if owner == Owner::Api {
        let hidden = |message: String| {
            tracing::warn!(error = %e, "a stream of the API could not start");
            ControlError::Invalid(message)
        };
        match &e {
            StartError::Transform { lambda_arn, .. } => {
                return hidden(format!(
                    "LambdaArn {lambda_arn:?}: the WebAssembly module of this function cannot \
                     be loaded on the server (the server log says why); ask the operator to fix \
                     its entry in functions:, or name another function"
                ))
            }
            StartError::Keys { .. } | StartError::Schema { .. } => {
                return hidden(
                    "the server's encryption keys cannot be loaded (the server log says why); \
                     ask the operator to fix storage.encryption, or leave \
                     DeliveryStreamEncryptionConfigurationInput out"
                        .into(),
                )
            }
            StartError::Destination { bucket, .. } => {
                return hidden(format!(
                    "bucket {bucket:?} cannot be opened in the stream's object store (the server \
                     log says why); check BucketARN, or ask the operator"
                ))
            }
            _ => {}
        }
    }
    match e {
        StartError::Log { .. }
        | StartError::Consume { .. }
        | StartError::Threads { .. }
        | StartError::Version { .. }
        | StartError::ApiStream { .. } => ControlError::Internal(e.to_string()),
        other => ControlError::Invalid(other.to_string()),
    }
}

/// The keys of a stream's log could not be had: the caller's `KeyType` / `KeyARN`, or the
/// server's key files (whose paths and errors are logged, not answered).
fn key_error(e: LogKeyError) -> ControlError {
    match e {
        LogKeyError::UnknownKey { .. } => ControlError::Kms(e.to_string()),
        LogKeyError::Load { ring, .. } => {
            tracing::error!(error = %e, "encryption keys cannot be loaded");
            ControlError::Internal(format!(
                "the server's {ring} keys cannot be loaded; the server log says why"
            ))
        }
        e => ControlError::Invalid(e.to_string()),
    }
}

/// Joins issues into one message, `path: message; ...`.
pub fn issues_message(issues: &[Issue]) -> String {
    issues
        .iter()
        .map(|i| if i.path.is_empty() { i.message.clone() } else { i.to_string() })
        .collect::<Vec<_>>()
        .join("; ")
}

impl Registry {
    /// How long drains and stops may take from now (`shutdown_timeout_seconds`).
    pub(crate) fn deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_secs(self.config().shutdown_timeout_seconds)
    }

    /// The checks of `hydrant validate` for one stream, with the server's settings (object
    /// stores, functions). Paths start at the stream (`ExtendedS3DestinationConfiguration...`)
    /// or with `label` when one is given.
    pub fn validate_stream(&self, stream: &DeliveryStreamConfig, label: &str) -> Vec<Issue> {
        validate_stream(&self.config(), stream, label)
    }

    /// The stream `name`, if the API may change it.
    fn changeable(&self, name: &str) -> Result<Arc<DeliveryStream>, ControlError> {
        let stream =
            self.get(name).ok_or_else(|| ControlError::NotFound(self.not_found(name).message))?;
        if stream.owner == Owner::ConfigFile {
            return Err(ControlError::InUse(format!(
                "delivery stream {name} is defined in the config file (delivery_streams); change \
                 it there and reload Hydrant (SIGHUP) or restart it. Only streams created with \
                 CreateDeliveryStream can be changed through the API"
            )));
        }
        if stream.is_deleting() {
            return Err(ControlError::InUse(format!(
                "delivery stream {name} is being deleted; wait until DescribeDeliveryStream \
                 answers ResourceNotFoundException"
            )));
        }
        Ok(stream)
    }
}

/// What `api-streams/<name>.json` holds for `stream` now.
fn stored_of(stream: &DeliveryStream) -> persist::StoredStream {
    let definition = stream.definition();
    persist::StoredStream {
        format: 1,
        version: definition.version,
        created_at: stream.created_at,
        last_update: definition.last_update,
        deleting: stream.is_deleting(),
        config: (*definition.config).clone(),
    }
}

/// Refuses an API stream's configuration above the server's `limits:`; `current` is the
/// configuration it replaces, whose excesses may be kept or lowered (the ceilings may have
/// been lowered since it was accepted) but not raised: an excess is refused unless the
/// current configuration has the same field at least as high.
fn check_limits(
    limits: &LimitsConfig,
    config: &DeliveryStreamConfig,
    current: Option<&DeliveryStreamConfig>,
) -> Result<(), ControlError> {
    let kept = current.map(|c| limits.excesses(c)).unwrap_or_default();
    let is_kept =
        |e: &LimitExcess| kept.iter().any(|k| k.issue.path == e.issue.path && e.value <= k.value);
    let new: Vec<LimitExcess> =
        limits.excesses(config).into_iter().filter(|e| !is_kept(e)).collect();
    let message = |kind: LimitKind| {
        let issues: Vec<Issue> =
            new.iter().filter(|e| e.kind == kind).map(|e| e.issue.clone()).collect();
        (!issues.is_empty()).then(|| issues_message(&issues))
    };
    if let Some(message) = message(LimitKind::Count) {
        return Err(ControlError::LimitExceeded(message));
    }
    if let Some(message) = message(LimitKind::Value) {
        return Err(ControlError::Invalid(message));
    }
    Ok(())
}

/// [`Registry::validate_stream`] against a given server configuration. The stream is one of
/// the API's, so [`api_policy`] comes first: a stream it refuses is not checked further (the
/// checks of `hydrant validate` resolve and load what the stream names).
pub fn validate_stream(
    server: &crate::config::Config,
    stream: &DeliveryStreamConfig,
    label: &str,
) -> Vec<Issue> {
    let refused = api_policy::check(server, stream);
    if !refused.is_empty() {
        return refused
            .into_iter()
            .map(|i| {
                let path = if label.is_empty() { i.path } else { format!("{label}.{}", i.path) };
                Issue::new(path, i.message)
            })
            .collect();
    }
    let mut config = server.clone();
    config.delivery_streams = vec![stream.clone()];
    crate::config::validate(&config)
        .into_iter()
        .filter_map(|issue| {
            let rest = issue.path.strip_prefix("delivery_streams[0]")?;
            let path = if label.is_empty() {
                rest.trim_start_matches('.').to_string()
            } else {
                format!("{label}{rest}")
            };
            Some(Issue::new(path, issue.message))
        })
        .collect()
}
