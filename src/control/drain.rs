//! Draining: a stream's workers deliver what they buffered before they stop (deletion,
//! removal, graceful shutdown).

use std::sync::Arc;

use super::ControlPlane;
use crate::delivery::StopMode;
use crate::log::ShardId;
use crate::registry::DeliveryStream;

impl ControlPlane {
    /// Stops `stream`'s workers in drain mode; returns how many records are still undelivered.
    pub(super) async fn drain(
        &self,
        stream: &DeliveryStream,
        deadline: tokio::time::Instant,
    ) -> u64 {
        let statuses = stream.worker_statuses();
        if let Some(workers) = stream.take_workers() {
            workers.stop(StopMode::Drain, deadline, self.abort.subscribe()).await;
        }
        undelivered(stream, &statuses)
    }

    /// Graceful stop: every stream drains (delivers what it buffered) until `deadline`; then
    /// uploads still in flight are abandoned. Records not delivered stay in the log.
    pub async fn shutdown(&self, deadline: tokio::time::Instant) {
        let _guard = tokio::time::timeout_at(deadline, self.lock.lock()).await.ok();
        // Between two changes (it applies them under the lock): no stream opens from now on.
        if let Some(follower) = self.follower.lock().expect("not poisoned").take() {
            follower.abort();
        }
        let streams = self.registry.all();
        let drains = streams.iter().map(|s| self.drain(s, deadline));
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock().expect("not poisoned"));
        let all = futures::future::join(futures::future::join_all(drains), async {
            for task in tasks {
                let _ = task.await;
            }
        });
        tokio::pin!(all);
        let (undelivered, ()) = tokio::select! {
            done = &mut all => done,
            _ = tokio::time::sleep_until(deadline) => {
                let _ = self.abort.send(true);
                all.await
            }
        };
        let _ = self.abort.send(true);
        for (stream, undelivered) in streams.iter().zip(undelivered) {
            if undelivered > 0 {
                tracing::warn!(stream = %stream.name, undelivered,
                    "records not delivered by shutdown_timeout_seconds stay in the log for the next start");
            } else {
                tracing::debug!(stream = %stream.name, "every record delivered");
            }
        }
    }

    /// Abandons every stop in progress at once (a second SIGTERM).
    pub fn abort(&self) {
        let _ = self.abort.send(true);
    }
}

/// Records appended but not delivered, by the workers' last checkpoints.
fn undelivered(
    stream: &DeliveryStream,
    statuses: &[(ShardId, Arc<crate::delivery::WorkerStatus>)],
) -> u64 {
    let shards = stream.shard_stats();
    (statuses.iter())
        .filter_map(|(id, status)| {
            let shard = shards.iter().find(|s| s.shard == *id)?;
            Some(shard.next_seq.saturating_sub(status.next_seq()))
        })
        .sum()
}
