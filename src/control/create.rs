//! CreateDeliveryStream.

use std::sync::Arc;

use super::{check_limits, issues_message, now_secs, persist, start_error, ControlError};
use crate::config::DeliveryStreamConfig;
use crate::delivery::StopMode;
use crate::pipeline::{open_stream, Opening};
use crate::registry::{Owner, Registry};

impl Registry {
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
        let in_use: usize = self.all().iter().map(|s| s.shard_stats().len()).sum();
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
                open_stream(opening, this.store.as_ref(), &this.metrics)
            })
            .await
            .map_err(|e| ControlError::Internal(e.to_string()))?
        };
        // A log that failed to open left nothing behind (the store's contract).
        let stream = Arc::new(opened.map_err(|e| start_error(e, Owner::Api))?);
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
}
