//! CreateDeliveryStream.

use std::sync::Arc;

use super::{check_limits, internal, now_secs, persist, start_error, ControlError};
use super::{ControlPlane, Expect};
use crate::config::DeliveryStreamConfig;
use crate::delivery::StopMode;
use crate::pipeline::{open_stream, Opening};
use crate::registry::Owner;

impl ControlPlane {
    /// CreateDeliveryStream: validates `config` as `hydrant validate` would, opens the stream,
    /// stores it in `api-streams/` and returns its ARN. The stream is ACTIVE (its workers run)
    /// when this returns.
    pub async fn create(
        self: &Arc<Self>,
        config: DeliveryStreamConfig,
    ) -> Result<String, ControlError> {
        let _guard = self.lock.lock().await;
        let name = config.delivery_stream_name.clone();
        if let Some(existing) = self.registry.get(&name) {
            return Err(ControlError::Exists {
                stream: name,
                account: self.registry.account_id().to_string(),
                deleting: existing.is_deleting(),
            });
        }
        let server = self.config();
        let limits = server.limits;
        let api_streams = self.registry.all().iter().filter(|s| s.owner == Owner::Api).count();
        if limits.max_streams == 0 {
            return Err(ControlError::ApiStreamsOff { stream: name });
        }
        if api_streams >= limits.max_streams as usize {
            return Err(ControlError::TooManyStreams {
                stream: name,
                max: limits.max_streams,
                count: api_streams,
            });
        }
        let plan = self.check_api_stream(&config).await?;
        let mut config = config;
        limits.apply_to_defaults(&mut config.hydrant);
        config.normalize();
        check_limits(&limits, &config, None)?;
        let in_use: usize = self.registry.all().iter().map(|s| s.shard_stats().len()).sum();
        let shards = config.hydrant.shards as usize;
        if in_use + shards > limits.max_shards as usize {
            return Err(ControlError::TooManyShards {
                stream: name,
                shards,
                in_use,
                max: limits.max_shards,
            });
        }
        let created_at = now_secs();
        let this = self.clone();
        let opened = {
            let config = config.clone();
            let server = server.clone();
            tokio::task::spawn_blocking(move || {
                let opening = Opening {
                    config: &server,
                    plan: &plan,
                    build: &this.build,
                    stream: &config,
                    owner: Owner::Api,
                    version: 1,
                    created_at,
                    last_update: None,
                };
                open_stream(opening, &this.logs, &this.metrics)
            })
            .await
            .map_err(internal("opening the stream failed"))?
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
        let account = self.registry.account_id().to_string();
        let exists = |_| ControlError::Exists { stream: name.clone(), account, deleting: false };
        let what = "cannot store the new delivery stream";
        // With a store other servers share, one of them may have created the name first.
        if let Err(e) = self.write_stored(stored, Expect::Absent, exists, what).await {
            if let Some(workers) = stream.take_workers() {
                workers
                    .stop(StopMode::Stop, tokio::time::Instant::now(), self.abort.subscribe())
                    .await;
            }
            return Err(e);
        }
        let arn = stream.arn.clone();
        self.registry.insert(stream);
        tracing::info!(stream = %name, "delivery stream created through the API");
        Ok(arn)
    }
}
