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
//! [`StopMode::Stop`] (what is sealed is delivered, nothing new is cut) and starts new ones on
//! the same log with the new version, so the next objects carry it in their names. Deleting
//! or removing a stream closes it to puts, drains it ([`StopMode::Drain`]) and then deletes
//! its log (API delete) or keeps it (removal from the file, so re-adding resumes it).

pub mod api_policy;
pub mod merge;
pub mod persist;
pub mod reload;
mod startup;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::api::{ApiError, ErrorType};
use crate::config::{
    check_tags, DeliveryStreamConfig, Issue, LimitExcess, LimitKind, LimitsConfig, LogKeyError,
    LogKeys, StreamEncryptionInput, Tag,
};
use crate::delivery::StopMode;
use crate::names::DESTINATION_ID;
use crate::pipeline::{open_stream, Opening, Pipeline, StartError};
use crate::registry::{Definition, DeliveryStream, Owner, Registry};

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

/// Makes `stream`'s log encrypt appended records at rest as `keys` say, from now on.
async fn switch_log_encryption(
    stream: &DeliveryStream,
    keys: &LogKeys,
) -> Result<(), ControlError> {
    stream
        .log
        .switch_encryption(keys.ring.as_ref(), keys.encrypt)
        .await
        .map_err(|e| ControlError::Internal(format!("cannot switch the log's encryption: {e}")))
}

/// What happens to a stream's log once it is drained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Removal {
    /// DeleteDeliveryStream: the log and the stream's file are deleted.
    Delete,
    /// Removed from the config file: the log is kept, so adding the stream back resumes it.
    Unconfigure,
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

    /// CreateDeliveryStream: validates `config` as `hydrant validate` would, opens the stream,
    /// stores it in `api-streams/` and returns its ARN. The stream is ACTIVE (its workers run)
    /// when this returns.
    pub async fn create(
        self: &Arc<Self>,
        config: DeliveryStreamConfig,
    ) -> Result<String, ControlError> {
        let _guard = self.control.lock().await;
        let name = config.delivery_stream_name.clone();
        if let Some(existing) = self.get(&name) {
            return Err(ControlError::InUse(if existing.is_deleting() {
                format!(
                    "Firehose {name} under accountId {} is being deleted; create it again once \
                     DescribeDeliveryStream answers ResourceNotFoundException",
                    self.account_id()
                )
            } else {
                format!("Firehose {name} under accountId {} already exists", self.account_id())
            }));
        }
        let server = self.config();
        let limits = server.limits;
        let api_streams = self.all().iter().filter(|s| s.owner == Owner::Api).count();
        if limits.max_streams == 0 {
            return Err(ControlError::LimitExceeded(format!(
                "cannot create delivery stream {name}: creating delivery streams through the API \
                 is turned off on this server (limits.max_streams: 0); define the stream in the \
                 server's config file, or have the operator raise limits.max_streams"
            )));
        }
        if api_streams >= limits.max_streams as usize {
            return Err(ControlError::LimitExceeded(format!(
                "cannot create delivery stream {name}: this server allows {} delivery streams \
                 created through the API (limits.max_streams) and has {api_streams}; delete one \
                 first (DeleteDeliveryStream), or have the operator raise limits.max_streams in \
                 the server's config file",
                limits.max_streams
            )));
        }
        let issues = self.validate_stream(&config, "");
        if !issues.is_empty() {
            return Err(ControlError::Invalid(issues_message(&issues)));
        }
        let mut config = config;
        limits.apply_to_defaults(&mut config.hydrant);
        config.normalize();
        check_limits(&limits, &config, None)?;
        let in_use: usize = self.all().iter().map(|s| s.log.shards().len()).sum();
        let shards = config.hydrant.shards as usize;
        if in_use + shards > limits.max_shards as usize {
            return Err(ControlError::LimitExceeded(format!(
                "hydrant.shards: delivery stream {name} needs {shards} shards, but {in_use} of the \
                 {} shards this server allows in total (limits.max_shards) are in use; ask for at \
                 most {}, delete a stream first, or have the operator raise limits.max_shards in \
                 the server's config file",
                limits.max_shards,
                (limits.max_shards as usize).saturating_sub(in_use)
            )));
        }
        let dir = persist::stream_dir_migrated(&server.data_dir, &name).map_err(|e| {
            // The detail names server paths: for the log, not the caller.
            tracing::error!(stream = %name, error = %e, "cannot prepare the stream's log directory");
            ControlError::Internal(format!(
                "cannot prepare the log directory of delivery stream {name}; the server's log says why"
            ))
        })?;
        let existed = dir.exists();
        let created_at = now_secs();
        let this = self.clone();
        let opened = {
            let config = config.clone();
            let server = server.clone();
            tokio::task::spawn_blocking(move || {
                let opening = Opening {
                    config: &server,
                    stream: &config,
                    owner: Owner::Api,
                    version: 1,
                    created_at,
                    last_update: None,
                };
                open_stream(opening, &this.options, &this.budget, &this.metrics)
            })
            .await
            .map_err(|e| ControlError::Internal(e.to_string()))?
        };
        let stream = match opened {
            Ok(stream) => Arc::new(stream),
            Err(e) => {
                if !existed {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                return Err(start_error(e, Owner::Api));
            }
        };
        let stored = persist::StoredStream {
            format: 1,
            version: 1,
            created_at,
            last_update: None,
            deleting: false,
            config,
        };
        let data_dir = server.data_dir.clone();
        let written =
            tokio::task::spawn_blocking(move || persist::write_stored(&data_dir, &stored)).await;
        if let Err(e) =
            written.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string()))
        {
            if let Some(workers) = stream.take_workers() {
                workers
                    .stop(StopMode::Stop, tokio::time::Instant::now(), self.abort.subscribe())
                    .await;
            }
            return Err(ControlError::Internal(format!(
                "cannot store delivery stream {name} in {}: {e}",
                persist::api_dir(&server.data_dir).display()
            )));
        }
        let arn = stream.arn.clone();
        self.insert(stream);
        tracing::info!(stream = %name, "delivery stream created through the API");
        Ok(arn)
    }

    /// DeleteDeliveryStream: refuses puts from now on (status DELETING), then in the
    /// background delivers what is buffered (up to `shutdown_timeout_seconds`) and deletes
    /// the stream's log and file.
    pub async fn delete(self: &Arc<Self>, name: &str) -> Result<(), ControlError> {
        let _guard = self.control.lock().await;
        let stream =
            self.get(name).ok_or_else(|| ControlError::NotFound(self.not_found(name).message))?;
        if stream.is_deleting() {
            return Ok(()); // Firehose accepts a delete of a DELETING stream
        }
        let stream = self.changeable(name)?;
        let mut stored = stored_of(&stream);
        stored.deleting = true;
        let data_dir = self.config().data_dir.clone();
        tokio::task::spawn_blocking(move || persist::write_stored(&data_dir, &stored))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map_err(internal("cannot record the deletion"))?;
        stream.close().await;
        tracing::info!(stream = %name, "delivery stream deleted through the API: delivering what it buffered, then removing it");
        self.spawn_removal(stream, Removal::Delete);
        Ok(())
    }

    /// Streams whose deletion was accepted before a restart: finish it.
    pub fn resume_deletions(self: &Arc<Self>, names: Vec<String>) {
        for name in names {
            if let Some(stream) = self.get(&name) {
                let this = self.clone();
                let handle = tokio::spawn(async move {
                    stream.close().await;
                    tracing::info!(stream = %stream.name, "finishing a deletion accepted before the restart");
                    this.finish_removal(stream, Removal::Delete).await;
                });
                self.tasks.lock().expect("not poisoned").push(handle);
            }
        }
    }

    fn spawn_removal(self: &Arc<Self>, stream: Arc<DeliveryStream>, removal: Removal) {
        let this = self.clone();
        let handle = tokio::spawn(async move { this.finish_removal(stream, removal).await });
        let mut tasks = self.tasks.lock().expect("not poisoned");
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }

    /// Drains a closed stream, then deletes or keeps its log and drops it from the registry.
    async fn finish_removal(self: Arc<Self>, stream: Arc<DeliveryStream>, removal: Removal) {
        let name = stream.name.clone();
        let undelivered = self.drain(&stream, self.deadline()).await;
        if *self.abort.borrow() {
            // Shutting down: the next start resumes (a deletion is recorded in its file).
            return;
        }
        if undelivered > 0 {
            tracing::warn!(stream = %name, undelivered,
            "records were not delivered within shutdown_timeout_seconds; {}",
            match removal {
                Removal::Delete => "they are deleted with the stream",
                Removal::Unconfigure => "they stay in the stream's log and are delivered if it is added back",
            });
        }
        let data_dir = self.config().data_dir.clone();
        match removal {
            Removal::Delete => {
                let trash = {
                    let (data_dir, name) = (data_dir.clone(), name.clone());
                    tokio::task::spawn_blocking(move || {
                        let trash = persist::trash_log(&data_dir, &name)?;
                        persist::remove_stored(&data_dir, &name)?;
                        Ok::<_, std::io::Error>(trash)
                    })
                    .await
                };
                match trash {
                    Ok(Ok(trash)) => {
                        self.remove(&name);
                        tokio::task::spawn_blocking(move || {
                            drop(stream); // closes the log (joins its writer threads)
                            if let Some(trash) = trash {
                                if let Err(e) = std::fs::remove_dir_all(&trash) {
                                    tracing::warn!(path = %trash.display(), error = %e,
                                        "cannot remove the log of a deleted stream; it is removed at the next start");
                                }
                            }
                        });
                        tracing::info!(stream = %name, "delivery stream deleted");
                    }
                    Ok(Err(e)) => tracing::error!(stream = %name, error = %e,
                        "cannot delete the stream's files; it stays DELETING and the next start retries"),
                    Err(e) => {
                        tracing::error!(stream = %name, error = %e, "deleting the stream failed")
                    }
                }
            }
            Removal::Unconfigure => {
                self.remove(&name);
                tokio::task::spawn_blocking(move || drop(stream));
                tracing::info!(stream = %name, "delivery stream removed (its log is kept in the data directory)");
            }
        }
    }

    /// Stops `stream`'s workers in drain mode; returns how many records are still undelivered.
    async fn drain(&self, stream: &DeliveryStream, deadline: tokio::time::Instant) -> u64 {
        let statuses = stream.worker_statuses();
        if let Some(workers) = stream.take_workers() {
            workers.stop(StopMode::Drain, deadline, self.abort.subscribe()).await;
        }
        undelivered(stream, &statuses)
    }

    /// UpdateDestination: merges the update into the stream's configuration (FIREHOSE.md
    /// 1.11), validates it, stores it with the next version and restarts the workers.
    pub async fn update_destination(
        &self,
        name: &str,
        version_id: &str,
        destination_id: &str,
        kind: UpdateKind,
        update: &Value,
    ) -> Result<(), ControlError> {
        let _guard = self.control.lock().await;
        let stream = self.changeable(name)?;
        let definition = stream.definition();
        if version_id != definition.version.to_string() {
            return Err(ControlError::VersionMismatch(format!(
                "Cannot update firehose: {name} since the current version id: {} and specified \
                 version id: {version_id} do not match; describe the stream for its VersionId and \
                 try again",
                definition.version
            )));
        }
        if destination_id != DESTINATION_ID {
            return Err(ControlError::Invalid(format!(
                "Destination Id {destination_id} not found; a Hydrant stream has one destination, \
                 {DESTINATION_ID}"
            )));
        }
        let mut config =
            merge::merge(&definition.config, kind, update).map_err(ControlError::Invalid)?;
        let issues = self.validate_stream(&config, "");
        if !issues.is_empty() {
            return Err(ControlError::Invalid(issues_message(&issues)));
        }
        config.normalize();
        check_limits(&self.config().limits, &config, Some(&definition.config))?;
        let version = definition.version + 1;
        self.replace(&stream, config, version, Some(now_secs())).await?;
        tracing::info!(stream = %name, version, "delivery stream destination updated through the API");
        Ok(())
    }

    /// Stores `stream`'s new definition: the whole stream for API streams (`api-streams/`),
    /// the version for config-file streams.
    async fn store_definition(
        &self,
        stream: &DeliveryStream,
        definition: &Definition,
    ) -> Result<(), ControlError> {
        let server = self.config();
        match stream.owner {
            Owner::Api => {
                let mut stored = stored_of(stream);
                stored.version = definition.version;
                stored.last_update = definition.last_update;
                stored.config = (*definition.config).clone();
                let data_dir = server.data_dir.clone();
                tokio::task::spawn_blocking(move || persist::write_stored(&data_dir, &stored))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()))
                    .map_err(internal("cannot store the change"))
            }
            Owner::ConfigFile => {
                let dir = persist::stream_dir(&server.data_dir, &stream.name);
                let (version, config) = (definition.version, definition.config.clone());
                tokio::task::spawn_blocking(move || {
                    persist::store_file_stream_version(&dir, version, &config)
                })
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
                .map_err(internal("cannot store the stream's version"))
            }
        }
    }

    /// Runs `stream` with `config` from now on: prepares the new pipeline, stores the change,
    /// stops the old workers (sealed objects are delivered) and starts new ones on the log.
    pub(crate) async fn replace(
        &self,
        stream: &Arc<DeliveryStream>,
        config: DeliveryStreamConfig,
        version: u64,
        last_update: Option<f64>,
    ) -> Result<(), ControlError> {
        let server = self.config();
        let pipeline = {
            let (server, config) = (server.clone(), config.clone());
            let owner = stream.owner;
            tokio::task::spawn_blocking(move || Pipeline::prepare(&server, &config, owner))
                .await
                .map_err(|e| ControlError::Internal(e.to_string()))?
                .map_err(|e| start_error(e, stream.owner))?
        };
        let keys = self.log_keys(&config).await.map_err(key_error)?;
        let definition = Definition { config: Arc::new(config), version, last_update };
        self.store_definition(stream, &definition).await?;
        switch_log_encryption(stream.as_ref(), &keys).await?;
        if let Some(old) = stream.take_workers() {
            if !old.stop(StopMode::Stop, self.deadline(), self.abort.subscribe()).await {
                tracing::warn!(stream = %stream.name,
                    "an upload was still in flight at shutdown_timeout_seconds and was abandoned; \
                     its records are delivered again by the new workers");
            }
        }
        stream.set_definition(definition);
        let started = {
            let (stream, metrics) = (stream.clone(), self.metrics.clone());
            tokio::task::spawn_blocking(move || {
                pipeline.start(&stream.name, &stream.log, version, &metrics)
            })
            .await
            .map_err(|e| ControlError::Internal(e.to_string()))?
        };
        match started {
            Ok(workers) => {
                stream.put_workers(workers);
                Ok(())
            }
            Err(e) => {
                tracing::error!(stream = %stream.name, error = %e,
                    "cannot start the delivery workers; records are kept in the log and delivered after a restart");
                Err(ControlError::Internal(e.to_string()))
            }
        }
    }

    /// TagDeliveryStream: adds tags or changes their values.
    pub async fn tag(&self, name: &str, tags: Vec<Tag>) -> Result<(), ControlError> {
        let _guard = self.control.lock().await;
        let mut issues = Vec::new();
        check_tags(&tags, "", &mut issues);
        if !issues.is_empty() {
            return Err(ControlError::Invalid(issues_message(&strip_dots(issues))));
        }
        let stream = self.changeable(name)?;
        let mut config = (*stream.config()).clone();
        for tag in tags {
            match config.tags.iter_mut().find(|t| t.key == tag.key) {
                Some(existing) => existing.value = tag.value,
                None => config.tags.push(tag),
            }
        }
        if config.tags.len() > MAX_TAGS {
            return Err(ControlError::LimitExceeded(format!(
                "delivery stream {name} would have {} tags; a stream has at most {MAX_TAGS}: \
                 remove some with UntagDeliveryStream first",
                config.tags.len()
            )));
        }
        self.retag(&stream, config).await
    }

    /// UntagDeliveryStream: removes tags (keys it does not have are ignored).
    pub async fn untag(&self, name: &str, keys: &[String]) -> Result<(), ControlError> {
        let _guard = self.control.lock().await;
        let stream = self.changeable(name)?;
        let mut config = (*stream.config()).clone();
        config.tags.retain(|t| !keys.contains(&t.key));
        self.retag(&stream, config).await
    }

    async fn retag(
        &self,
        stream: &DeliveryStream,
        config: DeliveryStreamConfig,
    ) -> Result<(), ControlError> {
        let mut definition = stream.definition();
        definition.config = Arc::new(config);
        let mut stored = stored_of(stream);
        stored.config = (*definition.config).clone();
        let data_dir = self.config().data_dir.clone();
        tokio::task::spawn_blocking(move || persist::write_stored(&data_dir, &stored))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map_err(internal("cannot store the tags"))?;
        stream.set_definition(definition);
        Ok(())
    }

    /// ListTagsForDeliveryStream: tags in the order they were added, after
    /// `exclusive_start` (a key), at most `limit`; and whether there are more.
    pub fn list_tags(
        &self,
        name: &str,
        exclusive_start: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Tag>, bool), ControlError> {
        let stream =
            self.get(name).ok_or_else(|| ControlError::NotFound(self.not_found(name).message))?;
        let tags = stream.config().tags.clone();
        let start = exclusive_start
            .and_then(|key| tags.iter().position(|t| t.key == key))
            .map_or(0, |i| i + 1);
        let rest = &tags[start.min(tags.len())..];
        let page = rest.iter().take(limit).cloned().collect();
        Ok((page, rest.len() > limit))
    }

    /// Start/StopDeliveryStreamEncryption: from the next appended record on, the stream's log
    /// is encrypted at rest under the key `input` names (or no longer, with `None`). Records
    /// already in the log stay as they are and are read either way; the workers go on.
    pub async fn change_encryption(
        &self,
        name: &str,
        input: Option<StreamEncryptionInput>,
    ) -> Result<(), ControlError> {
        let _guard = self.control.lock().await;
        let stream = self.changeable(name)?;
        let definition = stream.definition();
        let mut config = (*definition.config).clone();
        config.delivery_stream_encryption_configuration_input = input;
        let keys = self.log_keys(&config).await.map_err(key_error)?;
        let definition = Definition {
            config: Arc::new(config),
            version: definition.version,
            last_update: Some(now_secs()),
        };
        self.store_definition(&stream, &definition).await?;
        switch_log_encryption(stream.as_ref(), &keys).await?;
        stream.set_definition(definition);
        tracing::info!(stream = %name, encrypted = keys.encrypt,
            key = keys.ring.as_ref().filter(|_| keys.encrypt).map(|r| r.active_id()).unwrap_or("-"),
            "encryption at rest of the delivery stream's log switched through the API");
        Ok(())
    }

    /// The keys of `config`'s log at rest (loading key files, so off the runtime).
    async fn log_keys(&self, config: &DeliveryStreamConfig) -> Result<LogKeys, LogKeyError> {
        let (server, config) = (self.config(), config.clone());
        tokio::task::spawn_blocking(move || {
            server.log_keys(&config, config.delivery_stream_encryption_configuration_input.as_ref())
        })
        .await
        .expect("key loading does not panic")
    }

    /// Graceful stop: every stream drains (delivers what it buffered) until `deadline`; then
    /// uploads still in flight are abandoned. Records not delivered stay in the log.
    pub async fn shutdown(&self, deadline: tokio::time::Instant) {
        let _guard = tokio::time::timeout_at(deadline, self.control.lock()).await.ok();
        let streams = self.all();
        let drains = streams.iter().map(|s| self.drain(s, deadline));
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock().expect("not poisoned"));
        let all = futures::future::join(futures::future::join_all(drains), async {
            for task in tasks {
                let _ = task.await;
            }
        });
        tokio::pin!(all);
        let (undelivered, ()) = tokio::select! {
            done = &mut all => done,
            _ = tokio::time::sleep_until(deadline) => {
                let _ = self.abort.send(true);
                all.await
            }
        };
        let _ = self.abort.send(true);
        for (stream, undelivered) in streams.iter().zip(undelivered) {
            if undelivered > 0 {
                tracing::warn!(stream = %stream.name, undelivered,
                    "records not delivered by shutdown_timeout_seconds stay in the log for the next start");
            } else {
                tracing::debug!(stream = %stream.name, "every record delivered");
            }
        }
    }

    /// Abandons every stop in progress at once (a second SIGTERM).
    pub fn abort(&self) {
        let _ = self.abort.send(true);
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
/// configuration it replaces, whose excesses are kept (the ceilings may have been lowered
/// since it was accepted; only what the change raises is refused).
fn check_limits(
    limits: &LimitsConfig,
    config: &DeliveryStreamConfig,
    current: Option<&DeliveryStreamConfig>,
) -> Result<(), ControlError> {
    let kept: Vec<String> = current
        .map(|c| limits.excesses(c))
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.issue.path)
        .collect();
    let new: Vec<LimitExcess> =
        limits.excesses(config).into_iter().filter(|e| !kept.contains(&e.issue.path)).collect();
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

/// Records appended but not delivered, by the workers' last checkpoints.
fn undelivered(stream: &DeliveryStream, statuses: &[Arc<crate::delivery::WorkerStatus>]) -> u64 {
    stream
        .log
        .shards()
        .iter()
        .zip(statuses)
        .map(|(shard, status)| shard.next_seq().saturating_sub(status.next_seq()))
        .sum()
}

fn strip_dots(issues: Vec<Issue>) -> Vec<Issue> {
    issues
        .into_iter()
        .map(|i| Issue::new(i.path.trim_start_matches('.').to_string(), i.message))
        .collect()
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

impl Registry {
    /// Opens the streams stored in `api-streams/` (at start, after the config file's).
    pub(crate) fn open_api_streams(&self) -> Result<(), StartError> {
        let server = self.config();
        let stored = persist::read_all(&server.data_dir).map_err(|(path, message)| {
            StartError::ApiStream { path: path.display().to_string(), message }
        })?;
        for (path, stored) in stored {
            let label = path.display().to_string();
            let name = stored.config.delivery_stream_name.clone();
            if self.get(&name).is_some() {
                return Err(StartError::ApiStream {
                    path: label,
                    message: format!(
                        "delivery stream {name} was created through the API, and the config file \
                         now defines a stream of the same name; rename or remove the one in the \
                         config file"
                    ),
                });
            }
            let issues = validate_stream(&server, &stored.config, "");
            if !issues.is_empty() {
                return Err(StartError::ApiStream {
                    path: label,
                    message: issues_message(&issues),
                });
            }
            let mut config = stored.config.clone();
            config.normalize();
            for excess in server.limits.excesses(&config) {
                // Accepted under higher ceilings: it keeps running, changes may not raise it.
                tracing::warn!(stream = %name, limit = %excess.issue,
                    "a stream created through the API is above the server's current limits");
            }
            let opening = Opening {
                config: &server,
                stream: &config,
                owner: Owner::Api,
                version: stored.version,
                created_at: stored.created_at,
                last_update: stored.last_update,
            };
            let stream = open_stream(opening, &self.options, &self.budget, &self.metrics)?;
            if stored.deleting {
                // Closed at once; the server finishes the deletion (resume_deletions).
                stream.mark_deleting();
            }
            self.insert(Arc::new(stream));
        }
        Ok(())
    }

    /// Streams whose deletion was accepted before the last stop.
    pub fn pending_deletions(&self) -> Vec<String> {
        self.all().into_iter().filter(|s| s.is_deleting()).map(|s| s.name.clone()).collect()
    }
}
