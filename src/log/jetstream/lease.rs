//! A consumer's progress in a shard, in the cluster (§1.5, §1.6 of the design): one record per
//! (shard, consumer) in the leases bucket, `l.<log id>.<shard>.<consumer>`, holding `next_seq`
//! and the markers, written whole with compare-and-set on its revision, so markers and
//! `next_seq` always change together.
//!
//! Not yet a lease: one node is granted every shard and nothing takes it away (leases that
//! move between nodes, fenced by owner and epoch, come next). After a commit that moves
//! `next_seq`, everything below the lowest `next_seq` of the shard's consumers is purged from
//! its stream.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

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

/// A stored progress record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Stored {
    next_seq: u64,
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
        ConsumerState { next_seq: self.next_seq, markers }
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
}

fn parse(key: &str, value: &[u8]) -> Result<Stored, LeaseError> {
    serde_json::from_slice(value).map_err(|e| {
        LeaseError::Unavailable(cause(format!("the progress record {key} in NATS is damaged"), e))
    })
}

fn lease_key(log_id: &str, shard: ShardId, consumer: &str) -> String {
    format!("l.{log_id}.{shard}.{}", key_token(consumer))
}

/// The stored value of `key` and its revision, if it exists.
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

/// Every consumer's record of `shard`: (key, revision, value).
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
            out.push((key.to_string(), revision, stored));
        }
    }
    Ok(out)
}

/// Lowers every consumer's markers at or past the end of `shard` (the log lost its tail: a
/// power loss under a relaxed `sync_interval`), before anything is appended or read.
pub(super) async fn lower_markers(
    shared: &LogShared,
    shard: &ShardHandle,
) -> Result<(), LeaseError> {
    let (_, end) = shard
        .bounds()
        .await
        .map_err(|e| LeaseError::Unavailable(cause("reading a shard's state from NATS", e)))?;
    for (key, revision, mut stored) in consumers_of(shared, shard.id).await? {
        if stored.lower_markers(end) {
            tracing::error!(stream = %shared.name, shard = shard.id.0, key = %key, end,
                "the log ends before positions a consumer marked as delivered: lowered them");
            let value = serde_json::to_vec(&stored).expect("serializable");
            shared
                .leases
                .update(&key, value.into(), revision)
                .await
                .map_err(|e| LeaseError::Unavailable(cause("lowering markers in NATS", e)))?;
        }
    }
    Ok(())
}

/// One consumer's hold on one shard.
pub(super) struct JetStreamLease {
    shared: Arc<LogShared>,
    shard: ShardId,
    consumer: String,
    key: String,
    /// What this holder last read or wrote, and its revision.
    current: tokio::sync::Mutex<Option<(u64, Stored)>>,
}

impl std::fmt::Debug for JetStreamLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamLease").field("key", &self.key).finish()
    }
}

impl JetStreamLease {
    pub fn new(shared: Arc<LogShared>, shard: ShardId, consumer: &str) -> Self {
        let key = lease_key(&shared.log_id, shard, consumer);
        Self {
            shared,
            shard,
            consumer: consumer.to_string(),
            key,
            current: tokio::sync::Mutex::new(None),
        }
    }

    fn handle(&self) -> &ShardHandle {
        &self.shared.shards[self.shard.0 as usize]
    }

    async fn bounds(&self) -> Result<(u64, u64), LeaseError> {
        self.handle()
            .bounds()
            .await
            .map_err(|e| LeaseError::Unavailable(cause("reading a shard's state from NATS", e)))
    }

    /// The stored record, registering the consumer at the oldest retained entry when it has
    /// none.
    async fn load_or_register(&self) -> Result<(u64, Stored), LeaseError> {
        loop {
            if let Some(found) = load(&self.shared.leases, &self.key).await? {
                return Ok(found);
            }
            let (first, _) = self.bounds().await?;
            let stored = Stored { next_seq: first, markers: Vec::new() };
            let value = Bytes::from(serde_json::to_vec(&stored).expect("serializable"));
            match self.shared.leases.create(&self.key, value).await {
                Ok(revision) => return self.settle(revision, stored).await,
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(LeaseError::Unavailable(cause("registering a consumer in NATS", e)))
                }
            }
        }
    }

    /// A purge listed before the registration may still pass `stored.next_seq`: once no such
    /// purge can be under way, the consumer starts at the oldest entry still retained.
    async fn settle(&self, revision: u64, mut stored: Stored) -> Result<(u64, Stored), LeaseError> {
        tokio::time::sleep(REGISTRATION_SETTLE).await;
        let (first, _) = self.bounds().await?;
        if first <= stored.next_seq {
            return Ok((revision, stored));
        }
        stored.next_seq = first;
        let value = Bytes::from(serde_json::to_vec(&stored).expect("serializable"));
        let revision = self
            .shared
            .leases
            .update(&self.key, value, revision)
            .await
            .map_err(|e| LeaseError::Unavailable(cause("registering a consumer in NATS", e)))?;
        Ok((revision, stored))
    }

    /// Purges the shard below the lowest `next_seq` of its consumers.
    async fn purge(&self) -> Result<(), LeaseError> {
        let listed = tokio::time::Instant::now();
        let consumers = consumers_of(&self.shared, self.shard).await?;
        let Some(min) = consumers.iter().map(|(_, _, s)| s.next_seq).min() else { return Ok(()) };
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
        self.shard
    }

    fn consumer(&self) -> &str {
        &self.consumer
    }

    async fn state(&self) -> Result<ConsumerState, LeaseError> {
        let mut current = self.current.lock().await;
        let (revision, stored) = self.load_or_register().await?;
        let state = stored.state();
        *current = Some((revision, stored));
        Ok(state)
    }

    async fn commit(&self, progress: Progress) -> Result<(), LeaseError> {
        let mut current = self.current.lock().await;
        if let Some(next_seq) = progress.next_seq {
            let (first, end) = self.bounds().await?;
            if !(first..=end).contains(&next_seq) {
                return Err(LeaseError::OutOfRange { next_seq, first, end });
            }
        }
        if progress.markers.as_ref().is_some_and(|m| m.len() > MAX_MARKERS) {
            return Err(LeaseError::Unavailable(cause(
                format!("committing shard {} for {}", self.shard, self.consumer),
                format!("more than {MAX_MARKERS} buffers have markers"),
            )));
        }
        let (mut revision, mut stored) = match current.take() {
            Some(found) => found,
            None => self.load_or_register().await?,
        };
        // A conflict (someone else wrote the record) is answered by reading it again and
        // applying the same progress once more: with one node per shard there is no owner to
        // lose it to yet.
        for attempt in 0..2 {
            let mut next = stored.clone();
            if let Some(markers) = &progress.markers {
                next.set_markers(markers);
            }
            if let Some(next_seq) = progress.next_seq {
                next.next_seq = next_seq;
            }
            let value = Bytes::from(serde_json::to_vec(&next).expect("serializable"));
            match self.shared.leases.update(&self.key, value, revision).await {
                Ok(written) => {
                    *current = Some((written, next));
                    break;
                }
                Err(e) if attempt == 0 && e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    (revision, stored) = self.load_or_register().await?;
                }
                Err(e) => {
                    return Err(LeaseError::Unavailable(cause("committing progress in NATS", e)))
                }
            }
        }
        drop(current);
        if progress.next_seq.is_some() {
            if let Err(e) = self.purge().await {
                tracing::warn!(stream = %self.shared.name, shard = self.shard.0, error = %e,
                    "cannot purge delivered records from jetstream now");
            }
        }
        Ok(())
    }

    /// Never: nothing takes a shard from its node yet.
    fn lost(&self) -> BoxFuture<'static, ()> {
        Box::pin(futures::future::pending())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(value: &str) -> MarkerKey {
        MarkerKey::Partition {
            query: BTreeMap::from([("k".to_string(), value.to_string())]),
            lambda: BTreeMap::new(),
        }
    }

    #[test]
    fn progress_reads_back_as_it_was_stored() {
        let markers = BTreeMap::from([
            (partition("a"), Position { seq: 4, sub: 2 }),
            (MarkerKey::Errors("processing-failed".into()), Position { seq: 5, sub: 0 }),
        ]);
        let mut stored = Stored { next_seq: 3, markers: Vec::new() };
        stored.set_markers(&markers);
        let json = serde_json::to_vec(&stored).unwrap();
        let back = parse("k", &json).unwrap();
        assert_eq!(back.state(), ConsumerState { next_seq: 3, markers });
    }

    #[test]
    fn markers_at_or_past_the_end_are_lowered_below_it() {
        let markers = BTreeMap::from([
            (partition("in"), Position { seq: 3, sub: 1 }),
            (partition("past"), Position { seq: 9, sub: 2 }),
            (partition("end"), Position { seq: 5, sub: 0 }),
        ]);
        let mut stored = Stored { next_seq: 1, markers: Vec::new() };
        stored.set_markers(&markers);
        assert!(stored.lower_markers(5));
        let lowered = Position { seq: 4, sub: u32::MAX };
        assert_eq!(
            stored.state().markers,
            BTreeMap::from([
                (partition("in"), Position { seq: 3, sub: 1 }),
                (partition("past"), lowered),
                (partition("end"), lowered),
            ])
        );
        assert!(!stored.lower_markers(5), "nothing more to lower");
        assert!(stored.lower_markers(1), "an empty shard keeps no markers");
        assert!(stored.markers.is_empty());
    }
}
