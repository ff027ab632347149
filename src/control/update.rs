//! UpdateDestination, and running a stream with a new definition (also for reloads).

use std::sync::Arc;

use serde_json::Value;

use super::encryption::switch_log_encryption;
use super::{
    check_limits, internal, issues_message, key_error, merge, now_secs, persist, start_error,
    stored_of, ControlError, UpdateKind,
};
use crate::config::DeliveryStreamConfig;
use crate::delivery::StopMode;
use crate::names::DESTINATION_ID;
use crate::pipeline::Pipeline;
use crate::registry::{Definition, DeliveryStream, Owner, Registry};

impl Registry {
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
    pub(super) async fn store_definition(
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
        let definition = Definition {
            metric: crate::destination::descriptor(config.destination().kind()).metric,
            config: Arc::new(config),
            version,
            last_update,
        };
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
                pipeline.start(&stream.name, &stream.log, version, &metrics, None)
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
}
