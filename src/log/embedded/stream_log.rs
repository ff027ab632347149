//! A stream's log on the local disk: shards, each owning a range of the 128-bit MD5 hash-key
//! space, Kinesis-style; the [`StreamLog`] implementation. A new log has N equal shards; splits
//! and merges ([`StreamLog::reshard`]) close shards and open children, and the lineage is kept
//! in `shards.json` ([`topology`]).
//!
//! Firehose's Direct PUT has no partition key, so each record gets an implicit one (a
//! per-process nonce plus a counter): MD5 of it spreads records evenly, and the records of one
//! request land on several shards, each in request order. Ordering holds within a shard.
//!
//! Encryption at rest lives here in both directions: appends seal records ([`ShardAtRest`]) and
//! this log's readers open them, so nothing above the log sees a sealed record.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use async_trait::async_trait;
use bytes::Bytes;
use md5::{Digest, Md5};
use tokio::sync::mpsc;

use super::at_rest::{AtRestError, ShardAtRest};
use super::budget::DiskBudget;
use super::lease::EmbeddedLease;
use super::reader::EmbeddedReader;
use super::shard::{lock, Shard};
use super::{consumer, error as embedded, layout, topology, LogOptions};
use crate::codec::encryption::KeyRing;
use crate::log::{
    Append, AppendError, Appended, Assignments, AtRestKeys, Capabilities, Cause, EncryptionError,
    LeaseError, Lineage, OpenError, ReadError, ReadFrom, Reshard, ReshardError, Route, ShardEnd,
    ShardId, ShardInfo, ShardLease, ShardProblem, ShardReader, ShardState, ShardStats, StreamLog,
};

/// The shards of one stream.
#[derive(Debug)]
pub struct EmbeddedLog {
    dir: PathBuf,
    options: LogOptions,
    budget: Arc<DiskBudget>,
    shared: Arc<LogShared>,
    /// Appends hold it shared; a switch of encryption and a reshard hold it exclusively, so
    /// that each takes effect at an exact position of every shard.
    switching: tokio::sync::RwLock<()>,
    nonce: u64,
    counter: AtomicU64,
}

/// What the log and its leases share: the shards, and the consumers waiting for grants.
#[derive(Debug)]
pub(super) struct LogShared {
    topology: RwLock<Topology>,
    grants: Mutex<Vec<Grant>>,
}

#[derive(Debug)]
struct Topology {
    lineage: Lineage,
    /// By shard id.
    shards: Vec<ShardLog>,
    /// What new shards encrypt with.
    keys: Option<Arc<KeyRing>>,
    encrypt: bool,
}

/// One shard's log, its encryption at rest, and its end once it closes.
#[derive(Debug, Clone)]
struct ShardLog {
    shard: Shard,
    at_rest: Arc<ShardAtRest>,
    fate: Arc<ShardFate>,
}

/// Whether a shard is closing or closed; its readers look here.
#[derive(Debug, Default)]
pub(super) struct ShardFate {
    /// Set before its writer stops: a seal refused then is not an error, the end follows.
    pub(super) closing: AtomicBool,
    /// Set once it is closed (its writer stopped, the lineage stored).
    pub(super) end: OnceLock<ShardEnd>,
}

/// A consumer's assignments: where to send leases, and which shards it got.
#[derive(Debug)]
struct Grant {
    consumer: String,
    to: mpsc::UnboundedSender<Arc<dyn ShardLease>>,
    granted: BTreeSet<ShardId>,
}

fn read_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write_lock<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl LogShared {
    /// Grants every consumer each shard it was not granted yet whose parents it finished
    /// (committed up to their ends). Called when shards or checkpoints change.
    pub(super) fn grant(self: &Arc<Self>) {
        let topology = read_lock(&self.topology);
        let mut grants = lock(&self.grants);
        grants.retain_mut(|grant| {
            for info in topology.lineage.shards() {
                if grant.granted.contains(&info.id) || !topology.parents_done(info, &grant.consumer)
                {
                    continue;
                }
                let shard = topology.shards[info.id.0 as usize].shard.clone();
                let lease = EmbeddedLease::new(info.id, shard, &grant.consumer, self.clone());
                if grant.to.send(Arc::new(lease)).is_err() {
                    return false; // The consumer dropped its assignments.
                }
                grant.granted.insert(info.id);
            }
            true
        });
    }
}

impl Topology {
    fn get(&self, id: ShardId) -> Option<&ShardLog> {
        self.shards.get(id.0 as usize)
    }

    /// Whether `consumer` committed every parent of `info` up to its end.
    fn parents_done(&self, info: &ShardInfo, consumer: &str) -> bool {
        [info.parent, info.adjacent_parent].into_iter().flatten().all(|parent| {
            match self.lineage.get(parent).map(|p| p.state) {
                Some(ShardState::Closed { end }) => (self.get(parent))
                    .and_then(|p| p.shard.checkpoint(consumer))
                    .is_some_and(|next_seq| next_seq >= end),
                _ => true,
            }
        })
    }
}

impl EmbeddedLog {
    /// Opens (recovering) `count` shards under `dir` (`dir/shard-0000`, ...). Blocking.
    pub fn open(
        dir: &Path,
        count: u32,
        options: &LogOptions,
        budget: &Arc<DiskBudget>,
    ) -> Result<Self, OpenError> {
        Self::open_encrypted(dir, count, options, budget, None, false)
    }

    /// Like [`open`](Self::open), with encryption at rest: `keys` open records sealed
    /// earlier, and with `encrypt` new records are sealed under their active key. A log that
    /// resharded opens the shards its `shards.json` lists, whatever `count` is. Consumers'
    /// markers at or past a shard's recovered end are lowered below it
    /// ([`consumer::lower_to_end`]) before anything is appended or read.
    pub fn open_encrypted(
        dir: &Path,
        count: u32,
        options: &LogOptions,
        budget: &Arc<DiskBudget>,
        keys: Option<&KeyRing>,
        encrypt: bool,
    ) -> Result<Self, OpenError> {
        let unavailable = |source| {
            let path = dir.to_path_buf();
            OpenError::Unavailable(Cause::new(embedded::OpenError::Io { path, source }))
        };
        let stored = topology::load(dir, |_| 0).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => OpenError::Damaged(Cause::new(e)),
            _ => unavailable(e),
        })?;
        let mut lineage = stored.unwrap_or_else(|| Lineage::fixed(count));
        let mut shards = Vec::with_capacity(lineage.shards().len());
        for info in lineage.shards().to_vec() {
            let shard_dir = layout::shard_dir(dir, info.id.0);
            let shard =
                Shard::open(&shard_dir, options.clone(), budget.clone()).map_err(open_error)?;
            let at_rest = ShardAtRest::open(shard.dir(), keys, encrypt, shard.next_seq())
                .map(Arc::new)
                .map_err(|e| match e {
                    AtRestError::Io { .. } => OpenError::Unavailable(Cause::new(e)),
                    e => OpenError::Keys(Cause::new(e)),
                })?;
            consumer::lower_to_end(shard.dir(), shard.next_seq()).map_err(unavailable)?;
            let fate = Arc::new(ShardFate::default());
            if info.state != ShardState::Open {
                // Closed before: nothing more is written to it, not even a seal.
                futures::executor::block_on(shard.close());
                fate.closing.store(true, Ordering::Release);
            }
            shards.push(ShardLog { shard, at_rest, fate });
        }
        let ends: BTreeMap<ShardId, u64> = (lineage.shards().iter())
            .filter(|s| s.state != ShardState::Open)
            .map(|s| (s.id, shards[s.id.0 as usize].shard.next_seq()))
            .collect();
        if !ends.is_empty() {
            lineage = topology::load(dir, |id| ends.get(&id).copied().unwrap_or(0))
                .map_err(unavailable)?
                .expect("loaded above");
            for (id, end) in &ends {
                let children = lineage.children(*id);
                let _ = shards[id.0 as usize].fate.end.set(ShardEnd { position: *end, children });
            }
        }
        let topology =
            Topology { lineage, shards, keys: keys.map(|k| Arc::new(k.clone())), encrypt };
        Ok(Self {
            dir: dir.to_path_buf(),
            options: options.clone(),
            budget: budget.clone(),
            shared: Arc::new(LogShared {
                topology: RwLock::new(topology),
                grants: Mutex::default(),
            }),
            switching: tokio::sync::RwLock::new(()),
            nonce: rand::random(),
            counter: AtomicU64::new(0),
        })
    }

    /// Shard `i`'s handle (the embedded log's own tests and tools).
    pub fn shard(&self, i: u32) -> Shard {
        read_lock(&self.shared.topology).shards[i as usize].shard.clone()
    }

    /// Whether records appended now are encrypted at rest.
    pub fn is_encrypted(&self) -> bool {
        read_lock(&self.shared.topology).encrypt
    }

    /// Which open shard owns a 128-bit hash key.
    pub fn shard_for_hash_key(&self, hash_key: u128) -> ShardId {
        read_lock(&self.shared.topology).lineage.route(hash_key)
    }

    fn implicit_hash_key(&self) -> u128 {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut md5 = Md5::new();
        md5.update(self.nonce.to_le_bytes());
        md5.update(n.to_le_bytes());
        u128::from_be_bytes(md5.finalize().into())
    }

    fn route(&self, lineage: &Lineage, route: Route) -> ShardId {
        match route {
            Route::Implicit => lineage.route(self.implicit_hash_key()),
            Route::HashKey(key) => lineage.route(key),
        }
    }

    fn get(&self, shard: ShardId) -> Result<ShardLog, ReadError> {
        read_lock(&self.shared.topology).get(shard).cloned().ok_or(ReadError::UnknownShard(shard))
    }

    #[cfg(test)]
    fn at_rest(&self, i: usize) -> Arc<ShardAtRest> {
        read_lock(&self.shared.topology).shards[i].at_rest.clone()
    }
}

/// Opens the new, empty shards `children` under `dir`, encrypting as the log does. Blocking.
fn open_children(
    dir: &Path,
    options: &LogOptions,
    budget: &Arc<DiskBudget>,
    children: &[ShardId],
    keys: Option<&KeyRing>,
    encrypt: bool,
) -> Result<Vec<ShardLog>, ReshardError> {
    let unavailable = |e: Cause| ReshardError::Unavailable(e);
    let mut opened = Vec::new();
    for id in children {
        let shard = Shard::open(&layout::shard_dir(dir, id.0), options.clone(), budget.clone())
            .map_err(|e| unavailable(Cause::new(e)))?;
        let at_rest = ShardAtRest::open(shard.dir(), keys, encrypt, shard.next_seq())
            .map_err(|e| unavailable(Cause::new(e)))?;
        opened.push(ShardLog {
            shard,
            at_rest: Arc::new(at_rest),
            fate: Arc::new(ShardFate::default()),
        });
    }
    Ok(opened)
}

#[async_trait]
impl StreamLog for EmbeddedLog {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            // Seal frames in the shards' segments (docs/log-format.md).
            durable_seals: true,
            watermark_is_a_bound: true,
            leases_can_be_lost: false,
            shards_can_end: true,
            monotonic_arrivals: true,
            // The shard directories' LOCK files: one process, one open handle.
            shared_open: false,
            atomic_encryption_switch: true,
        }
    }

    fn shards(&self) -> Vec<ShardInfo> {
        read_lock(&self.shared.topology).lineage.shards().to_vec()
    }

    /// Each shard's part is one append (one group-commit entry); shards are written
    /// concurrently.
    async fn append(&self, records: Vec<Append>) -> Vec<Result<Appended, AppendError>> {
        let _no_switch = self.switching.read().await;
        let mut per_shard: BTreeMap<ShardId, (ShardLog, Vec<Bytes>)> = BTreeMap::new();
        let mut placement = Vec::with_capacity(records.len());
        let encrypted = {
            let topology = read_lock(&self.shared.topology);
            for record in records {
                let id = self.route(&topology.lineage, record.route);
                let (_, batch) = per_shard.entry(id).or_insert_with(|| {
                    (topology.get(id).expect("routed to a shard of the log").clone(), Vec::new())
                });
                placement.push((id, batch.len() as u64));
                batch.push(record.data);
            }
            topology.encrypt
        };
        let appends = per_shard.into_iter().map(|(id, (log, records))| async move {
            match log.at_rest.seal_all(records) {
                Ok(records) => (id, log.shard.append(records).await.map_err(append_error)),
                Err(e) => (id, Err(AppendError::Unavailable(Cause::new(e)))),
            }
        });
        let outcomes: BTreeMap<ShardId, Result<(u64, i64), AppendError>> =
            (futures::future::join_all(appends).await.into_iter())
                .map(|(id, outcome)| (id, outcome.map(|o| (o.first_seq, o.arrival_ms))))
                .collect();
        placement
            .into_iter()
            .map(|(shard, offset)| match &outcomes[&shard] {
                Ok((first, arrival_ms)) => {
                    Ok(Appended { shard, seq: first + offset, arrival_ms: *arrival_ms, encrypted })
                }
                Err(e) => Err(e.clone()),
            })
            .collect()
    }

    async fn reader(
        &self,
        shard: ShardId,
        from: ReadFrom,
    ) -> Result<Box<dyn ShardReader>, ReadError> {
        let log = self.get(shard)?;
        let from = match from {
            ReadFrom::Seq(seq) => seq,
            ReadFrom::Oldest => log.shard.first_seq(),
            ReadFrom::Latest => log.shard.next_seq(),
        };
        Ok(Box::new(EmbeddedReader::new(shard, &log.shard, log.at_rest, log.fate, from)?))
    }

    /// Every shard whose parents the consumer finished, at once; the others as it finishes
    /// their parents. The stream of leases ends when the log is closed.
    fn assignments(&self, consumer: &str) -> Result<Assignments, LeaseError> {
        super::checkpoint::validate_consumer(consumer)
            .map_err(|_| LeaseError::InvalidConsumer(consumer.to_string()))?;
        let (to, assignments) = mpsc::unbounded_channel();
        lock(&self.shared.grants).push(Grant {
            consumer: consumer.to_string(),
            to,
            granted: BTreeSet::new(),
        });
        self.shared.grant();
        Ok(Assignments::new(assignments))
    }

    /// Starts (or, with another active key, continues in a new epoch) or stops encrypting
    /// appended records. Waits for the appends in flight; the records after them are in the
    /// new mode.
    async fn switch_encryption(&self, keys: AtRestKeys) -> Result<(), EncryptionError> {
        let _no_appends = self.switching.write().await;
        let mut topology = write_lock(&self.shared.topology);
        for log in &topology.shards {
            (log.at_rest.switch(keys.ring.as_deref(), keys.encrypt, log.shard.next_seq()))
                .map_err(|e| match e {
                    AtRestError::Io { .. } => EncryptionError::Unavailable(Cause::new(e)),
                    e => EncryptionError::Keys(Cause::new(e)),
                })?;
        }
        topology.keys = keys.ring.clone();
        topology.encrypt = keys.encrypt;
        Ok(())
    }

    async fn forget(&self, consumer: &str) -> Result<(), LeaseError> {
        super::checkpoint::validate_consumer(consumer)
            .map_err(|_| LeaseError::InvalidConsumer(consumer.to_string()))?;
        lock(&self.shared.grants).retain(|g| g.consumer != consumer);
        let shards: Vec<Shard> =
            read_lock(&self.shared.topology).shards.iter().map(|l| l.shard.clone()).collect();
        let consumer = consumer.to_string();
        tokio::task::spawn_blocking(move || {
            shards.iter().try_for_each(|shard| shard.forget_checkpoint(&consumer))
        })
        .await
        .map_err(|e| LeaseError::Unavailable(Cause::new(e)))?
        .map_err(|e| LeaseError::Unavailable(Cause::new(e)))
    }

    /// Waits for the appends in flight, stores the new lineage (the commit point), stops the
    /// closed shards' writers (a seal queued there lands first), takes their ends, then opens
    /// the children and routes to them.
    async fn reshard(&self, change: Reshard) -> Result<Vec<ShardId>, ReshardError> {
        let _no_appends = self.switching.write().await;
        let (mut lineage, closing, keys, encrypt) = {
            let topology = read_lock(&self.shared.topology);
            let closing: Vec<ShardLog> =
                (change.closes().iter()).filter_map(|id| topology.get(*id).cloned()).collect();
            (topology.lineage.clone(), closing, topology.keys.clone(), topology.encrypt)
        };
        let mut planned = lineage.clone();
        planned.apply(change, &vec![0; closing.len()])?;
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || topology::store(&dir, &planned))
            .await
            .map_err(|e| ReshardError::Unavailable(Cause::new(e)))?
            .map_err(|e| ReshardError::Unavailable(Cause::new(e)))?;
        for log in &closing {
            log.fate.closing.store(true, Ordering::Release);
            log.shard.close().await;
        }
        let ends: Vec<u64> = closing.iter().map(|log| log.shard.next_seq()).collect();
        let children = lineage.apply(change, &ends)?;
        let opened = {
            let (dir, options, budget) =
                (self.dir.clone(), self.options.clone(), self.budget.clone());
            let children = children.clone();
            tokio::task::spawn_blocking(move || {
                open_children(&dir, &options, &budget, &children, keys.as_deref(), encrypt)
            })
            .await
            .map_err(|e| ReshardError::Unavailable(Cause::new(e)))
            .and_then(|opened| opened)
        };
        let opened = match opened {
            Ok(opened) => opened,
            Err(e) => {
                // The lineage is stored: the next open finishes what this could not.
                tracing::error!(error = %e, "cannot open the new shards of a reshard;                     the closed shards refuse appends until the server restarts");
                return Err(e);
            }
        };
        {
            let mut topology = write_lock(&self.shared.topology);
            for (log, end) in closing.iter().zip(&ends) {
                let _ = log.fate.end.set(ShardEnd { position: *end, children: children.clone() });
            }
            topology.shards.extend(opened);
            topology.lineage = lineage;
        }
        tracing::info!(dir = %self.dir.display(), ?change, ?children, "resharded");
        self.shared.grant();
        Ok(children)
    }

    fn stats(&self) -> Vec<ShardStats> {
        let topology = read_lock(&self.shared.topology);
        (topology.shards.iter().enumerate())
            .map(|(i, log)| ShardStats {
                shard: ShardId(i as u32),
                next_seq: log.shard.next_seq(),
                bytes: log.shard.disk_bytes(),
            })
            .collect()
    }

    fn problems(&self) -> Vec<ShardProblem> {
        let topology = read_lock(&self.shared.topology);
        (topology.shards.iter().enumerate())
            .filter_map(|(i, log)| {
                log.shard.poisoned().map(|reason| ShardProblem { shard: ShardId(i as u32), reason })
            })
            .collect()
    }

    async fn close(&self) {
        lock(&self.shared.grants).clear();
        let shards: Vec<Shard> =
            read_lock(&self.shared.topology).shards.iter().map(|l| l.shard.clone()).collect();
        futures::future::join_all(shards.iter().map(Shard::close)).await;
    }
}

/// What an embedded open failure means to callers.
pub(super) fn open_error(e: embedded::OpenError) -> OpenError {
    match e {
        embedded::OpenError::Locked { .. } => OpenError::Locked(Cause::new(e)),
        embedded::OpenError::Corrupt { .. } | embedded::OpenError::Checkpoint { .. } => {
            OpenError::Damaged(Cause::new(e))
        }
        embedded::OpenError::Io { .. } | embedded::OpenError::Spawn(_) => {
            OpenError::Unavailable(Cause::new(e))
        }
    }
}

/// What an embedded append failure means to producers: full (back off) or not now.
fn append_error(e: embedded::AppendError) -> AppendError {
    match e {
        embedded::AppendError::DiskFull | embedded::AppendError::BudgetExceeded { .. } => {
            AppendError::Full(Cause::new(e))
        }
        embedded::AppendError::RecordTooLarge { index, len, max } => {
            AppendError::TooLarge { index, len, max }
        }
        embedded::AppendError::Io(_)
        | embedded::AppendError::SyncFailed(_)
        | embedded::AppendError::Poisoned { .. }
        | embedded::AppendError::Closed => AppendError::Unavailable(Cause::new(e)),
    }
}

#[cfg(test)]
#[path = "stream_log_tests.rs"]
mod tests;
