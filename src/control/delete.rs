//! DeleteDeliveryStream, and removing a stream from the config file: close the stream to
//! puts, drain it in the background, then delete or keep its log.

use std::sync::Arc;

use super::{stored_of, ControlError};
use super::{unreachable_conflict, ControlPlane, Expect};
use crate::delivery::worker::{BACKUP_CONSUMER, CONSUMER};
use crate::registry::DeliveryStream;

/// What happens to a stream's log once it is drained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Removal {
    /// DeleteDeliveryStream: the log and the stream's file are deleted.
    Delete,
    /// Removed from the config file: the log is kept, so adding the stream back resumes it.
    Unconfigure,
    /// Another server sharing the definitions deleted it: stop here, and leave the log to
    /// the server that deletes it.
    Followed,
}

impl ControlPlane {
    /// DeleteDeliveryStream: refuses puts from now on (status DELETING), then in the
    /// background delivers what is buffered (up to `shutdown_timeout_seconds`) and deletes
    /// the stream's log and file.
    pub async fn delete(self: &Arc<Self>, name: &str) -> Result<(), ControlError> {
        let _guard = self.lock.lock().await;
        let stream = self.registry.get(name).ok_or_else(|| self.registry.not_found(name))?;
        if stream.is_deleting() {
            return Ok(()); // Firehose accepts a delete of a DELETING stream
        }
        let stream = self.changeable(name)?;
        let mut stored = stored_of(&stream);
        stored.deleting = true;
        self.write_stored(
            stored,
            Expect::Any,
            |_| unreachable_conflict(),
            "cannot record the deletion",
        )
        .await?;
        stream.close().await;
        tracing::info!(stream = %name, "delivery stream deleted through the API: delivering what it buffered, then removing it");
        self.spawn_removal(stream, Removal::Delete);
        Ok(())
    }

    pub(super) fn spawn_removal(self: &Arc<Self>, stream: Arc<DeliveryStream>, removal: Removal) {
        let this = self.clone();
        let handle = tokio::spawn(async move { this.finish_removal(stream, removal).await });
        let mut tasks = self.tasks.lock().expect("not poisoned");
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }

    /// Drains a closed stream, then deletes or keeps its log and drops it from the registry.
    pub(super) async fn finish_removal(
        self: Arc<Self>,
        stream: Arc<DeliveryStream>,
        removal: Removal,
    ) {
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
                Removal::Followed => "the node that deletes the stream deletes them with it",
            });
        }
        match removal {
            Removal::Delete => {
                if stream.definition().config.kinesis_stream_source_configuration.is_some() {
                    // It read a Kinesis stream's log: its checkpoints there must not hold the
                    // stream's records back any longer.
                    for consumer in [CONSUMER, BACKUP_CONSUMER] {
                        if let Err(e) = stream.log.forget(consumer).await {
                            tracing::warn!(stream = %name, consumer, error = %e,
                                "cannot remove the stream's checkpoints from the Kinesis stream it read");
                        }
                    }
                }
                stream.log.close().await;
                let deleted = match self.logs.store.delete(&name).await {
                    Ok(()) => {
                        let (definitions, name) = (self.definitions.clone(), name.clone());
                        tokio::task::spawn_blocking(move || definitions.remove(&name))
                            .await
                            .map_err(|e| e.to_string())
                            .and_then(|r| r.map_err(|e| e.to_string()))
                    }
                    Err(e) => Err(e.to_string()),
                };
                match deleted {
                    Ok(()) => {
                        self.registry.remove(&name);
                        // Dropping the stream joins the log's writer threads.
                        tokio::task::spawn_blocking(move || drop(stream));
                        tracing::info!(stream = %name, "delivery stream deleted");
                    }
                    Err(e) => tracing::error!(stream = %name, error = %e,
                        "cannot delete the stream's files; it stays DELETING and the next start retries"),
                }
            }
            Removal::Followed => {
                stream.log.close().await;
                self.registry.remove(&name);
                tokio::task::spawn_blocking(move || drop(stream));
                tracing::info!(stream = %name, "delivery stream deleted by another node: stopped here");
            }
            Removal::Unconfigure => {
                self.registry.remove(&name);
                tokio::task::spawn_blocking(move || drop(stream));
                tracing::info!(stream = %name, "delivery stream removed (its log is kept in the data directory)");
            }
        }
    }
}
