//! Start-up: opening every stream of the config file and of `api-streams/`.

use std::sync::Arc;

use super::delete::Removal;
use super::persist::StoredStream;
use super::{issues_message, ControlPlane, DefinitionStore, StoreError};
use crate::config::Issue;
use crate::pipeline::Logs;
use crate::pipeline::{open_stream, BuildContext, Opening, StartError};
use crate::plan::{check_stream, ServerPlan};
use crate::registry::{DeliveryStream, Owner, Registry};
use crate::telemetry::Metrics;

/// Why Hydrant cannot start its streams. The streams of the API are the operator's to fix
/// here: each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Stream(#[from] StartError),
    #[error("delivery stream {stream}: cannot read or write its version file: {source}")]
    Version { stream: String, source: std::io::Error },
    /// `error` names the file; it is not returned as the source, so that a printed chain
    /// (`{:#}`) does not repeat it.
    #[error("{error}; {FIX_API_STREAM}")]
    ApiStreams { error: StoreError },
    #[error(
        "{path}: delivery stream {stream} was created through the API, and the config file now \
         defines a stream of the same name; rename or remove the one in the config file; \
         {FIX_API_STREAM}"
    )]
    NameTaken { path: String, stream: String },
    #[error("{path}: {}; {FIX_API_STREAM}", issues_message(.issues))]
    Invalid { path: String, issues: Vec<Issue> },
}

const FIX_API_STREAM: &str = "fix the stream (or remove the file to drop it, losing its \
                              undelivered records) and start again";

impl ControlPlane {
    /// Opens every stream of the config file (each from its plan in `server`) and every stream
    /// created through the API (kept in `definitions`), their logs in `store`, and starts
    /// their delivery workers. Blocking.
    pub fn open(
        server: &ServerPlan,
        logs: Logs,
        definitions: Arc<dyn DefinitionStore>,
        metrics: &Metrics,
        build: BuildContext,
    ) -> Result<Self, StartupError> {
        let config = server.config();
        let created_at = crate::clock::now_ms() as f64 / 1000.0;
        let registry = Arc::new(Registry::new(&config.account_id));
        let streams = Self::new(registry, config, logs, definitions, metrics, build);
        for (stream_config, plan) in server.streams() {
            let name = &stream_config.delivery_stream_name;
            let version = streams
                .definitions
                .file_stream_version(stream_config)
                .map_err(|source| StartupError::Version { stream: name.clone(), source })?;
            let opening = Opening {
                config,
                plan,
                build: &streams.build,
                stream: stream_config,
                owner: Owner::ConfigFile,
                version,
                created_at,
                last_update: None,
            };
            let stream = open_stream(opening, &streams.logs, metrics)?;
            streams.registry.insert(Arc::new(stream));
        }
        streams.open_api_streams()?;
        Ok(streams)
    }
}

impl ControlPlane {
    /// Streams whose deletion was accepted before a restart: finish it.
    pub fn resume_deletions(self: &Arc<Self>, names: Vec<String>) {
        for name in names {
            if let Some(stream) = self.registry.get(&name) {
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

    /// Opens the streams stored in `api-streams/` (at start, after the config file's).
    pub(crate) fn open_api_streams(&self) -> Result<(), StartupError> {
        let stored =
            self.definitions.read_all().map_err(|error| StartupError::ApiStreams { error })?;
        for (path, stored) in stored {
            let label = path.display().to_string();
            let name = stored.config.delivery_stream_name.clone();
            if self.registry.get(&name).is_some() {
                return Err(StartupError::NameTaken { path: label, stream: name });
            }
            let stream = self.open_stored(&label, &stored)?;
            self.registry.insert(Arc::new(stream));
        }
        Ok(())
    }

    /// Opens a stored stream of the API (kept at `label`) and starts its workers; one stored
    /// as being deleted is closed at once (the deletion is finished by `resume_deletions`).
    /// Blocking.
    pub(crate) fn open_stored(
        &self,
        label: &str,
        stored: &StoredStream,
    ) -> Result<DeliveryStream, StartupError> {
        let server = self.config();
        let name = &stored.config.delivery_stream_name;
        let plan = match check_stream(&server, &stored.config, "") {
            Ok(plan) => plan,
            Err(issues) => return Err(StartupError::Invalid { path: label.to_string(), issues }),
        };
        let mut config = stored.config.clone();
        config.normalize();
        for excess in server.limits.excesses(&config) {
            // Accepted under higher ceilings: it keeps running, changes may not raise it.
            tracing::warn!(stream = %name, limit = %excess.issue,
                "a stream created through the API is above the server's current limits");
        }
        let opening = Opening {
            config: &server,
            plan: &plan,
            build: &self.build,
            stream: &config,
            owner: Owner::Api,
            version: stored.version,
            created_at: stored.created_at,
            last_update: stored.last_update,
        };
        let stream = open_stream(opening, &self.logs, &self.metrics)?;
        if stored.deleting {
            stream.mark_deleting();
        }
        Ok(stream)
    }

    /// Streams whose deletion was accepted before the last stop.
    pub fn pending_deletions(&self) -> Vec<String> {
        self.registry
            .all()
            .into_iter()
            .filter(|s| s.is_deleting())
            .map(|s| s.name.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::persist;
    use crate::log::{DiskBudget, EmbeddedStore, LogOptions};

    #[test]
    fn an_unreadable_api_stream_file_stops_the_start_naming_the_file_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!("data_dir: {}\n", dir.path().display());
        let server = crate::plan::parse(&yaml, dir.path()).unwrap();
        let api_dir = persist::api_dir(dir.path());
        std::fs::create_dir_all(&api_dir).unwrap();
        std::fs::write(api_dir.join("broken.json"), "{ not json").unwrap();
        let build = BuildContext::for_tests();
        let store =
            Arc::new(EmbeddedStore::new(dir.path(), LogOptions::default(), DiskBudget::new(None)));
        let definitions = Arc::new(super::super::FileDefinitions::new(dir.path()));
        let logs = crate::pipeline::Logs { store, sources: None };
        let Err(e) = ControlPlane::open(&server, logs, definitions, &Metrics::global(), build)
        else {
            panic!("a broken api-streams file must stop the start");
        };
        assert!(matches!(e, StartupError::ApiStreams { error: StoreError::Parse { .. } }), "{e}");
        assert!(std::error::Error::source(&e).is_none(), "main prints the chain: no repeats");
        let message = e.to_string();
        assert!(message.contains("broken.json: not a Hydrant API stream file"), "{message}");
        assert!(
            message.ends_with(
                "remove the file to drop it, losing its undelivered records) and start again"
            ),
            "{message}"
        );
    }
}
