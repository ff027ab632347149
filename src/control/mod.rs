//! The control plane: creating, changing, tagging and deleting streams while Hydrant serves,
//! reloading the config file (SIGHUP) and stopping gracefully.
//!
//! Ownership: a stream defined in the config file belongs to the file. The API reads it
//! (Describe, List, ListTags) but changing it (Delete, UpdateDestination, Tag, Untag,
//! Start/StopDeliveryStreamEncryption) is refused with ResourceInUseException: edit the file
//! and reload. Streams created through the API live in `<data_dir>/api-streams/` and are
//! re-opened at every start ([`persist`]).
//!
//! Every change is serialised by [`ControlPlane`]'s lock. A change of a running stream's
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

mod create;
mod delete;
mod drain;
mod encryption;
mod follow;
pub mod merge;
pub mod persist;
pub mod reload;
pub mod shared;
mod startup;
mod store;
mod tags;
mod update;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::config::{
    Config, DeliveryStreamConfig, Issue, LimitExcess, LimitKind, LimitsConfig, LogKeyError,
};
use crate::names::DESTINATION_ID;
use crate::pipeline::Logs;
use crate::pipeline::{BuildContext, StartError};
use crate::plan::StreamPlan;
use crate::registry::{DeliveryStream, NotFound, Owner, Registry};
use crate::telemetry::Metrics;

pub use merge::{MergeError, UpdateKind};
pub use reload::ReloadError;
pub use shared::{KvDefinitions, SharedStoreError};
pub use startup::StartupError;
pub use store::{DefinitionStore, Expect, FileDefinitions, SharedChange, StoreError, WriteError};

/// The one handle through which streams are created, changed, tagged, deleted, reloaded and
/// stopped while Hydrant serves. It owns what opening a stream needs (the server settings, the
/// [`LogStore`] the streams' logs are in, the metrics) and adds streams to the [`Registry`], replaces
/// them in it and removes them from it; the API looks streams up in the registry directly.
pub struct ControlPlane {
    registry: Arc<Registry>,
    /// The streams of the API and the versions of the config file's streams.
    definitions: Arc<dyn DefinitionStore>,
    /// The server settings streams are opened with (object stores, functions, ...) and the
    /// config file's streams, as last applied.
    config: RwLock<Arc<Config>>,
    /// Where the streams' logs are.
    logs: Logs,
    metrics: Metrics,
    /// What building every stream's pipeline shares (the WebAssembly engine).
    build: BuildContext,
    /// Serialises changes: create, delete, update, tags, reload and shutdown.
    lock: tokio::sync::Mutex<()>,
    /// Fired at the shutdown deadline: every stop in progress abandons its uploads.
    abort: watch::Sender<bool>,
    /// Deletions and removals draining in the background.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Follows the changes other servers make, when the definitions are shared (`follow.rs`).
    follower: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl ControlPlane {
    /// A control plane over an empty `registry`, for the server settings of `config`; streams'
    /// logs are opened in `store`.
    fn new(
        registry: Arc<Registry>,
        config: &Config,
        logs: Logs,
        definitions: Arc<dyn DefinitionStore>,
        metrics: &Metrics,
        build: BuildContext,
    ) -> Self {
        Self {
            registry,
            definitions,
            config: RwLock::new(Arc::new(config.clone())),
            logs,
            metrics: metrics.clone(),
            build,
            lock: tokio::sync::Mutex::new(()),
            abort: watch::channel(false).0,
            tasks: Mutex::new(Vec::new()),
            follower: Mutex::new(None),
        }
    }

    /// The running streams this control plane changes.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// What streams' pipelines are built with (the WebAssembly engine): a replay builds one.
    pub(crate) fn build_context(&self) -> &BuildContext {
        &self.build
    }

    /// Where streams' logs live.
    pub fn log_store(&self) -> &Arc<dyn crate::log::LogStore> {
        &self.logs.store
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The server settings and config-file streams as last applied.
    pub fn config(&self) -> Arc<Config> {
        self.config.read().expect("not poisoned").clone()
    }

    fn set_config(&self, config: Config) {
        *self.config.write().expect("not poisoned") = Arc::new(config);
    }

    /// Stores a stream of the API (off the runtime) if what is stored is what `expect` says;
    /// `conflict` makes the error when another server changed it first (given the version
    /// stored now); `what` names the change for the log.
    async fn write_stored(
        &self,
        stored: persist::StoredStream,
        expect: Expect,
        conflict: impl FnOnce(Option<u64>) -> ControlError,
        what: &'static str,
    ) -> Result<(), ControlError> {
        let definitions = self.definitions.clone();
        let written = tokio::task::spawn_blocking(move || definitions.write(&stored, expect))
            .await
            .map_err(internal(what))?;
        match written {
            Ok(()) => Ok(()),
            Err(WriteError::Conflict { current }) => Err(conflict(current)),
            Err(e @ WriteError::Io(_)) => Err(internal(what)(e)),
        }
    }
}

/// Most tags a stream may have (Firehose).
pub const MAX_TAGS: usize = crate::plan::MAX_TAGS;

/// Why a control-plane call was refused, by meaning. Each names the stream or member and what
/// to do; `api/error.rs` turns them into Firehose's error types.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No stream of this name.
    #[error(transparent)]
    NotFound(#[from] NotFound),
    /// The stream belongs to the config file: the API may read it, not change it.
    #[error(
        "delivery stream {stream} is defined in the config file (delivery_streams); change it \
         there and reload Hydrant (SIGHUP) or restart it. Only streams created with \
         CreateDeliveryStream can be changed through the API"
    )]
    OwnedByConfigFile { stream: String },
    /// The stream is being deleted.
    #[error(
        "delivery stream {stream} is being deleted; wait until DescribeDeliveryStream answers \
         ResourceNotFoundException"
    )]
    Deleting { stream: String },
    /// CreateDeliveryStream of a name that is taken (by a stream that may be being deleted).
    #[error("Firehose {stream} under accountId {account} {}", exists_state(*.deleting))]
    Exists { stream: String, account: String, deleting: bool },
    /// `CurrentDeliveryStreamVersionId` is not the stream's version.
    #[error(
        "Cannot update firehose: {stream} since the current version id: {current} and \
         specified version id: {given} do not match; describe the stream for its VersionId and \
         try again"
    )]
    VersionMismatch { stream: String, current: u64, given: String },
    /// `DestinationId` is not the stream's one destination.
    #[error(
        "Destination Id {given} not found; a Hydrant stream has one destination, {DESTINATION_ID}"
    )]
    UnknownDestinationId { given: String },
    /// The configuration (or tags) does not pass the checks of `hydrant validate`, or is above
    /// a value ceiling of the server's `limits:`.
    #[error("{}", issues_message(.0))]
    Invalid(Vec<Issue>),
    /// An UpdateDestination that cannot be merged into the stream's configuration.
    #[error(transparent)]
    Merge(#[from] MergeError),
    /// Tagging would leave the stream with more than [`MAX_TAGS`] tags.
    #[error(
        "delivery stream {stream} would have {count} tags; a stream has at most {MAX_TAGS}: \
         remove some with UntagDeliveryStream first"
    )]
    TooManyTags { stream: String, count: usize },
    /// `limits.max_streams: 0`: the API may not create streams.
    #[error(
        "cannot create delivery stream {stream}: creating delivery streams through the API is \
         turned off on this server (limits.max_streams: 0); define the stream in the server's \
         config file, or have the operator raise limits.max_streams"
    )]
    ApiStreamsOff { stream: String },
    /// `limits.max_streams` streams of the API exist.
    #[error(
        "cannot create delivery stream {stream}: this server allows {max} delivery streams \
         created through the API (limits.max_streams) and has {count}; delete one first \
         (DeleteDeliveryStream), or have the operator raise limits.max_streams in the server's \
         config file"
    )]
    TooManyStreams { stream: String, max: u32, count: usize },
    /// The stream's shards would take the server over `limits.max_shards`.
    #[error(
        "hydrant.shards: delivery stream {stream} needs {shards} shards, but {in_use} of the {max} \
         shards this server allows in total (limits.max_shards) are in use; ask for at most {}, \
         delete a stream first, or have the operator raise limits.max_shards in the server's \
         config file",
        (*.max as usize).saturating_sub(*.in_use)
    )]
    TooManyShards { stream: String, shards: usize, in_use: usize, max: u32 },
    /// Counts above the server's `limits:`.
    #[error("{}", issues_message(.0))]
    OverLimits(Vec<Issue>),
    /// The keys of the stream's log at rest: the caller's `KeyType` / `KeyARN`, or the
    /// server's key files ([`LogKeyError::Load`], whose details are not the caller's).
    #[error(transparent)]
    Keys(LogKeyError),
    /// The new configuration cannot run: what the caller (or the config file) asked for.
    #[error(transparent)]
    NotStartable(StartError),
    /// A stream of the API cannot start because of the server's files; only the member is
    /// told (the cause, which may quote a file or name a path, is logged).
    #[error("{0}")]
    ServerFile(ServerFile),
    /// Starting failed inside Hydrant (its log, threads, version file).
    #[error(transparent)]
    StartFailed(StartError),
    /// The change could not be stored or carried out on the server (the detail is for the
    /// server's log).
    #[error("{what}: {detail}")]
    Internal { what: &'static str, detail: String },
}

fn exists_state(deleting: bool) -> &'static str {
    if deleting {
        "is being deleted; create it again once DescribeDeliveryStream answers \
         ResourceNotFoundException"
    } else {
        "already exists"
    }
}

/// A file of the server that a stream of the API needs and that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ServerFile {
    #[error(
        "LambdaArn {lambda_arn:?}: the WebAssembly module of this function cannot be loaded on \
         the server (the server log says why); ask the operator to fix its entry in functions:, \
         or name another function"
    )]
    Transform { lambda_arn: String },
    #[error(
        "the server's encryption keys cannot be loaded (the server log says why); ask the \
         operator to fix storage.encryption, or leave DeliveryStreamEncryptionConfigurationInput \
         out"
    )]
    Keys,
    #[error(
        "bucket {bucket:?} cannot be opened in the stream's object store (the server log says \
         why); check BucketARN, or ask the operator"
    )]
    Bucket { bucket: String },
}

/// The conflict of an [`Expect::Any`] write, which the store's contract rules out: should a
/// store report one anyway, the caller gets an internal error naming it, not a wrong answer.
fn unreachable_conflict() -> ControlError {
    ControlError::Internal {
        what: "storing the stream",
        detail: "the definition store reported a conflict for an unconditional write".into(),
    }
}

fn internal<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> ControlError {
    move |e| ControlError::Internal { what, detail: e.to_string() }
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
        let file = match &e {
            StartError::Transform { lambda_arn, .. } => {
                Some(ServerFile::Transform { lambda_arn: lambda_arn.clone() })
            }
            StartError::Keys { .. } => Some(ServerFile::Keys),
            StartError::Destination { bucket, .. } => {
                Some(ServerFile::Bucket { bucket: bucket.clone() })
            }
            _ => None,
        };
        if let Some(file) = file {
            tracing::warn!(error = %e, "a stream of the API could not start");
            return ControlError::ServerFile(file);
        }
    }
    match e {
        StartError::Log { .. } | StartError::Consume { .. } | StartError::Threads { .. } => {
            ControlError::StartFailed(e)
        }
        other => ControlError::NotStartable(other),
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

impl ControlPlane {
    /// How long drains and stops may take from now (`shutdown_timeout_seconds`).
    pub(crate) fn deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_secs(self.config().shutdown_timeout_seconds)
    }

    /// The checks of `hydrant validate` for one stream, with the server's settings (object
    /// stores, functions). Paths start at the stream (`ExtendedS3DestinationConfiguration...`)
    /// or with `label` when one is given.
    pub fn validate_stream(&self, stream: &DeliveryStreamConfig, label: &str) -> Vec<Issue> {
        crate::plan::check_stream(&self.config(), stream, label).err().unwrap_or_default()
    }

    /// [`ControlPlane::validate_stream`] for an API call, on a blocking thread (it compiles jq
    /// queries, on a thread it spawns and joins, and transforms, which must not hold up a
    /// runtime worker); the stream's plan when it is valid.
    async fn check_api_stream(
        &self,
        stream: &DeliveryStreamConfig,
    ) -> Result<StreamPlan, ControlError> {
        let server = self.config();
        let stream = stream.clone();
        tokio::task::spawn_blocking(move || crate::plan::check_stream(&server, &stream, ""))
            .await
            .map_err(internal("validating the stream failed"))?
            .map_err(ControlError::Invalid)
    }

    /// The stream `name`, if the API may change it.
    fn changeable(&self, name: &str) -> Result<Arc<DeliveryStream>, ControlError> {
        let stream = self.registry.get(name).ok_or_else(|| self.registry.not_found(name))?;
        if stream.owner == Owner::ConfigFile {
            return Err(ControlError::OwnedByConfigFile { stream: name.to_string() });
        }
        if stream.is_deleting() {
            return Err(ControlError::Deleting { stream: name.to_string() });
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
    let issues = |kind: LimitKind| -> Vec<Issue> {
        new.iter().filter(|e| e.kind == kind).map(|e| e.issue.clone()).collect()
    };
    let counts = issues(LimitKind::Count);
    if !counts.is_empty() {
        return Err(ControlError::OverLimits(counts));
    }
    let values = issues(LimitKind::Value);
    if !values.is_empty() {
        return Err(ControlError::Invalid(values));
    }
    Ok(())
}
