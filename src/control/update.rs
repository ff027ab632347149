//! UpdateDestination, and running a stream with a new definition (also for reloads).

use std::sync::Arc;

use serde_json::Value;

use super::encryption::switch_log_encryption;
use super::{
    check_limits, internal, merge, now_secs, start_error, stored_of, ControlError, UpdateKind,
};
use super::{ControlPlane, Expect};
use crate::config::DeliveryStreamConfig;
use crate::delivery::StopMode;
use crate::log::ShardState;
use crate::names::DESTINATION_ID;
use crate::pipeline::{Pipeline, StartError};
use crate::plan::StreamPlan;
use crate::registry::{Definition, DeliveryStream, Owner};

/// Whether a change of a stream is this server's (stored, then applied) or one that another
/// server sharing the definitions stored, which this one follows (`follow.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Here,
    Shared,
}

impl ControlPlane {
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
        let _guard = self.lock.lock().await;
        let stream = self.changeable(name)?;
        let definition = stream.definition();
        if version_id != definition.version.to_string() {
            return Err(ControlError::VersionMismatch {
                stream: name.to_string(),
                current: definition.version,
                given: version_id.to_string(),
            });
        }
        if destination_id != DESTINATION_ID {
            return Err(ControlError::UnknownDestinationId { given: destination_id.to_string() });
        }
        let mut config =
            merge::merge(&definition.config, kind, update).map_err(ControlError::Merge)?;
        let plan = self.check_api_stream(&config).await?;
        config.normalize();
        check_limits(&self.config().limits, &config, Some(&definition.config))?;
        let version = definition.version + 1;
        self.replace(&stream, config, plan, version, Some(now_secs()), Source::Here).await?;
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
        match stream.owner {
            Owner::Api => {
                let mut stored = stored_of(stream);
                let current = stored.version;
                stored.version = definition.version;
                stored.last_update = definition.last_update;
                stored.config = (*definition.config).clone();
                // With a store other servers share, one of them may have changed it first.
                let changed = |stored: Option<u64>| ControlError::VersionMismatch {
                    stream: stream.name.clone(),
                    current: stored.unwrap_or(current),
                    given: current.to_string(),
                };
                let what = "cannot store the change";
                self.write_stored(stored, Expect::Version(current), changed, what).await
            }
            Owner::ConfigFile => {
                let what = "cannot store the stream's version";
                let definitions = self.definitions.clone();
                let (name, version, config) =
                    (stream.name.clone(), definition.version, definition.config.clone());
                tokio::task::spawn_blocking(move || {
                    definitions.store_file_stream_version(&name, version, &config)
                })
                .await
                .map_err(internal(what))?
                .map_err(internal(what))
            }
        }
    }

    /// Runs `stream` with `config` from now on: prepares the new pipeline from its checked
    /// `plan`, stores the change, stops the old workers (sealed objects are delivered) and
    /// starts new ones on the log.
    pub(crate) async fn replace(
        &self,
        stream: &Arc<DeliveryStream>,
        config: DeliveryStreamConfig,
        plan: StreamPlan,
        version: u64,
        last_update: Option<f64>,
        source: Source,
    ) -> Result<(), ControlError> {
        let open =
            stream.log.shards().iter().filter(|s| s.state == ShardState::Open).count() as u32;
        // A stream that reads a Kinesis stream has that stream's shards.
        let own_shards = config.kinesis_stream_source_configuration.is_none();
        if own_shards && open != config.hydrant.shards && !stream.log.capabilities().shards_can_end
        {
            return Err(ControlError::StartFailed(StartError::ShardCount {
                stream: stream.name.clone(),
                on_disk: open,
                configured: config.hydrant.shards,
            }));
        }
        let server = self.config();
        let pipeline = {
            let (server, config) = (server.clone(), config.clone());
            let (owner, build) = (stream.owner, self.build.clone());
            tokio::task::spawn_blocking(move || {
                Pipeline::prepare(&server, &config, &plan, owner, &build)
            })
            .await
            .map_err(internal("preparing the new pipeline failed"))?
            .map_err(|e| start_error(e, stream.owner))?
        };
        let keys = self.log_keys(&config).await.map_err(ControlError::Keys)?;
        let definition = Definition {
            metric: crate::destination::descriptor(config.destination().kind()).metric,
            config: Arc::new(config),
            version,
            last_update,
        };
        if source == Source::Here {
            self.store_definition(stream, &definition).await?;
        }
        switch_log_encryption(stream.as_ref(), &keys).await?;
        if let Some(old) = stream.take_workers() {
            if !old.stop(StopMode::Stop, self.deadline(), self.abort.subscribe()).await {
                tracing::warn!(stream = %stream.name,
                    "an upload was still in flight at shutdown_timeout_seconds and was abandoned; \
                     its records are delivered again by the new workers");
            }
        }
        let shards = definition.config.hydrant.shards;
        stream.set_definition(definition);
        let rescaled = match own_shards {
            true => crate::pipeline::rescale(stream.log.as_ref(), &stream.name, shards).await,
            false => Ok(()),
        };
        if let Err(e) = rescaled {
            tracing::error!(stream = %stream.name, error = %e,
                "cannot reshard the log; the delivery workers start on the shards it has");
        }
        let started = {
            let (stream, metrics) = (stream.clone(), self.metrics.clone());
            tokio::task::spawn_blocking(move || {
                pipeline.start(&stream.name, &stream.log, version, &metrics, None)
            })
            .await
            .map_err(internal("starting the delivery workers failed"))?
        };
        match started {
            Ok(workers) => {
                stream.put_workers(workers);
                Ok(())
            }
            Err(e) => {
                tracing::error!(stream = %stream.name, error = %e,
                    "cannot start the delivery workers; records are kept in the log and delivered after a restart");
                Err(ControlError::StartFailed(e))
            }
        }
    }
}
