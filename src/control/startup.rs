//! Start-up: opening every stream of the config file and of `api-streams/`.

use std::sync::Arc;

use super::delete::Removal;
use super::{issues_message, persist, validate_stream};
use crate::config::Config;
use crate::log::LogStore;
use crate::pipeline::{open_stream, Opening, StartError};
use crate::registry::{Owner, Registry};
use crate::telemetry::Metrics;

impl Registry {
    /// Opens every stream of the config file and every stream created through the API (kept
    /// in `<data_dir>/api-streams/`), their logs in `store`, and starts their delivery workers.
    /// Blocking.
    pub fn open(
        config: &Config,
        store: Arc<dyn LogStore>,
        metrics: &Metrics,
    ) -> Result<Self, StartError> {
        let created_at = crate::clock::now_ms() as f64 / 1000.0;
        let streams = Self::new(config, store, metrics);
        for stream_config in &config.delivery_streams {
            let name = &stream_config.delivery_stream_name;
            let version = persist::stream_dir_migrated(&config.data_dir, name)
                .and_then(|dir| persist::file_stream_version(&dir, stream_config))
                .map_err(|source| StartError::Version { stream: name.clone(), source })?;
            let opening = Opening {
                config,
                stream: stream_config,
                owner: Owner::ConfigFile,
                version,
                created_at,
                last_update: None,
            };
            let stream = open_stream(opening, streams.store.as_ref(), metrics)?;
            streams.insert(Arc::new(stream));
        }
        streams.open_api_streams()?;
        Ok(streams)
    }
}

impl Registry {
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
            let stream = open_stream(opening, self.store.as_ref(), &self.metrics)?;
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
