//! This node's part in the cluster's leases (§2.2 of the design): it follows the leases bucket
//! with a watch, renews what it holds and its registry key `n.<node id>` by heartbeat, takes
//! leases in rounds (`take.rs` decides which), grants what it takes to the log's
//! [`Assignments`](crate::log::Assignments), and releases what it holds when a log is closed.
//!
//! - **Renewal**: every `renew` interval, one compare-and-set per held lease (bumping its
//!   counter) and a put of the registry key. A lease that cannot be written because another
//!   node wrote it is lost (`lease.rs`). When no write has worked for a whole lease duration,
//!   every held lease is given up as lost: others will take them once they expire.
//! - **Watch**: each key's counter and when it last changed, on this node's clock; a held
//!   lease that the watch shows under another owner (at a later revision than this node's
//!   last write) is lost at once.
//! - **Rounds**, every `round` (±20 %), or at once when a consumer asks for assignments:
//!   renewal when due, releases, records made for leases never written, then takes. No take
//!   while this node's own writes fail (the expiry clock is frozen, then restarted).
//! - **Live nodes** are those whose registry key moved within a lease duration and that want
//!   leases (a node that only appends does not lower the others' share).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Notify};

use super::errors::is_already_created;
use super::lease::{lease_key, parse, Held, JetStreamLease, Owner, Place, Stored};
use super::names::{key_token, random_id};
use super::node_loops;
use super::stream_log::LogShared;
use super::take::{choose, Candidate, Table, Take};
use crate::log::{Assignments, LeaseError, ShardId, ShardLease};

/// Renewals sent at once.
const RENEWALS_IN_FLIGHT: usize = 32;

/// How long leases last and how often they are renewed and taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    /// A lease whose counter did not move for this long is expired (default 12 s).
    pub duration: Duration,
    /// How often a holder renews its leases (default 3 s; at most a third of `duration`).
    pub renew: Duration,
    /// How often a node looks for leases to take (default 1 s, ±20 %).
    pub round: Duration,
}

impl Default for LeaseTiming {
    fn default() -> Self {
        Self::lasting(Duration::from_secs(12))
    }
}

impl LeaseTiming {
    /// Leases that last `duration`: renewed every quarter of it, taken in rounds of 1 s (or a
    /// quarter of it, when that is shorter).
    pub fn lasting(duration: Duration) -> Self {
        let quarter = duration / 4;
        Self { duration, renew: quarter, round: quarter.min(Duration::from_secs(1)) }
    }
}

/// A node's registry record.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct NodeRecord {
    id: String,
    inc: String,
    counter: u64,
    started_ms: i64,
    /// How many (log, consumer) pairs it takes leases for: 0 for a node that only appends.
    wants: usize,
}

/// A lease a consumer wants.
#[derive(Debug, Clone)]
struct Wanted {
    key: String,
    log_id: String,
    shard: ShardId,
    consumer: String,
    /// Its parents are finished.
    ready: bool,
}

/// A consumer of a log that asked this node for assignments.
struct Want {
    log: Weak<LogShared>,
    log_id: String,
    consumer: String,
    /// The latest caller's stream of grants.
    to: mpsc::UnboundedSender<Arc<dyn ShardLease>>,
}

#[derive(Default)]
struct State {
    table: Table,
    /// The latest value of each lease key the watch saw.
    records: HashMap<String, (u64, Stored)>,
    /// Registry keys and what they say.
    nodes: HashMap<String, NodeRecord>,
    /// By (log id, consumer).
    wants: HashMap<(String, String), Want>,
    held: HashMap<String, Arc<Held>>,
    /// Lease keys whose record this node made sure exists.
    made: BTreeSet<String>,
    /// Heartbeats under this node's id from another process, seen since the watch caught up.
    foreign_heartbeats: u32,
}

/// This node's lease machinery, shared by every log it opens.
pub(super) struct Node {
    pub owner: Owner,
    pub(super) leases: kv::Store,
    pub(super) timing: LeaseTiming,
    started_ms: i64,
    state: Mutex<State>,
    pub(super) wake: Notify,
    /// When the last write of this node worked, and the last renewal ran.
    writes: Mutex<(Instant, Instant, u64)>,
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("id", &self.owner.node).finish()
    }
}

/// Takes the held leases `which` picks out of `state`.
fn take_held(state: &mut State, which: impl Fn(&Arc<Held>) -> bool) -> Vec<Arc<Held>> {
    let keys: Vec<String> =
        state.held.iter().filter(|(_, h)| which(h)).map(|(k, _)| k.clone()).collect();
    keys.iter().filter_map(|k| state.held.remove(k)).collect()
}

/// Gives `released` back, so that other nodes take them at once; a lease that cannot be
/// released expires instead.
async fn release_all(released: Vec<Arc<Held>>) {
    for held in released {
        if let Err(e) = held.release().await {
            tracing::debug!(key = %held.key, error = %e, "cannot release a lease");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Node {
    /// Starts the node's watch and rounds on the current runtime; they end when the node is
    /// dropped (or [`halt`](Self::halt)ed).
    pub fn start(node_id: &str, leases: kv::Store, timing: LeaseTiming) -> Arc<Self> {
        let now = Instant::now();
        let node = Arc::new(Self {
            owner: Owner { node: node_id.to_string(), inc: random_id() },
            leases,
            timing,
            started_ms: crate::clock::now_ms(),
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            writes: Mutex::new((now, now - timing.renew, 0)),
            tasks: Mutex::new(Vec::new()),
        });
        let watch = tokio::spawn(node_loops::watch(Arc::downgrade(&node))).abort_handle();
        let rounds = tokio::spawn(node_loops::rounds(Arc::downgrade(&node))).abort_handle();
        *lock(&node.tasks) = vec![watch, rounds];
        node
    }

    /// Stops the node at once, as a crash or a pause would: no renewal, no release, no take.
    /// (Tests: the other nodes take its leases once they expire.)
    pub fn halt(&self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }

    /// Every node whose heartbeat this node's watch has seen.
    pub(super) fn cluster_nodes(&self) -> Vec<crate::log::ClusterNode> {
        let (now, state) = (Instant::now(), lock(&self.state));
        let mut nodes: Vec<_> = (state.nodes.iter())
            .map(|(key, record)| crate::log::ClusterNode {
                id: record.id.clone(),
                started_ms: record.started_ms,
                silent_ms: state.table.unchanged_for(key, now).as_millis() as u64,
                takes_leases: record.wants > 0,
            })
            .collect();
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        nodes
    }

    /// Who holds each lease of log `log_id`, from the lease records this node's watch saw.
    pub(super) fn lease_holders(&self, log_id: &str) -> Vec<crate::log::LeaseHolder> {
        let (prefix, state) = (format!("l.{log_id}."), lock(&self.state));
        let mut holders: Vec<_> = (state.records.iter())
            .filter_map(|(key, (_, stored))| {
                let (shard, consumer) = key.strip_prefix(&prefix)?.split_once('.')?;
                Some(crate::log::LeaseHolder {
                    shard: ShardId(shard.parse().ok()?),
                    consumer: super::names::key_name(consumer)?,
                    owner: Some(stored.owner.clone()).filter(|o| !o.is_empty()),
                    epoch: stored.epoch,
                })
            })
            .collect();
        holders.sort_by(|a, b| (a.shard, &a.consumer).cmp(&(b.shard, &b.consumer)));
        holders
    }

    fn node_key(&self) -> String {
        format!("n.{}", key_token(&self.owner.node))
    }

    /// `consumer`'s leases on `log`'s shards, as this node wins them. The latest caller for a
    /// (log, consumer) gets the leases held now again, and every later one.
    pub fn assignments(&self, log: &Arc<LogShared>, consumer: &str) -> Assignments {
        let (to, granted) = mpsc::unbounded_channel();
        let mut state = lock(&self.state);
        for held in state.held.values() {
            if held.log_id == log.log_id && held.consumer == consumer && !held.is_lost() {
                let lease: Arc<dyn ShardLease> =
                    Arc::new(JetStreamLease::new(log.clone(), held.clone()));
                let _ = to.send(lease);
            }
        }
        let want = Want {
            log: Arc::downgrade(log),
            log_id: log.log_id.clone(),
            consumer: consumer.to_string(),
            to,
        };
        state.wants.insert((log.log_id.clone(), consumer.to_string()), want);
        drop(state);
        self.wake.notify_one();
        Assignments::new(granted)
    }

    /// Drops every lease of `consumer` on the log `log_id` as lost, and what the watch showed
    /// of their records: the records are being removed (`StreamLog::forget`), and a consumer
    /// of that name starts over with new ones.
    pub fn forget(&self, log_id: &str, consumer: &str) {
        let mut state = lock(&self.state);
        for held in take_held(&mut state, |h| h.log_id == log_id && h.consumer == consumer) {
            held.lose("the consumer was forgotten");
        }
        let prefix = format!("l.{log_id}.");
        let suffix = format!(".{}", key_token(consumer));
        let of_consumer = |key: &String| key.starts_with(&prefix) && key.ends_with(&suffix);
        state.records.retain(|key, _| !of_consumer(key));
        state.made.retain(|key| !of_consumer(key));
    }

    /// Gives up every lease held on the log `log_id` (a graceful close), and stops taking
    /// them.
    pub async fn release_log(&self, log_id: &str) {
        let released: Vec<Arc<Held>> = {
            let mut state = lock(&self.state);
            state.wants.retain(|(id, _), _| id != log_id);
            take_held(&mut state, |h| h.log_id == log_id)
        };
        release_all(released).await;
        // The others' share grows at once.
        self.heartbeat().await;
    }

    /// Puts the registry key (a heartbeat); true when it worked.
    async fn heartbeat(&self) -> bool {
        let wants = lock(&self.state).wants.len();
        let counter = {
            let mut writes = lock(&self.writes);
            writes.2 += 1;
            writes.2
        };
        let record = NodeRecord {
            id: self.owner.node.clone(),
            inc: self.owner.inc.clone(),
            counter,
            started_ms: self.started_ms,
            wants,
        };
        let value = bytes::Bytes::from(serde_json::to_vec(&record).expect("serializable"));
        match self.leases.put(self.node_key(), value).await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(node = %self.owner.node, error = %e,
                    "cannot write this node's heartbeat to nats");
                false
            }
        }
    }

    /// What the watch saw: a lease record or a registry key.
    pub(super) fn observe(&self, entry: kv::Entry) {
        let now = Instant::now();
        let mut state = lock(&self.state);
        let removed = entry.operation != kv::Operation::Put;
        if entry.key.starts_with("n.") {
            if removed {
                state.nodes.remove(&entry.key);
                state.table.forget(&entry.key);
                return;
            }
            let Ok(record) = serde_json::from_slice::<NodeRecord>(&entry.value) else { return };
            if record.id == self.owner.node && record.inc != self.owner.inc && entry.seen_current {
                // One such record may be an earlier process's last one; a second is a process
                // running now.
                state.foreign_heartbeats += 1;
                if state.foreign_heartbeats == 2 {
                    tracing::error!(node = %record.id,
                        "another process runs with this node's node_id: give each node its own");
                }
            }
            state.table.observe(&entry.key, record.counter, now);
            state.nodes.insert(entry.key, record);
            return;
        }
        if !entry.key.starts_with("l.") {
            return;
        }
        let stored = if removed { None } else { parse(&entry.key, &entry.value).ok() };
        if let Some(held) = state.held.get(&entry.key).cloned() {
            let theirs = stored.as_ref().is_none_or(|s| {
                s.owner != self.owner.node || s.inc != self.owner.inc || s.epoch != held.epoch
            });
            if entry.revision > held.revision() && theirs {
                let who = stored.as_ref().map_or("nobody".to_string(), |s| s.owner.clone());
                held.lose(&format!("the watch shows owner {who:?}"));
                state.held.remove(&entry.key);
            }
        }
        match stored {
            Some(stored) => {
                state.table.observe(&entry.key, stored.counter, now);
                state.records.insert(entry.key, (entry.revision, stored));
            }
            None => {
                state.table.forget(&entry.key);
                state.records.remove(&entry.key);
                state.made.remove(&entry.key);
            }
        }
    }

    /// One round: renewal when due, releases, missing records, takes.
    pub(super) async fn round(&self) {
        // Lost by a refused commit: no longer this node's.
        lock(&self.state).held.retain(|_, held| !held.is_lost());
        let now = Instant::now();
        let (last_ok, last_renewal, _) = *lock(&self.writes);
        if now.duration_since(last_renewal) >= self.timing.renew {
            self.renew(now, last_ok).await;
        }
        self.release_unwanted().await;
        self.make_records().await;
        let frozen = lock(&self.writes).0.elapsed() > self.timing.renew * 2;
        if !frozen {
            self.take().await;
        }
    }

    async fn renew(&self, now: Instant, last_ok: Instant) {
        lock(&self.writes).1 = now;
        let held: Vec<Arc<Held>> = lock(&self.state).held.values().cloned().collect();
        let mut worked = self.heartbeat().await;
        // Many at once: one round trip each, and all of them due now.
        let renewed: Vec<(Arc<Held>, Result<(), LeaseError>)> = futures::stream::iter(held)
            .map(|lease| async move {
                let result = lease.renew().await;
                (lease, result)
            })
            .buffer_unordered(RENEWALS_IN_FLIGHT)
            .collect()
            .await;
        for (lease, result) in renewed {
            match result {
                Ok(()) => worked = true,
                Err(LeaseError::Lost { .. }) => {
                    lock(&self.state).held.remove(&lease.key);
                }
                Err(e) => {
                    tracing::warn!(key = %lease.key, error = %e, "cannot renew a lease now")
                }
            }
        }
        if worked {
            if now.duration_since(last_ok) > self.timing.renew * 2 {
                // Back after writes failed: nobody could renew meanwhile.
                lock(&self.state).table.thaw(Instant::now());
            }
            lock(&self.writes).0 = Instant::now();
        } else if now.duration_since(last_ok) >= self.timing.duration {
            let lost: Vec<Arc<Held>> = lock(&self.state).held.drain().map(|(_, h)| h).collect();
            for lease in lost {
                lease.lose("no write to nats worked for a lease duration");
            }
        }
    }

    /// Releases the leases of logs that were closed or dropped, and of consumers nobody
    /// follows any more (their assignments and every lease handle dropped).
    async fn release_unwanted(&self) {
        let released: Vec<Arc<Held>> = {
            let mut state = lock(&self.state);
            state.wants.retain(|_, want| {
                let open = want.log.upgrade().is_some_and(|log| !log.is_released());
                open && !want.to.is_closed()
            });
            let wanted: BTreeSet<String> =
                Self::wanted_keys(&state).into_iter().map(|w| w.key).collect();
            // Also the leases of closed shards the consumer finished.
            take_held(&mut state, |h| {
                !wanted.contains(&h.key)
                    // A handle still out there keeps its lease (a worker finishing its shard).
                    && Arc::strong_count(h) == 1
            })
        };
        release_all(released).await;
    }

    /// Every lease wanted: of each shard of each wanted log, except closed shards the
    /// consumer finished (its `next_seq` at their end). A shard is ready to be taken once the
    /// consumer finished its parents, so per-key order holds across reshards.
    fn wanted_keys(state: &State) -> Vec<Wanted> {
        let mut keys = Vec::new();
        for want in state.wants.values() {
            let Some(log) = want.log.upgrade() else { continue };
            let topology = log.topology();
            let next_seq = |shard: ShardId| {
                let key = lease_key(&want.log_id, shard, &want.consumer);
                state.records.get(&key).and_then(|(_, stored)| stored.next_seq())
            };
            let finished = |shard: ShardId, end: Option<u64>| {
                end.is_some_and(|end| next_seq(shard).is_some_and(|next| next >= end))
            };
            for handle in &topology.handles {
                if handle.is_closed() && finished(handle.id, handle.known_end()) {
                    continue;
                }
                let ready = (topology.parents(handle.id).into_iter())
                    .all(|(parent, end)| finished(parent, end));
                keys.push(Wanted {
                    key: lease_key(&want.log_id, handle.id, &want.consumer),
                    log_id: want.log_id.clone(),
                    shard: handle.id,
                    consumer: want.consumer.clone(),
                    ready,
                });
            }
        }
        keys
    }

    /// Makes the record of every wanted lease that has none (owner empty), so it can be taken.
    async fn make_records(&self) {
        let missing: Vec<String> = {
            let state = lock(&self.state);
            (Self::wanted_keys(&state).into_iter())
                .map(|w| w.key)
                .filter(|key| !state.records.contains_key(key) && !state.made.contains(key))
                .collect()
        };
        for key in missing {
            let record = Stored::default();
            match self.leases.create(&key, record.encode()).await {
                Ok(revision) => {
                    let mut state = lock(&self.state);
                    state.made.insert(key.clone());
                    state.table.observe(&key, 0, Instant::now());
                    state.records.entry(key).or_insert((revision, record));
                }
                Err(e) if is_already_created(&e) => {
                    lock(&self.state).made.insert(key);
                }
                Err(e) => tracing::debug!(key = %key, error = %e, "cannot make a lease record"),
            }
        }
    }

    /// Takes what [`choose`] picks, and grants it.
    async fn take(&self) {
        let now = Instant::now();
        let (picked, records) = {
            let state = lock(&self.state);
            let wanted = Self::wanted_keys(&state);
            let duration = self.timing.duration;
            let live: BTreeSet<String> = (state.nodes.iter())
                .filter(|(key, record)| {
                    record.wants > 0 && state.table.unchanged_for(key, now) < duration
                })
                .map(|(_, record)| record.id.clone())
                .collect();
            let candidates: Vec<Candidate> = (wanted.iter())
                .filter_map(|Wanted { key, ready, .. }| {
                    let (_, stored) = state.records.get(key)?;
                    let owner = if state.held.contains_key(key) {
                        Some(self.owner.node.clone())
                    } else if stored.owner.is_empty() {
                        None
                    } else if stored.owner == self.owner.node {
                        // An earlier process of this node: someone else until it expires.
                        Some(format!("{}#{}", stored.owner, stored.inc))
                    } else {
                        Some(stored.owner.clone())
                    };
                    Some(Candidate {
                        key: key.clone(),
                        owner,
                        unchanged_for: state.table.unchanged_for(key, now),
                        ready: *ready,
                    })
                })
                .collect();
            let picked = choose(&self.owner.node, &candidates, &live, duration, &mut rand::rng());
            let records: Vec<_> = (picked.iter())
                .filter_map(|(key, how)| {
                    let Wanted { log_id, shard, consumer, .. } =
                        wanted.iter().find(|w| &w.key == key)?.clone();
                    let (revision, stored) = state.records.get(key)?.clone();
                    Some((key.clone(), *how, log_id, shard, consumer, revision, stored))
                })
                .collect();
            (picked.len(), records)
        };
        debug_assert_eq!(picked, records.len());
        for (key, how, log_id, shard, consumer, revision, stored) in records {
            self.take_one(&key, how, &log_id, shard, &consumer, revision, stored).await;
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn take_one(
        &self,
        key: &str,
        how: Take,
        log_id: &str,
        shard: ShardId,
        consumer: &str,
        revision: u64,
        seen: Stored,
    ) {
        let previous = seen.owner.clone();
        let mut taken = seen;
        taken.owner = self.owner.node.clone();
        taken.inc = self.owner.inc.clone();
        taken.epoch += 1;
        taken.counter += 1;
        let written = match self.leases.update(key, taken.encode(), revision).await {
            Ok(written) => written,
            Err(e) => {
                // Someone renewed or took it meanwhile (or the answer was lost: then the
                // record says this node owns it, which the watch shows, and it expires).
                tracing::debug!(key, error = %e, "lease not taken");
                return;
            }
        };
        let mut state = lock(&self.state);
        let Some(want) = state.wants.get(&(log_id.to_string(), consumer.to_string())) else {
            return;
        };
        let Some(log) = want.log.upgrade() else { return };
        let place = Place { stream: &log.name, log_id, shard, consumer };
        let held =
            Arc::new(Held::new(place, self.owner.clone(), self.leases.clone(), written, taken));
        metrics::counter!("hydrant_lease_takeovers_total", "stream" => log.name.clone(),
            "consumer" => consumer.to_string(), "shard" => shard.to_string(),
            "how" => how.label())
        .increment(1);
        tracing::info!(stream = %log.name, shard = shard.0, consumer, epoch = held.epoch,
            from = %previous, how = how.label(), "lease taken");
        let lease: Arc<dyn ShardLease> = Arc::new(JetStreamLease::new(log.clone(), held.clone()));
        let _ = want.to.send(lease);
        state.held.insert(key.to_string(), held);
    }

    /// Takes the lease `key` for this node at once and releases it again: what another node
    /// taking it over does to its holder (tests).
    pub async fn take_and_release(&self, key: &str) -> Result<(), LeaseError> {
        let Some((revision, mut stored)) =
            super::lease::load_from_leader(&self.leases, key).await?
        else {
            return Err(LeaseError::Unavailable(super::errors::cause(key, "no such lease")));
        };
        stored.owner = self.owner.node.clone();
        stored.inc = self.owner.inc.clone();
        stored.epoch += 1;
        stored.counter += 1;
        let unavailable = |e| LeaseError::Unavailable(super::errors::cause("taking a lease", e));
        let revision =
            (self.leases.update(key, stored.encode(), revision).await).map_err(unavailable)?;
        stored.owner.clear();
        stored.inc.clear();
        stored.counter += 1;
        self.leases.update(key, stored.encode(), revision).await.map_err(unavailable)?;
        Ok(())
    }
}
