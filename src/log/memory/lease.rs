//! [`ShardLease`] on a [`MemoryLog`](super::MemoryLog)'s shard: fenced by an epoch that every
//! take-over bumps.

use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use tokio::sync::watch;

use super::{Backing, LogState};
use crate::log::{ConsumerState, LeaseError, Progress, ShardId, ShardLease};

/// One consumer's hold on one shard of a [`MemoryLog`](super::MemoryLog).
#[derive(Debug)]
pub(super) struct MemoryLease {
    pub(super) backing: Arc<Backing>,
    pub(super) shard: ShardId,
    pub(super) consumer: String,
    pub(super) epoch: u64,
    pub(super) lost: watch::Receiver<u64>,
}

impl MemoryLease {
    fn held(&self, state: &LogState) -> Result<(), LeaseError> {
        let key = (self.shard, self.consumer.clone());
        let epoch = state.consumers.get(&key).map_or(0, |c| c.epoch);
        if epoch == self.epoch {
            Ok(())
        } else {
            Err(LeaseError::Lost { shard: self.shard, consumer: self.consumer.clone() })
        }
    }
}

#[async_trait]
impl ShardLease for MemoryLease {
    fn shard(&self) -> ShardId {
        self.shard
    }

    fn consumer(&self) -> &str {
        &self.consumer
    }

    async fn state(&self) -> Result<ConsumerState, LeaseError> {
        let mut state = self.backing.lock();
        self.held(&state)?;
        let first = state.shard(self.shard).map_or(0, |s| s.first_retained);
        let consumer = state.consumer(self.shard, &self.consumer);
        let stored = consumer
            .state
            .get_or_insert_with(|| ConsumerState { next_seq: first, markers: Default::default() })
            .clone();
        // Registering at the end of an empty closed shard finishes it.
        state.grant(&self.backing, &self.consumer);
        Ok(stored)
    }

    async fn commit(&self, progress: Progress) -> Result<(), LeaseError> {
        let mut state = self.backing.lock();
        self.held(&state)?;
        let shard = state.shard(self.shard).expect("leases are on shards of the log");
        let (first, end) = (shard.first_retained, shard.next_seq);
        if let Some(next_seq) = progress.next_seq.filter(|n| *n < first || *n > end) {
            return Err(LeaseError::OutOfRange { next_seq, first, end });
        }
        let consumer = state.consumer(self.shard, &self.consumer);
        let stored = consumer
            .state
            .get_or_insert_with(|| ConsumerState { next_seq: first, markers: Default::default() });
        if let Some(markers) = progress.markers {
            stored.markers = markers;
        }
        if let Some(next_seq) = progress.next_seq {
            stored.next_seq = next_seq;
        }
        state.retain(self.shard);
        state.grant(&self.backing, &self.consumer);
        drop(state);
        self.backing.changed();
        Ok(())
    }

    fn lost(&self) -> BoxFuture<'static, ()> {
        let mut lost = self.lost.clone();
        let epoch = self.epoch;
        Box::pin(async move {
            if lost.wait_for(|current| *current != epoch).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}
