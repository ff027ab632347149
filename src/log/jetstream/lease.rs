//! A consumer's lease on a shard, in the cluster (§1.5, §2.1 of the design): one record per
//! (shard, consumer) in the leases bucket, `l.<log id>.<shard>.<consumer>`, holding its owner
//! (node id, process incarnation, epoch), a counter every write bumps, and the consumer's
//! progress (`next_seq` and the markers), so markers and `next_seq` always change together.
//!
//! Every write is **fenced**: a compare-and-set on the revision this holder last wrote or read,
//! whose value named this node, incarnation and epoch as owner. When the write fails (another
//! writer, or an answer that did not come), the record is read again through the bucket's
//! leader: still ours, the write is adopted (it landed) or tried once more on top of it;
//! someone else's, the lease is lost ([`LeaseError::Lost`], and `lost()` resolves). So a node
//! that lost its lease can never move the progress. Taking, renewing and releasing leases is
//! the node's (`node.rs`).
//!
//! After a commit that moves `next_seq`, everything below the lowest `next_seq` of the shard's
//! registered consumers is purged from its stream.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::connect::REQUEST_TIMEOUT;
use super::errors::cause;
use super::names::key_token;
use super::stream_log::{LogShared, ShardHandle};
use crate::log::{
    ConsumerState, LeaseError, MarkerKey, Markers, Position, Progress, ShardId, ShardLease,
};

/// A purge goes ahead only if its list of consumers is younger than this ...
const PURGE_LIST_DEADLINE: Duration = Duration::from_secs(1);
/// ... so a consumer that registers waits this long before it checks that no purge passed its
/// start: a purge listed before the registration has been sent (and answered or timed out) by
/// then.
const REGISTRATION_SETTLE: Duration = Duration::from_millis(
    PURGE_LIST_DEADLINE.as_millis() as u64 + REQUEST_TIMEOUT.as_millis() as u64 + 500,
);
/// Most markers one record holds (a key-value entry takes at most 1 MiB). Firehose allows 500
/// active partitions per stream.
const MAX_MARKERS: usize = 2000;

/// A stored lease record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Stored {
    /// The owner's node id; empty when released or never owned.
    #[serde(default)]
    pub owner: String,
    /// The owner's process incarnation (two processes given one node id differ here).
    #[serde(default)]
    pub inc: String,
    /// One more at every change of owner: the fencing token logs and metrics show.
    #[serde(default)]
    pub epoch: u64,
    /// One more at every write (renewal, take, commit, release): a lease whose counter stands
    /// still for the lease duration, on a taker's own clock, is expired.
    #[serde(default)]
    pub counter: u64,
    /// `None` until the consumer registers (its first `state`).
    #[serde(default)]
    next_seq: Option<u64>,
    #[serde(default)]
    markers: Vec<StoredMarker>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredMarker {
    #[serde(flatten)]
    key: StoredKey,
    seq: u64,
    sub: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StoredKey {
    Partition { query: BTreeMap<String, String>, lambda: BTreeMap<String, String> },
    Errors(String),
}

impl Stored {
    /// Where the consumer reads next; `None` until it registers.
    pub fn next_seq(&self) -> Option<u64> {
        self.next_seq
    }

    fn state(&self) -> ConsumerState {
        let markers = (self.markers.iter())
            .map(|m| {
                let key = match &m.key {
                    StoredKey::Partition { query, lambda } => {
                        MarkerKey::Partition { query: query.clone(), lambda: lambda.clone() }
                    }
                    StoredKey::Errors(kind) => MarkerKey::Errors(kind.clone()),
                };
                (key, Position { seq: m.seq, sub: m.sub })
            })
            .collect();
        ConsumerState { next_seq: self.next_seq.unwrap_or(0), markers }
    }

    fn set_markers(&mut self, markers: &Markers) {
        self.markers = (markers.iter())
            .map(|(key, pos)| StoredMarker {
                key: match key {
                    MarkerKey::Partition { query, lambda } => {
                        StoredKey::Partition { query: query.clone(), lambda: lambda.clone() }
                    }
                    MarkerKey::Errors(kind) => StoredKey::Errors(kind.clone()),
                },
                seq: pos.seq,
                sub: pos.sub,
            })
            .collect();
    }

    /// Markers at or past `end` (one past the shard's last position) are lowered below it;
    /// true when any was.
    fn lower_markers(&mut self, end: u64) -> bool {
        let before = self.markers.clone();
        match end.checked_sub(1).filter(|&last| last > 0) {
            None => self.markers.clear(),
            Some(last) => {
                for marker in self.markers.iter_mut().filter(|m| m.seq > last) {
                    (marker.seq, marker.sub) = (last, u32::MAX);
                }
            }
        }
        self.markers != before
    }

    pub fn encode(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).expect("serializable"))
    }
}

pub(super) fn parse(key: &str, value: &[u8]) -> Result<Stored, LeaseError> {
    serde_json::from_slice(value).map_err(|e| {
        LeaseError::Unavailable(cause(format!("the lease record {key} in NATS is damaged"), e))
    })
}

pub(super) fn lease_key(log_id: &str, shard: ShardId, consumer: &str) -> String {
    format!("l.{log_id}.{shard}.{}", key_token(consumer))
}

/// The stored value of `key` and its revision, if it exists (maybe from a replica).
async fn load(leases: &kv::Store, key: &str) -> Result<Option<(u64, Stored)>, LeaseError> {
    let entry = leases
        .entry(key)
        .await
        .map_err(|e| LeaseError::Unavailable(cause("reading progress from NATS", e)))?;
    match entry {
        Some(entry) if entry.operation == kv::Operation::Put => {
            Ok(Some((entry.revision, parse(key, &entry.value)?)))
        }
        _ => Ok(None),
    }
}

/// The value of `key` and its revision as the bucket's leader has it (a direct get may answer
/// from a replica that is behind).
pub(super) async fn load_from_leader(
    leases: &kv::Store,
    key: &str,
) -> Result<Option<(u64, Stored)>, LeaseError> {
    use async_nats::jetstream::stream::LastRawMessageErrorKind;
    let subject = format!("{}{key}", leases.prefix);
    match leases.stream.get_last_raw_message_by_subject(&subject).await {
        Ok(message) => {
            let removed = message
                .headers
                .get("KV-Operation")
                .is_some_and(|op| op.as_str() == "DEL" || op.as_str() == "PURGE");
            if removed {
                return Ok(None);
            }
            Ok(Some((message.sequence, parse(key, &message.payload)?)))
        }
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
        Err(e) => Err(LeaseError::Unavailable(cause("reading a lease from NATS", e))),
    }
}

/// Every registered consumer's record of `shard`: (key, revision, value).
async fn consumers_of(
    shared: &LogShared,
    shard: ShardId,
) -> Result<Vec<(String, u64, Stored)>, LeaseError> {
    let unavailable = |e: &dyn std::fmt::Display| {
        LeaseError::Unavailable(cause("listing a shard's consumers in NATS", e))
    };
    let prefix = shared.leases.prefix.clone();
    let filter = format!("{prefix}l.{}.{shard}.>", shared.log_id);
    let subjects: Vec<(String, usize)> = shared
        .leases
        .stream
        .info_with_subjects(&filter)
        .await
        .map_err(|e| unavailable(&e))?
        .try_collect()
        .await
        .map_err(|e| unavailable(&e))?;
    let mut out = Vec::new();
    for (subject, _) in subjects {
        let Some(key) = subject.strip_prefix(&prefix) else { continue };
        if let Some((revision, stored)) = load(&shared.leases, key).await? {
            if stored.next_seq.is_some() {
                out.push((key.to_string(), revision, stored));
            }
        }
    }
    Ok(out)
}

/// Who this node is, as lease records name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Owner {
    pub node: String,
    pub inc: String,
}

/// A lease this node holds: the value it last wrote and its revision. Every write goes
/// through it, one at a time.
pub(super) struct Held {
    pub key: String,
    pub stream: String,
    pub log_id: String,
    pub shard: ShardId,
    pub consumer: String,
    pub owner: Owner,
    pub epoch: u64,
    leases: kv::Store,
    current: tokio::sync::Mutex<(u64, Stored)>,
    /// The revision last written, readable without waiting for a write in flight.
    revision: AtomicU64,
    lost: watch::Sender<bool>,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held").field("key", &self.key).field("epoch", &self.epoch).finish()
    }
}

/// Where a lease is: which stream, shard and consumer.
pub(super) struct Place<'a> {
    pub stream: &'a str,
    pub log_id: &'a str,
    pub shard: ShardId,
    pub consumer: &'a str,
}

impl Held {
    /// A lease this node just took: `stored` is what it wrote at `revision`.
    pub fn new(
        place: Place<'_>,
        owner: Owner,
        leases: kv::Store,
        revision: u64,
        stored: Stored,
    ) -> Self {
        let held = Self {
            key: lease_key(place.log_id, place.shard, place.consumer),
            stream: place.stream.to_string(),
            log_id: place.log_id.to_string(),
            shard: place.shard,
            consumer: place.consumer.to_string(),
            epoch: stored.epoch,
            owner,
            leases,
            current: tokio::sync::Mutex::new((revision, stored)),
            revision: AtomicU64::new(revision),
            lost: watch::channel(false).0,
        };
        held.owner_gauge(1.0);
        held
    }

    /// `hydrant_lease_owner{stream,consumer,shard,node}`: 1 while this node holds the lease.
    fn owner_gauge(&self, value: f64) {
        metrics::gauge!("hydrant_lease_owner", "stream" => self.stream.clone(),
            "consumer" => self.consumer.clone(), "shard" => self.shard.to_string(),
            "node" => self.owner.node.clone())
        .set(value);
    }

    pub fn revision(&self) -> u64 {
        self.revision.load(Ordering::Acquire)
    }

    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// The lease is no longer this node's: every handle's `lost()` resolves, commits fail.
    pub fn lose(&self, why: &str) {
        if self.lost.send_replace(true) {
            return;
        }
        self.owner_gauge(0.0);
        tracing::warn!(stream = %self.stream, shard = self.shard.0, consumer = %self.consumer,
            epoch = self.epoch, reason = why, "lease lost");
    }

    fn lost_error(&self) -> LeaseError {
        LeaseError::Lost { shard: self.shard, consumer: self.consumer.clone() }
    }

    /// Writes the record as `change` makes it from the current value (bumping the counter),
    /// fenced: see the module's docs.
    async fn write_locked(
        &self,
        current: &mut (u64, Stored),
        change: &(dyn Fn(&mut Stored) + Send + Sync),
    ) -> Result<(), LeaseError> {
        for attempt in 0..2 {
            if self.is_lost() {
                return Err(self.lost_error());
            }
            let mut next = current.1.clone();
            change(&mut next);
            next.counter = current.1.counter + 1;
            let failed = match self.leases.update(&self.key, next.encode(), current.0).await {
                Ok(revision) => {
                    self.revision.store(revision, Ordering::Release);
                    *current = (revision, next);
                    return Ok(());
                }
                Err(e) => e,
            };
            // Someone else wrote it (10071, or 10164 under concurrency), or the answer did
            // not come: what does the leader hold now?
            match load_from_leader(&self.leases, &self.key).await? {
                Some((revision, stored))
                    if stored.owner == self.owner.node
                        && stored.inc == self.owner.inc
                        && stored.epoch == self.epoch =>
                {
                    self.revision.store(revision, Ordering::Release);
                    let landed = stored == next;
                    *current = (revision, stored);
                    if landed {
                        return Ok(());
                    }
                    if attempt == 1 {
                        return Err(LeaseError::Unavailable(cause(
                            format!("writing the lease {}", self.key),
                            failed,
                        )));
                    }
                }
                Some((_, stored)) => {
                    self.lose(&format!("owner {} epoch {} now", stored.owner, stored.epoch));
                    return Err(self.lost_error());
                }
                None => {
                    self.lose("its record is gone");
                    return Err(self.lost_error());
                }
            }
        }
        unreachable!("the loop returns")
    }

    /// Renews the lease (bumps its counter), unless a write is in flight (which bumps it).
    pub async fn renew(&self) -> Result<(), LeaseError> {
        let Ok(mut current) = self.current.try_lock() else { return Ok(()) };
        self.write_locked(&mut current, &|_| {}).await
    }

    /// Gives the lease up (owner empty), so another node takes it at its next round.
    pub async fn release(&self) -> Result<(), LeaseError> {
        let mut current = self.current.lock().await;
        let released = self
            .write_locked(&mut current, &|s| {
                s.owner.clear();
                s.inc.clear();
            })
            .await;
        if self.lost.send_replace(true) {
            return released;
        }
        self.owner_gauge(0.0);
        tracing::info!(stream = %self.stream, shard = self.shard.0, consumer = %self.consumer,
            epoch = self.epoch, "lease released");
        released
    }
}

/// One consumer's hold on one shard, as the log grants it: its stored progress, written
/// fenced by the lease.
pub(super) struct JetStreamLease {
    shared: Arc<LogShared>,
    held: Arc<Held>,
    handle: Arc<ShardHandle>,
}

impl std::fmt::Debug for JetStreamLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamLease").field("held", &self.held).finish()
    }
}

impl JetStreamLease {
    /// A lease on a shard of `shared`'s topology (the node takes no other: shards are never
    /// removed from it).
    pub fn new(shared: Arc<LogShared>, held: Arc<Held>) -> Self {
        let handle = shared.handle(held.shard).expect("a shard of the log's topology");
        Self { shared, held, handle }
    }

    fn handle(&self) -> &ShardHandle {
        &self.handle
    }

    async fn bounds(&self) -> Result<(u64, u64), LeaseError> {
        self.handle()
            .bounds()
            .await
            .map_err(|e| LeaseError::Unavailable(cause("reading a shard's state from NATS", e)))
    }

    /// Registers the consumer at the oldest retained entry when it has no progress yet, and
    /// lowers markers at or past the shard's end (the log lost its tail: a power loss under a
    /// relaxed `sync_interval`), before anything is read.
    async fn prepare(&self, current: &mut (u64, Stored)) -> Result<(), LeaseError> {
        if current.1.next_seq.is_none() {
            let (first, _) = self.bounds().await?;
            self.held.write_locked(current, &move |s| s.next_seq = Some(first)).await?;
            // A purge listed before the registration may still pass `first`: once no such
            // purge can be under way, the consumer starts at the oldest entry still retained.
            tokio::time::sleep(REGISTRATION_SETTLE).await;
            let (first, _) = self.bounds().await?;
            if current.1.next_seq.is_some_and(|n| n < first) {
                self.held.write_locked(current, &move |s| s.next_seq = Some(first)).await?;
            }
        }
        let (_, end) = self.bounds().await?;
        let mut lowered = current.1.clone();
        if lowered.lower_markers(end) {
            tracing::error!(stream = %self.shared.name, shard = self.held.shard.0,
                key = %self.held.key, end,
                "the log ends before positions a consumer marked as delivered: lowered them");
            self.held.write_locked(current, &move |s| s.markers = lowered.markers.clone()).await?;
        }
        Ok(())
    }

    /// Purges the shard below the lowest `next_seq` of its consumers (a closed shard's too: its
    /// fenced stream takes purges).
    async fn purge(&self) -> Result<(), LeaseError> {
        let listed = tokio::time::Instant::now();
        let consumers = consumers_of(&self.shared, self.held.shard).await?;
        let Some(min) = consumers.iter().filter_map(|(_, _, s)| s.next_seq).min() else {
            return Ok(());
        };
        let (first, _) = self.bounds().await?;
        if min <= first || listed.elapsed() > PURGE_LIST_DEADLINE {
            return Ok(());
        }
        self.handle()
            .stream
            .purge()
            .sequence(min)
            .await
            .map_err(|e| LeaseError::Unavailable(cause("purging delivered records in NATS", e)))?;
        // The room it made shows in `problems()` at once.
        self.bounds().await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl ShardLease for JetStreamLease {
    fn shard(&self) -> ShardId {
        self.held.shard
    }

    fn consumer(&self) -> &str {
        &self.held.consumer
    }

    async fn state(&self) -> Result<ConsumerState, LeaseError> {
        let mut current = self.held.current.lock().await;
        if self.held.is_lost() {
            return Err(self.held.lost_error());
        }
        self.prepare(&mut current).await?;
        Ok(current.1.state())
    }

    async fn commit(&self, progress: Progress) -> Result<(), LeaseError> {
        let refused = |e: LeaseError| {
            if matches!(e, LeaseError::Lost { .. }) {
                metrics::counter!("hydrant_lease_commit_refused_total",
                    "stream" => self.shared.name.clone(), "consumer" => self.held.consumer.clone(),
                    "shard" => self.held.shard.to_string())
                .increment(1);
            }
            e
        };
        let mut current = self.held.current.lock().await;
        if self.held.is_lost() {
            return Err(refused(self.held.lost_error()));
        }
        if let Some(next_seq) = progress.next_seq {
            let (first, end) = self.bounds().await?;
            if !(first..=end).contains(&next_seq) {
                return Err(LeaseError::OutOfRange { next_seq, first, end });
            }
        }
        if progress.markers.as_ref().is_some_and(|m| m.len() > MAX_MARKERS) {
            return Err(LeaseError::Unavailable(cause(
                format!("committing shard {} for {}", self.held.shard, self.held.consumer),
                format!("more than {MAX_MARKERS} buffers have markers"),
            )));
        }
        if current.1.next_seq.is_none() {
            self.prepare(&mut current).await.map_err(refused)?;
        }
        let purges = progress.next_seq.is_some();
        let apply = move |s: &mut Stored| {
            if let Some(markers) = &progress.markers {
                s.set_markers(markers);
            }
            if let Some(next_seq) = progress.next_seq {
                s.next_seq = Some(next_seq);
            }
        };
        self.held.write_locked(&mut current, &apply).await.map_err(refused)?;
        drop(current);
        if purges {
            if let Err(e) = self.purge().await {
                tracing::warn!(stream = %self.shared.name, shard = self.held.shard.0, error = %e,
                    "cannot purge delivered records from jetstream now");
            }
        }
        Ok(())
    }

    /// Resolves once the lease was taken by another node, released, or could not be renewed
    /// for a lease duration.
    fn lost(&self) -> BoxFuture<'static, ()> {
        let mut lost = self.held.lost.subscribe();
        Box::pin(async move {
            if lost.wait_for(|lost| *lost).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

#[cfg(test)]
#[path = "lease_tests.rs"]
mod tests;
