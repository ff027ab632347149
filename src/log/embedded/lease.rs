//! [`ShardLease`] on a shard directory: the consumer's checkpoint file and markers file. The
//! directory's `LOCK` fences other processes, so a lease is never lost. A commit may finish a
//! closed shard, which lets the log grant its children.

use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;

use super::consumer;
use super::shard::Shard;
use super::stream_log::LogShared;
use crate::log::{Cause, ConsumerState, LeaseError, Progress, ShardId, ShardLease};

/// One consumer's hold on one shard of an [`EmbeddedLog`](super::EmbeddedLog).
#[derive(Debug)]
pub(super) struct EmbeddedLease {
    id: ShardId,
    shard: Shard,
    consumer: String,
    log: Arc<LogShared>,
}

impl EmbeddedLease {
    /// `consumer` must be a valid consumer name (`checkpoint::validate_consumer`).
    pub(super) fn new(id: ShardId, shard: Shard, consumer: &str, log: Arc<LogShared>) -> Self {
        Self { id, shard, consumer: consumer.to_string(), log }
    }
}

#[async_trait]
impl ShardLease for EmbeddedLease {
    fn shard(&self) -> ShardId {
        self.id
    }

    fn consumer(&self) -> &str {
        &self.consumer
    }

    async fn state(&self) -> Result<ConsumerState, LeaseError> {
        let (shard, name, log) = (self.shard.clone(), self.consumer.clone(), self.log.clone());
        blocking(move || {
            let next_seq = shard.load_checkpoint(&name).map_err(unavailable)?;
            // Registering may finish a shard that ended where the consumer is (an empty
            // closed shard): its children may be granted now.
            log.grant();
            let markers = consumer::load(shard.dir(), &name).map_err(unavailable)?;
            Ok(ConsumerState { next_seq, markers })
        })
        .await
    }

    /// Markers first, then the checkpoint (whose store runs retention).
    async fn commit(&self, progress: Progress) -> Result<(), LeaseError> {
        let (shard, name, log) = (self.shard.clone(), self.consumer.clone(), self.log.clone());
        blocking(move || {
            if let Some(next_seq) = progress.next_seq {
                let (first, end) = (shard.first_seq(), shard.next_seq());
                if next_seq < first || next_seq > end {
                    return Err(LeaseError::OutOfRange { next_seq, first, end });
                }
            }
            if let Some(markers) = &progress.markers {
                consumer::store(shard.dir(), &name, markers).map_err(unavailable)?;
            }
            if let Some(next_seq) = progress.next_seq {
                shard.store_checkpoint(&name, next_seq).map_err(unavailable)?;
                log.grant();
            }
            Ok(())
        })
        .await
    }

    fn lost(&self) -> BoxFuture<'static, ()> {
        Box::pin(std::future::pending())
    }
}

fn unavailable(e: std::io::Error) -> LeaseError {
    LeaseError::Unavailable(Cause::new(e))
}

/// Runs file I/O off the runtime's threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LeaseError> + Send + 'static,
) -> Result<T, LeaseError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| LeaseError::Unavailable(Cause::new(e)))?
}
