//! [`JetStreamLog`]: one stream's log on JetStream, one JetStream stream per shard. The stream
//! sequence is the shard position; records and seals are messages (`message.rs`); shards split
//! and merge (`topology.rs`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use async_trait::async_trait;

use super::at_rest::AtRest;
use super::node::Node;
use super::reader::JetStreamReader;
use super::store::JetStreamOptions;
pub(super) use super::topology::ShardHandle;
use super::topology::{fence_closed, LogEntry, Registry, Topology};
use crate::log::{
    Append, AppendError, Appended, Assignments, AtRestKeys, Capabilities, Cause, EncryptionError,
    LeaseError, ReadError, ReadFrom, Reshard, ReshardError, ShardId, ShardInfo, ShardProblem,
    ShardReader, ShardStats, StreamLog,
};

/// How often `stats()` and `problems()` are brought up to date.
const REFRESH_EVERY: Duration = Duration::from_secs(5);
/// How often a node looks for reshards other nodes made (it also looks at once when an append
/// meets a closed shard).
const RELOAD_EVERY: Duration = Duration::from_secs(1);
/// A shard is reported nearly full from this share of its `max_bytes` on.
const NEARLY_FULL: f64 = 0.95;

/// One stream's log on JetStream. Every node opens it on the same JetStream streams.
#[derive(Debug)]
pub struct JetStreamLog {
    shared: Arc<LogShared>,
    refresher: tokio::task::AbortHandle,
}

/// What the log's handle, readers and leases share.
#[derive(Debug)]
pub(super) struct LogShared {
    pub name: String,
    pub log_id: String,
    pub js: jetstream::Context,
    pub leases: kv::Store,
    /// The log's registry entry: its lineage.
    pub registry: Registry,
    pub topology: RwLock<Topology>,
    pub at_rest: AtRest,
    pub options: JetStreamOptions,
    pub closed: AtomicBool,
    /// This node's lease machinery.
    pub node: Arc<Node>,
    /// Set when the handle is closed or dropped: the node releases this log's leases.
    pub released: AtomicBool,
    /// Appends hold it shared; `close` takes it to wait for them.
    pub appending: tokio::sync::RwLock<()>,
    /// One reload of the registry entry at a time.
    reloading: tokio::sync::Mutex<()>,
}

/// The first retained position and one past the last, from a stream's state.
pub(super) fn bounds(state: &stream::State) -> (u64, u64) {
    let end = state.last_sequence + 1;
    let first = if state.messages == 0 { end } else { state.first_sequence.max(1) };
    (first, end)
}

impl LogShared {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: String,
        js: jetstream::Context,
        leases: kv::Store,
        registry: Registry,
        topology: Topology,
        at_rest: AtRest,
        options: JetStreamOptions,
        node: Arc<Node>,
    ) -> Self {
        Self {
            log_id: registry.log_id.clone(),
            name,
            js,
            leases,
            registry,
            topology: RwLock::new(topology),
            at_rest,
            options,
            closed: AtomicBool::new(false),
            node,
            released: AtomicBool::new(false),
            appending: tokio::sync::RwLock::new(()),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    pub fn is_released(&self) -> bool {
        self.released.load(Ordering::Acquire)
    }

    pub fn topology(&self) -> std::sync::RwLockReadGuard<'_, Topology> {
        self.topology.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn handle(&self, shard: ShardId) -> Option<Arc<ShardHandle>> {
        self.topology().handle(shard).cloned()
    }

    pub fn handles(&self) -> Vec<Arc<ShardHandle>> {
        self.topology().handles.clone()
    }

    /// The shards a closed `shard` was split or merged into.
    pub fn children(&self, shard: ShardId) -> Vec<ShardId> {
        self.topology().lineage.children(shard)
    }

    /// Reads the registry entry again and follows a reshard stored there (by this node or
    /// another), then learns the end of every closed shard whose end it does not know yet,
    /// fencing its stream if nobody did.
    pub async fn reload(&self) -> Result<(), Cause> {
        let Some((revision, entry)) = self.registry.entry().await? else {
            return Ok(()); // Deleted: its handle is closed soon.
        };
        self.follow(revision, &entry).await
    }

    /// Follows `entry`, read at `revision` (unless this node knows a later one).
    pub async fn follow(&self, revision: u64, entry: &LogEntry) -> Result<(), Cause> {
        let _one = self.reloading.lock().await;
        if revision > self.topology().revision {
            let known = self.handles();
            let topology = self.registry.topology(revision, entry, &known).await?;
            let mut current = self.topology.write().unwrap_or_else(|e| e.into_inner());
            if topology.revision > current.revision {
                *current = topology;
            }
        }
        let unfenced: Vec<Arc<ShardHandle>> = self
            .handles()
            .into_iter()
            .filter(|h| h.is_closed() && h.known_end().is_none())
            .collect();
        for handle in unfenced {
            let end = fence_closed(&self.js, &handle).await?;
            tracing::info!(stream = %self.name, shard = handle.id.0, end, "shard closed");
        }
        Ok(())
    }
}

impl JetStreamLog {
    pub(super) fn new(shared: LogShared) -> Self {
        let shared = Arc::new(shared);
        let refresher = tokio::spawn(refresh(Arc::downgrade(&shared))).abort_handle();
        Self { shared, refresher }
    }
}

impl Drop for JetStreamLog {
    fn drop(&mut self) {
        self.refresher.abort();
        // The node releases this log's leases at its next round.
        self.shared.released.store(true, Ordering::Release);
    }
}

/// Follows the registry entry every [`RELOAD_EVERY`] and brings every shard's cached state up
/// to date every [`REFRESH_EVERY`], until the log is dropped.
async fn refresh(shared: Weak<LogShared>) {
    let mut last_refresh = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(RELOAD_EVERY).await;
        let Some(shared) = shared.upgrade() else { return };
        if let Err(e) = shared.reload().await {
            tracing::debug!(stream = %shared.name, error = %e,
                "cannot follow the shards of a jetstream log now");
        }
        if last_refresh.elapsed() < REFRESH_EVERY {
            continue;
        }
        last_refresh = tokio::time::Instant::now();
        for shard in shared.handles() {
            if let Err(e) = shard.bounds().await {
                tracing::debug!(stream = %shared.name, shard = shard.id.0, error = %e,
                    "cannot refresh the state of a jetstream shard");
            }
        }
    }
}

#[async_trait]
impl StreamLog for JetStreamLog {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            durable_seals: true,
            // A node's clock: other nodes' records may arrive earlier.
            watermark_is_a_bound: false,
            // Nodes take leases from nodes that stopped renewing them, or hold more than their
            // share.
            leases_can_be_lost: true,
            // Split and merged (`topology.rs`).
            shards_can_end: true,
            // Arrival times are the publishing nodes' clocks.
            monotonic_arrivals: false,
            shared_open: true,
            atomic_encryption_switch: false,
        }
    }

    fn shards(&self) -> Vec<ShardInfo> {
        self.shared.topology().shards()
    }

    /// Publishes every record at once (one round trip for the call), each with a message id
    /// of its own that retries reuse, so a retried publish is stored once.
    async fn append(&self, records: Vec<Append>) -> Vec<Result<Appended, AppendError>> {
        super::append::append(&self.shared, records).await
    }

    async fn reader(
        &self,
        shard: ShardId,
        from: ReadFrom,
    ) -> Result<Box<dyn ShardReader>, ReadError> {
        let reader = JetStreamReader::start(self.shared.clone(), shard, from).await?;
        Ok(Box::new(reader))
    }

    /// The shards this node wins (`node.rs`): spread over the nodes that consume the log, each
    /// granted again when it was lost and won back.
    fn assignments(&self, consumer: &str) -> Result<Assignments, LeaseError> {
        crate::log::embedded::checkpoint::validate_consumer(consumer)
            .map_err(|_| LeaseError::InvalidConsumer(consumer.to_string()))?;
        Ok(self.shared.node.assignments(&self.shared, consumer))
    }

    async fn switch_encryption(&self, keys: AtRestKeys) -> Result<(), EncryptionError> {
        self.shared.at_rest.switch(&keys).await
    }

    /// Removes `consumer`'s record of every shard (a reader that will never come back): the
    /// purge no longer waits for it, and a consumer of that name starts over.
    async fn forget(&self, consumer: &str) -> Result<(), LeaseError> {
        self.shared.node.forget(&self.shared.log_id, consumer);
        for shard in self.shared.handles() {
            let key = super::lease::lease_key(&self.shared.log_id, shard.id, consumer);
            self.shared.leases.purge(&key).await.map_err(|e| {
                LeaseError::Unavailable(super::errors::cause("forgetting a consumer in NATS", e))
            })?;
        }
        Ok(())
    }

    /// Stores the new lineage (`topology.rs`), then seals the closed shards' streams and
    /// routes to the children.
    async fn reshard(&self, change: Reshard) -> Result<Vec<ShardId>, ReshardError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(ReshardError::Unavailable(super::errors::cause(
                "reshard",
                "the log is closed",
            )));
        }
        let (children, revision, entry) = match self.shared.registry.commit(change).await {
            Ok(committed) => committed,
            Err(e) => {
                // A refusal may come from a lineage this node did not follow yet.
                let _ = self.shared.reload().await;
                return Err(e);
            }
        };
        tracing::info!(stream = %self.shared.name, ?change, ?children, revision, "resharded");
        // Stored: whatever fails now, every node finishes it when it meets the closed shards.
        // What it stored, not a read that a replica behind may answer.
        if let Err(e) = self.shared.follow(revision, &entry).await {
            tracing::warn!(stream = %self.shared.name, error = %e,
                "resharded, but cannot seal the closed shards now: the next look does");
        }
        Ok(children)
    }

    fn stats(&self) -> Vec<ShardStats> {
        (self.shared.handles().iter())
            .map(|shard| {
                let (last, bytes, _) = *shard.cached.lock().unwrap_or_else(|e| e.into_inner());
                let last = last.max(shard.acked_end.load(Ordering::Acquire));
                ShardStats { shard: shard.id, next_seq: last + 1, bytes }
            })
            .collect()
    }

    fn lease_holders(&self) -> Vec<crate::log::LeaseHolder> {
        self.shared.node.lease_holders(&self.shared.log_id)
    }

    fn problems(&self) -> Vec<ShardProblem> {
        let mut problems = Vec::new();
        let connection = self.shared.js.client().connection_state();
        if connection != async_nats::connection::State::Connected {
            // Appends wait for the connection until their deadline, then answer 503: the
            // node cannot take records (every shard's appends go through this connection).
            return (self.shared.handles().iter())
                .map(|shard| ShardProblem {
                    shard: shard.id,
                    reason: format!(
                        "this node has no connection to the NATS servers ({connection}): \
                         appends are refused until it reconnects (check core.servers and the \
                         NATS cluster)"
                    ),
                })
                .collect();
        }
        for shard in self.shared.handles() {
            let (_, bytes, max_bytes) = *shard.cached.lock().unwrap_or_else(|e| e.into_inner());
            if shard.full.load(Ordering::Acquire) {
                problems.push(ShardProblem {
                    shard: shard.id,
                    reason: format!(
                        "its JetStream stream {} is full (max_bytes {max_bytes}): appends are \
                         refused until delivery frees space",
                        shard.stream.cached_info().config.name
                    ),
                });
            } else if max_bytes > 0 && bytes as f64 >= NEARLY_FULL * max_bytes as f64 {
                problems.push(ShardProblem {
                    shard: shard.id,
                    reason: format!(
                        "its JetStream stream {} holds {bytes} of its {max_bytes} bytes",
                        shard.stream.cached_info().config.name
                    ),
                });
            }
        }
        problems
    }

    /// Every acknowledged record is already stored by a quorum of replicas: closing waits
    /// for the appends in flight, refuses later ones, and releases this node's leases on the
    /// log, so other nodes take them at their next round instead of waiting for them to
    /// expire.
    async fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        let _no_appends = self.shared.appending.write().await;
        self.refresher.abort();
        self.shared.released.store(true, Ordering::Release);
        self.shared.node.release_log(&self.shared.log_id).await;
    }
}
