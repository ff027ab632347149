//! Start/StopDeliveryStreamEncryption: encryption at rest of a stream's log.

use std::sync::Arc;

use super::ControlPlane;
use super::{now_secs, ControlError};
use crate::config::{DeliveryStreamConfig, LogKeyError, LogKeys, StreamEncryptionInput};
use crate::log::AtRestKeys;
use crate::registry::{Definition, DeliveryStream};

/// Makes `stream`'s log encrypt appended records at rest as `keys` say, from now on.
pub(super) async fn switch_log_encryption(
    stream: &DeliveryStream,
    keys: &LogKeys,
) -> Result<(), ControlError> {
    let keys = AtRestKeys { ring: keys.ring.clone().map(Arc::new), encrypt: keys.encrypt };
    stream
        .log
        .switch_encryption(keys)
        .await
        .map_err(super::internal("cannot switch the log's encryption"))
}

impl ControlPlane {
    /// Start/StopDeliveryStreamEncryption: from the next appended record on, the stream's log
    /// is encrypted at rest under the key `input` names (or no longer, with `None`). Records
    /// already in the log stay as they are and are read either way; the workers go on.
    pub async fn change_encryption(
        &self,
        name: &str,
        input: Option<StreamEncryptionInput>,
    ) -> Result<(), ControlError> {
        let _guard = self.lock.lock().await;
        let stream = self.changeable(name)?;
        let definition = stream.definition();
        let mut config = (*definition.config).clone();
        config.delivery_stream_encryption_configuration_input = input;
        let keys = self.log_keys(&config).await.map_err(ControlError::Keys)?;
        let definition = Definition {
            config: Arc::new(config),
            version: definition.version,
            last_update: Some(now_secs()),
            metric: definition.metric,
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
    pub(super) async fn log_keys(
        &self,
        config: &DeliveryStreamConfig,
    ) -> Result<LogKeys, LogKeyError> {
        let (server, config) = (self.config(), config.clone());
        tokio::task::spawn_blocking(move || {
            server.log_keys(&config, config.delivery_stream_encryption_configuration_input.as_ref())
        })
        .await
        .expect("key loading does not panic")
    }
}
