//! [`MemoryLog`]: the log's traits in memory, for tests. It has every capability the embedded
//! log lacks (seals are stored, leases can be taken over, shards can end and split), so that
//! delivery's handling of them is tested before a second real implementation exists
//! (issue 13: JetStream; issue 14: resharding).
//!
//! Like a replicated log, it gives seals their own positions, so record positions skip values.
//! [`MemoryStore`] keeps every stream's data across `open`s: dropping a log and opening it again
//! is a reopen.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use async_trait::async_trait;
use bytes::Bytes;
use md5::{Digest, Md5};
use tokio::sync::{mpsc, watch};

mod lease;
mod reader;
#[cfg(test)]
mod tests;

use lease::MemoryLease;
use reader::MemoryReader;

use super::{
    Append, AppendError, Appended, Assignments, AtRestKeys, Capabilities, Cause, ConsumerState,
    EncryptionError, Entry, HashRange, LeaseError, Lineage, LogStore, OpenError, Position,
    ReadError, ReadFrom, Record, Reshard, ReshardError, Route, Seal, ShardEnd, ShardId, ShardInfo,
    ShardLease, ShardProblem, ShardReader, ShardState, ShardStats, StoreError, StreamLog,
    StreamSpec,
};

/// Every stream's log in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    logs: Mutex<HashMap<String, Arc<Backing>>>,
}

impl MemoryStore {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The log of `stream` as it is now (to steal leases, end shards and set the clock).
    ///
    /// # Panics
    /// If the stream's log was never opened.
    pub fn log(&self, stream: &str) -> MemoryLog {
        let backing = lock(&self.logs).get(stream).cloned().expect("the log was opened");
        MemoryLog { backing }
    }
}

#[async_trait]
impl LogStore for MemoryStore {
    async fn open(&self, stream: &str, spec: StreamSpec) -> Result<Arc<dyn StreamLog>, OpenError> {
        let backing = lock(&self.logs)
            .entry(stream.to_string())
            .or_insert_with(|| Arc::new(Backing::new(spec.shards)))
            .clone();
        {
            let mut state = backing.lock();
            let existing = state.initial_shards;
            let resharded = state.shards.iter().any(|s| s.info.parent.is_some());
            if existing != spec.shards && !resharded {
                return Err(OpenError::ShardCount { existing, configured: spec.shards });
            }
            if state.open.upgrade().is_some() {
                return Err(OpenError::Locked(Cause::new(std::io::Error::other(format!(
                    "the memory log of {stream} is open already"
                )))));
            }
            if spec.at_rest.encrypt && spec.at_rest.ring.is_none() {
                return Err(OpenError::Keys(Cause::new(std::io::Error::other("no key ring"))));
            }
            state.encrypt = spec.at_rest.encrypt;
            state.closed = false;
            state.lower_markers();
        }
        let log = Arc::new(MemoryLog { backing: backing.clone() });
        backing.lock().open = Arc::downgrade(&log);
        Ok(log)
    }

    async fn delete(&self, stream: &str) -> Result<(), StoreError> {
        lock(&self.logs).remove(stream);
        Ok(())
    }
}

/// One stream's log in memory.
#[derive(Debug, Clone)]
pub struct MemoryLog {
    backing: Arc<Backing>,
}

#[derive(Debug)]
struct Backing {
    state: Mutex<LogState>,
    /// Counts every change readers and lease holders may wait for.
    changes: watch::Sender<u64>,
    /// Arrival times come from here when set (`i64::MIN`: the wall clock).
    clock_ms: AtomicI64,
    /// How far ahead of the arrival clock `caught_up` watermarks are (0: they are a bound).
    watermark_lead_ms: AtomicI64,
    counter: AtomicU64,
}

#[derive(Debug)]
struct LogState {
    initial_shards: u32,
    shards: Vec<MemoryShard>,
    /// Per (shard, consumer): what was committed, and who holds the lease now.
    consumers: BTreeMap<(ShardId, String), Consumer>,
    /// Per consumer: the shards granted to its latest caller of `assignments`, and where to
    /// send the next ones.
    grants: HashMap<String, Grants>,
    encrypt: bool,
    closed: bool,
    last_arrival_ms: i64,
    /// The log handle that is open, if any.
    open: Weak<MemoryLog>,
}

#[derive(Debug)]
struct MemoryShard {
    info: ShardInfo,
    /// (position, entry), in position order, from the oldest retained one.
    entries: Vec<(u64, Stored)>,
    next_seq: u64,
    first_retained: u64,
}

#[derive(Debug, Clone)]
enum Stored {
    Record { arrival_ms: i64, data: Bytes },
    Seal(Seal),
    End(Vec<ShardId>),
}

#[derive(Debug, Default)]
struct Grants {
    granted: BTreeSet<ShardId>,
    to: Option<mpsc::UnboundedSender<Arc<dyn ShardLease>>>,
}

#[derive(Debug)]
struct Consumer {
    /// What was committed; `None` until the consumer registers (its first `state`).
    state: Option<ConsumerState>,
    /// Bumped by every take-over: leases of an older epoch are lost.
    epoch: u64,
    lost: watch::Sender<u64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Backing {
    fn new(shards: u32) -> Self {
        let shards = (0..shards)
            .map(|i| MemoryShard {
                info: ShardInfo {
                    id: ShardId(i),
                    hash_range: HashRange::part(i, shards),
                    parent: None,
                    adjacent_parent: None,
                    state: ShardState::Open,
                },
                entries: Vec::new(),
                next_seq: 0,
                first_retained: 0,
            })
            .collect::<Vec<_>>();
        Self {
            state: Mutex::new(LogState {
                initial_shards: shards_len(&shards),
                shards,
                consumers: BTreeMap::new(),
                grants: HashMap::new(),
                encrypt: false,
                closed: false,
                last_arrival_ms: i64::MIN,
                open: Weak::new(),
            }),
            changes: watch::channel(0).0,
            clock_ms: AtomicI64::new(i64::MIN),
            watermark_lead_ms: AtomicI64::new(0),
            counter: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        lock(&self.state)
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    /// The clock arrivals and watermarks come from, never going back.
    fn now(&self, state: &mut LogState) -> i64 {
        let clock = match self.clock_ms.load(Ordering::Acquire) {
            i64::MIN => crate::clock::now_ms(),
            set => set,
        };
        state.last_arrival_ms = state.last_arrival_ms.max(clock);
        state.last_arrival_ms
    }
}

fn shards_len(shards: &[MemoryShard]) -> u32 {
    shards.len() as u32
}

impl LogState {
    fn shard(&self, id: ShardId) -> Option<&MemoryShard> {
        self.shards.get(id.0 as usize)
    }

    fn shard_mut(&mut self, id: ShardId) -> Option<&mut MemoryShard> {
        self.shards.get_mut(id.0 as usize)
    }

    /// Markers at or past their shard's end are lowered below it (the contract of `open`).
    fn lower_markers(&mut self) {
        let ends: Vec<u64> = self.shards.iter().map(|s| s.next_seq).collect();
        for ((shard, _), consumer) in self.consumers.iter_mut() {
            let Some(stored) = &mut consumer.state else { continue };
            match ends[shard.0 as usize].checked_sub(1) {
                None => stored.markers.clear(),
                Some(last) => {
                    for pos in stored.markers.values_mut().filter(|pos| pos.seq > last) {
                        *pos = Position { seq: last, sub: u32::MAX };
                    }
                }
            }
        }
    }

    /// `consumer`'s entry for `shard`, created (unregistered) if it has none.
    fn consumer(&mut self, shard: ShardId, consumer: &str) -> &mut Consumer {
        self.consumers.entry((shard, consumer.to_string())).or_insert_with(|| Consumer {
            state: None,
            epoch: 0,
            lost: watch::channel(0).0,
        })
    }

    /// Deletes entries every registered consumer of the shard has passed.
    fn retain(&mut self, shard: ShardId) {
        let min = (self.consumers.iter())
            .filter(|((s, _), _)| *s == shard)
            .filter_map(|(_, c)| c.state.as_ref().map(|state| state.next_seq))
            .min();
        if let (Some(min), Some(shard)) = (min, self.shard_mut(shard)) {
            shard.entries.retain(|(pos, _)| *pos >= min);
            shard.first_retained = shard.first_retained.max(min.min(shard.next_seq));
        }
    }

    /// Whether `consumer` finished every parent of `shard`.
    fn parents_done(&self, info: &ShardInfo, consumer: &str) -> bool {
        [info.parent, info.adjacent_parent].into_iter().flatten().all(|parent| {
            let Some(ShardState::Closed { end }) = self.shard(parent).map(|s| s.info.state) else {
                return true;
            };
            self.consumers
                .get(&(parent, consumer.to_string()))
                .and_then(|c| c.state.as_ref())
                .is_some_and(|state| state.next_seq >= end)
        })
    }

    fn lease(&mut self, backing: &Arc<Backing>, shard: ShardId, consumer: &str) -> MemoryLease {
        let held = self.consumer(shard, consumer);
        let (epoch, lost) = (held.epoch, held.lost.subscribe());
        MemoryLease { backing: backing.clone(), shard, consumer: consumer.to_string(), epoch, lost }
    }

    /// Grants every shard `consumer` may consume now and was not granted yet.
    fn grant(&mut self, backing: &Arc<Backing>, consumer: &str) {
        if self.grants.get(consumer).is_none_or(|g| g.to.is_none()) {
            return;
        }
        let ready: Vec<ShardId> = (self.shards.iter())
            .filter(|s| self.parents_done(&s.info, consumer))
            .map(|s| s.info.id)
            .filter(|id| !self.grants.get(consumer).is_some_and(|g| g.granted.contains(id)))
            .collect();
        for shard in ready {
            let lease: Arc<dyn ShardLease> = Arc::new(self.lease(backing, shard, consumer));
            let grants = self.grants.get_mut(consumer).expect("checked above");
            if let Some(to) = &grants.to {
                let _ = to.send(lease);
            }
            grants.granted.insert(shard);
        }
    }
}

impl MemoryLog {
    /// Arrival times (and watermarks) are `ms` from now on, instead of the wall clock (they
    /// still never go back).
    pub fn set_clock(&self, ms: i64) {
        self.backing.clock_ms.store(ms, Ordering::Release);
    }

    /// Watermarks run `ms` ahead of the arrival clock from now on, as a replicated log's do
    /// when another node's clock is ahead: they no longer bound later arrivals, and only the
    /// seals recorded in the log keep replays cutting the same.
    pub fn set_watermark_lead(&self, ms: i64) {
        self.backing.watermark_lead_ms.store(ms, Ordering::Release);
    }

    /// Another owner takes `consumer`'s lease on `shard`: the leases held now are lost.
    pub fn take_over(&self, shard: ShardId, consumer: &str) {
        let mut state = self.backing.lock();
        let entry = state.consumer(shard, consumer);
        entry.epoch += 1;
        entry.lost.send_replace(entry.epoch);
        drop(state);
        self.backing.changed();
    }

    /// Every entry of `shard` from `from` on, seals and ends included.
    pub fn entries(&self, shard: ShardId, from: u64) -> Vec<Entry> {
        let state = self.backing.lock();
        let shard = state.shard(shard).expect("a shard of the log");
        (shard.entries.iter()).filter(|(pos, _)| *pos >= from).map(|e| entry(e, shard)).collect()
    }
}

fn entry((pos, stored): &(u64, Stored), shard: &MemoryShard) -> Entry {
    match stored {
        Stored::Record { arrival_ms, data, .. } => {
            Entry::Record(Record { seq: *pos, arrival_ms: *arrival_ms, data: data.clone() })
        }
        Stored::Seal(seal) => Entry::Seal(*seal),
        Stored::End(children) => {
            debug_assert_eq!(shard.info.state, ShardState::Closed { end: *pos });
            Entry::End(ShardEnd { position: *pos, children: children.clone() })
        }
    }
}

#[async_trait]
impl StreamLog for MemoryLog {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            durable_seals: true,
            watermark_is_a_bound: self.backing.watermark_lead_ms.load(Ordering::Acquire) == 0,
            leases_can_be_lost: true,
            shards_can_end: true,
            monotonic_arrivals: true,
            shared_open: false,
            atomic_encryption_switch: true,
        }
    }

    fn shards(&self) -> Vec<ShardInfo> {
        self.backing.lock().shards.iter().map(|s| s.info.clone()).collect()
    }

    async fn append(&self, records: Vec<Append>) -> Vec<Result<Appended, AppendError>> {
        let mut state = self.backing.lock();
        let arrival_ms = self.backing.now(&mut state);
        let encrypted = state.encrypt;
        let closed = state.closed;
        let results = records
            .into_iter()
            .map(|record| {
                if closed {
                    let closed = std::io::Error::other("the memory log is closed");
                    return Err(AppendError::Unavailable(Cause::new(closed)));
                }
                let key = match record.route {
                    Route::HashKey(key) => key,
                    Route::Implicit => {
                        let n = self.backing.counter.fetch_add(1, Ordering::Relaxed);
                        u128::from_be_bytes(Md5::digest(n.to_le_bytes()).into())
                    }
                };
                let shard = (state.shards.iter_mut())
                    .find(|s| s.info.state == ShardState::Open && s.info.hash_range.contains(key))
                    .expect("the open shards cover the hash-key space");
                let seq = shard.next_seq;
                shard.next_seq += 1;
                let stored = Stored::Record { arrival_ms, data: record.data };
                shard.entries.push((seq, stored));
                Ok(Appended { shard: shard.info.id, seq, arrival_ms, encrypted })
            })
            .collect();
        drop(state);
        self.backing.changed();
        results
    }

    async fn reader(
        &self,
        shard: ShardId,
        from: ReadFrom,
    ) -> Result<Box<dyn ShardReader>, ReadError> {
        let state = self.backing.lock();
        let s = state.shard(shard).ok_or(ReadError::UnknownShard(shard))?;
        let position = match from {
            ReadFrom::Seq(seq) => seq,
            ReadFrom::Oldest => s.first_retained,
            ReadFrom::Latest => s.next_seq,
        };
        if position < s.first_retained {
            return Err(ReadError::Trimmed {
                requested: position,
                first_retained: s.first_retained,
            });
        }
        if position > s.next_seq {
            return Err(ReadError::BeyondEnd { requested: position, next_seq: s.next_seq });
        }
        let changes = self.backing.changes.subscribe();
        drop(state);
        Ok(Box::new(MemoryReader {
            backing: self.backing.clone(),
            shard,
            position,
            ended: false,
            changes,
        }))
    }

    fn assignments(&self, consumer: &str) -> Result<Assignments, LeaseError> {
        crate::log::embedded::checkpoint::validate_consumer(consumer)
            .map_err(|_| LeaseError::InvalidConsumer(consumer.to_string()))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut state = self.backing.lock();
        // The latest caller gets every shard that is ready (an earlier caller's stream ends).
        state
            .grants
            .insert(consumer.to_string(), Grants { granted: BTreeSet::new(), to: Some(tx) });
        state.grant(&self.backing, consumer);
        Ok(Assignments::new(rx))
    }

    async fn switch_encryption(&self, keys: AtRestKeys) -> Result<(), EncryptionError> {
        if keys.encrypt && keys.ring.is_none() {
            return Err(EncryptionError::Keys(Cause::new(std::io::Error::other("no key ring"))));
        }
        self.backing.lock().encrypt = keys.encrypt;
        Ok(())
    }

    async fn forget(&self, consumer: &str) -> Result<(), LeaseError> {
        let mut state = self.backing.lock();
        state.consumers.retain(|(_, c), _| c != consumer);
        state.grants.remove(consumer);
        let shards: Vec<ShardId> = state.shards.iter().map(|s| s.info.id).collect();
        for shard in shards {
            state.retain(shard);
        }
        Ok(())
    }

    /// Closes the shards `change` closes (an [`Entry::End`] after each one's last entry) and
    /// opens their children, which consumers are granted once they finished every parent.
    async fn reshard(&self, change: Reshard) -> Result<Vec<ShardId>, ReshardError> {
        let mut state = self.backing.lock();
        let infos = state.shards.iter().map(|s| s.info.clone()).collect();
        let mut lineage = Lineage::from_shards(infos).expect("the memory log's shards tile");
        let closes = change.closes();
        let ends: Vec<u64> =
            (closes.iter()).map(|id| state.shard(*id).map_or(0, |s| s.next_seq)).collect();
        let children = lineage.apply(change, &ends)?;
        for (id, end) in closes.into_iter().zip(ends) {
            let shard = state.shard_mut(id).expect("checked by the lineage");
            shard.entries.push((end, Stored::End(children.clone())));
            shard.next_seq = end + 1;
            shard.info = lineage.get(id).expect("listed").clone();
        }
        for id in &children {
            let info = lineage.get(*id).expect("listed").clone();
            state.shards.push(MemoryShard {
                info,
                entries: Vec::new(),
                next_seq: 0,
                first_retained: 0,
            });
        }
        drop(state);
        self.backing.changed();
        Ok(children)
    }

    fn stats(&self) -> Vec<ShardStats> {
        (self.backing.lock().shards.iter())
            .map(|s| ShardStats {
                shard: s.info.id,
                next_seq: s.next_seq,
                bytes: s.entries.iter().map(|(_, e)| stored_len(e)).sum(),
            })
            .collect()
    }

    fn problems(&self) -> Vec<ShardProblem> {
        Vec::new()
    }

    async fn close(&self) {
        self.backing.lock().closed = true;
    }
}

fn stored_len(stored: &Stored) -> u64 {
    match stored {
        Stored::Record { data, .. } => data.len() as u64,
        _ => 0,
    }
}
