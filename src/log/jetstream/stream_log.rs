//! [`JetStreamLog`]: one stream's log on JetStream, one JetStream stream per shard. The stream
//! sequence is the shard position; records and seals are messages (`message.rs`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use async_trait::async_trait;

use super::at_rest::AtRest;
use super::node::Node;
use super::reader::JetStreamReader;
use super::store::JetStreamOptions;
use crate::log::{
    Append, AppendError, Appended, Assignments, AtRestKeys, Capabilities, EncryptionError,
    LeaseError, ReadError, ReadFrom, Reshard, ReshardError, Route, ShardId, ShardInfo,
    ShardProblem, ShardReader, ShardStats, StreamLog,
};

/// How often `stats()` and `problems()` are brought up to date.
const REFRESH_EVERY: Duration = Duration::from_secs(5);
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
    pub shards: Vec<ShardHandle>,
    pub at_rest: AtRest,
    pub options: JetStreamOptions,
    pub closed: AtomicBool,
    /// This node's lease machinery.
    pub node: Arc<Node>,
    /// Set when the handle is closed or dropped: the node releases this log's leases.
    pub released: AtomicBool,
    /// Appends hold it shared; `close` takes it to wait for them.
    pub appending: tokio::sync::RwLock<()>,
}

/// One shard's stream, and what this node knows of it.
#[derive(Debug)]
pub(super) struct ShardHandle {
    pub id: ShardId,
    pub subject: String,
    pub stream: stream::Stream,
    /// The highest position this node saw acknowledged (records and seals).
    pub acked_end: AtomicU64,
    /// Whether the last append was refused because the stream is full.
    pub full: AtomicBool,
    /// From the last refresh: the last position, bytes held and the `max_bytes` limit.
    pub cached: Mutex<(u64, u64, i64)>,
}

/// The first retained position and one past the last, from a stream's state.
pub(super) fn bounds(state: &stream::State) -> (u64, u64) {
    let end = state.last_sequence + 1;
    let first = if state.messages == 0 { end } else { state.first_sequence.max(1) };
    (first, end)
}

impl LogShared {
    pub fn is_released(&self) -> bool {
        self.released.load(Ordering::Acquire)
    }
}

impl ShardHandle {
    /// The shard's retained range, asked of the stream's leader now.
    pub async fn bounds(&self) -> Result<(u64, u64), stream::InfoError> {
        let info = self.stream.get_info().await?;
        self.remember(&info.state, info.config.max_bytes);
        Ok(bounds(&info.state))
    }

    fn remember(&self, state: &stream::State, max_bytes: i64) {
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) =
            (state.last_sequence, state.bytes, max_bytes);
        self.acked_end.fetch_max(state.last_sequence, Ordering::AcqRel);
    }
}

impl JetStreamLog {
    pub(super) fn new(shared: LogShared) -> Self {
        let shared = Arc::new(shared);
        let refresher = tokio::spawn(refresh(Arc::downgrade(&shared))).abort_handle();
        Self { shared, refresher }
    }

    fn shard_of(&self, route: Route) -> usize {
        let n = self.shared.shards.len();
        let key = match route {
            Route::Implicit if n == 1 => return 0,
            Route::Implicit => rand::random::<u128>(),
            Route::HashKey(key) => key,
        };
        (((key >> 64) * n as u128) >> 64) as usize
    }
}

impl Drop for JetStreamLog {
    fn drop(&mut self) {
        self.refresher.abort();
        // The node releases this log's leases at its next round.
        self.shared.released.store(true, Ordering::Release);
    }
}

/// Brings every shard's cached state up to date, until the log is dropped.
async fn refresh(shared: Weak<LogShared>) {
    loop {
        tokio::time::sleep(REFRESH_EVERY).await;
        let Some(shared) = shared.upgrade() else { return };
        for shard in &shared.shards {
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
            shards_can_end: false,
            // Arrival times are the publishing nodes' clocks.
            monotonic_arrivals: false,
            shared_open: true,
            atomic_encryption_switch: false,
        }
    }

    fn shards(&self) -> Vec<ShardInfo> {
        ShardInfo::fixed(self.shared.shards.len() as u32)
    }

    /// Publishes every record at once (one round trip for the call), each with a message id
    /// of its own that retries reuse, so a retried publish is stored once.
    async fn append(&self, records: Vec<Append>) -> Vec<Result<Appended, AppendError>> {
        let routed = records.into_iter().map(|r| (self.shard_of(r.route), r.data)).collect();
        super::append::append(&self.shared, routed).await
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

    /// Not yet: nothing in cluster mode reads another stream's log (the Kinesis API is not
    /// served there), so no consumer needs forgetting.
    async fn forget(&self, consumer: &str) -> Result<(), LeaseError> {
        Err(LeaseError::Unavailable(crate::log::Cause::new(std::io::Error::other(format!(
            "forgetting consumer {consumer} is not supported by the JetStream log yet"
        )))))
    }

    /// Not yet: the shards of a JetStream log are fixed (docs/kinesis.md).
    async fn reshard(&self, _change: Reshard) -> Result<Vec<ShardId>, ReshardError> {
        Err(ReshardError::Unsupported)
    }

    fn stats(&self) -> Vec<ShardStats> {
        (self.shared.shards.iter())
            .map(|shard| {
                let (last, bytes, _) = *shard.cached.lock().unwrap_or_else(|e| e.into_inner());
                let last = last.max(shard.acked_end.load(Ordering::Acquire));
                ShardStats { shard: shard.id, next_seq: last + 1, bytes }
            })
            .collect()
    }

    fn problems(&self) -> Vec<ShardProblem> {
        let mut problems = Vec::new();
        let connection = self.shared.js.client().connection_state();
        if connection != async_nats::connection::State::Connected {
            // Appends wait for the connection until their deadline, then answer 503: the
            // node cannot take records (every shard's appends go through this connection).
            return (self.shared.shards.iter())
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
        for shard in &self.shared.shards {
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
