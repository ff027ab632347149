//! A JetStream log's shards over time (issue 14): the [`Lineage`] in the log's registry entry,
//! one JetStream stream per shard, and where each closed shard ends.
//!
//! - **Commit point**: a reshard makes the children's streams, then stores the new lineage
//!   with a compare-and-set on the registry entry. Of two nodes resharding one log at once,
//!   one wins; the other plans again on what won (or is refused by Kinesis' rules).
//! - **The end of a closed shard** is not stored: its stream is *fenced*, moved to a subject
//!   nobody publishes to (`<subject>.closed`), so every later publish and seal to the shard finds
//!   no stream, and the shard ends where its stream ends when it moved, the same for every
//!   node. Whoever first needs the end fences the stream (twice is harmless): the resharding
//!   node at once, or any node whose append, seal or reader meets the closed shard, so a crash
//!   right after the commit loses nothing. (Not JetStream's `sealed`: a sealed stream cannot be
//!   purged, so a closed shard would keep its records after every consumer passed them.)
//! - **Nodes follow** the registry entry (every second, and at once when a publish finds no
//!   stream): appends that went to a shard before its stream was fenced are before its
//!   end; those refused after it are routed again, to the children.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::errors::{cause, is_wrong_last_revision};
use super::names::{stream_name, subject};
use super::store::JetStreamOptions;
use super::stream_log::bounds;
use crate::log::lineage::StoredShard;
use crate::log::{Cause, Lineage, Reshard, ReshardError, ShardId, ShardInfo, ShardState};

/// The largest message a shard takes: Firehose's largest record (1,000 KiB) and its headers.
const MAX_MESSAGE_BYTES: i32 = 1 << 20;
/// How many times a reshard is planned again after losing the registry entry to a writer.
const RESHARD_RACES: usize = 10;

/// A stream's entry in the log registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct LogEntry {
    pub log_id: String,
    /// The shards it was created with.
    pub shards: u32,
    pub created_ms: i64,
    /// Set first when the log is deleted: whoever finds it finishes the deletion.
    #[serde(default)]
    pub deleting: bool,
    /// Every shard, once the log split or merged (absent: `shards` shards, never resharded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<Vec<StoredShard>>,
}

impl LogEntry {
    /// The lineage it stores, every closed shard's end `0` (ends are the shards' own).
    pub fn lineage(&self) -> Result<Lineage, Cause> {
        match &self.lineage {
            None => Ok(Lineage::fixed(self.shards)),
            Some(stored) => Lineage::from_stored(stored, |_| 0)
                .map_err(|e| cause(format!("the log registry's entry of {}", self.log_id), e)),
        }
    }

    /// Every shard id, closed ones included.
    pub fn shard_ids(&self) -> Vec<ShardId> {
        let n = self.lineage.as_ref().map_or(self.shards as usize, Vec::len);
        (0..n as u32).map(ShardId).collect()
    }

    pub fn encode(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).expect("serializable"))
    }
}

/// The configuration of a shard's stream.
pub(super) fn shard_config(
    options: &JetStreamOptions,
    stream: &str,
    log_id: &str,
    shard: ShardId,
) -> stream::Config {
    let metadata = HashMap::from([
        ("hydrant.stream".to_string(), stream.to_string()),
        ("hydrant.shard".to_string(), shard.to_string()),
        ("hydrant.namespace".to_string(), options.namespace.clone()),
    ]);
    stream::Config {
        name: stream_name(log_id, shard),
        subjects: vec![subject(log_id, shard)],
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::New,
        max_bytes: options.max_bytes_per_shard.map_or(-1, |b| b as i64),
        // Nothing undelivered is deleted by age: retention is the consumers' purge.
        max_age: Duration::ZERO,
        duplicate_window: options.duplicate_window,
        allow_direct: true,
        deny_delete: true,
        max_message_size: MAX_MESSAGE_BYTES,
        num_replicas: options.replicas,
        storage: stream::StorageType::File,
        metadata,
        ..Default::default()
    }
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
    /// Whether the lineage says it is closed.
    pub closed: AtomicBool,
    /// Its end once it is closed and its stream fenced (readers wait on it).
    pub end: watch::Sender<Option<u64>>,
}

impl ShardHandle {
    fn new(id: ShardId, subject: String, stream: stream::Stream) -> Self {
        let info = stream.cached_info();
        let state = &info.state;
        let (_, end) = bounds(state);
        let cached = (state.last_sequence, state.bytes, info.config.max_bytes);
        Self {
            id,
            subject,
            acked_end: AtomicU64::new(end - 1),
            full: AtomicBool::new(false),
            cached: Mutex::new(cached),
            closed: AtomicBool::new(false),
            end: watch::channel(None).0,
            stream,
        }
    }

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

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Its end, once known.
    pub fn known_end(&self) -> Option<u64> {
        *self.end.borrow()
    }
}

/// The shards as this node knows them.
#[derive(Debug)]
pub(super) struct Topology {
    /// Closed shards' ends in it are `0`: [`Topology::shards`] fills them in.
    pub lineage: Lineage,
    /// By shard id.
    pub handles: Vec<Arc<ShardHandle>>,
    /// The registry revision it was read at.
    pub revision: u64,
}

impl Topology {
    pub fn handle(&self, id: ShardId) -> Option<&Arc<ShardHandle>> {
        self.handles.get(id.0 as usize)
    }

    /// The open shard that takes `key`.
    pub fn route(&self, key: u128) -> &Arc<ShardHandle> {
        &self.handles[self.lineage.route(key).0 as usize]
    }

    /// The shards, each closed one with its end (until it is known: one past the last
    /// position this node saw).
    pub fn shards(&self) -> Vec<ShardInfo> {
        (self.lineage.shards().iter())
            .map(|info| {
                let mut info = info.clone();
                if let ShardState::Closed { end } = &mut info.state {
                    let handle = &self.handles[info.id.0 as usize];
                    *end = handle
                        .known_end()
                        .unwrap_or_else(|| handle.acked_end.load(Ordering::Acquire) + 1);
                }
                info
            })
            .collect()
    }

    /// The parents of `shard`, each with its end once known.
    pub fn parents(&self, shard: ShardId) -> Vec<(ShardId, Option<u64>)> {
        let Some(info) = self.lineage.get(shard) else { return Vec::new() };
        [info.parent, info.adjacent_parent]
            .into_iter()
            .flatten()
            .map(|p| (p, self.handle(p).and_then(|h| h.known_end())))
            .collect()
    }
}

/// Where a log's registry entry is, and how its shards' streams are made.
#[derive(Debug, Clone)]
pub(super) struct Registry {
    pub js: jetstream::Context,
    pub logs: kv::Store,
    /// `log.<stream token>`.
    pub key: String,
    pub stream: String,
    pub log_id: String,
    pub options: JetStreamOptions,
}

impl Registry {
    /// The entry and its revision, if the log is still registered (and not being deleted).
    pub async fn entry(&self) -> Result<Option<(u64, LogEntry)>, Cause> {
        let entry =
            self.logs.entry(&self.key).await.map_err(|e| cause("reading the log registry", e))?;
        match entry {
            Some(entry) if entry.operation == kv::Operation::Put => {
                let value: LogEntry = serde_json::from_slice(&entry.value).map_err(|e| {
                    cause(format!("the log registry's entry {} is damaged", self.key), e)
                })?;
                Ok((value.log_id == self.log_id && !value.deleting)
                    .then_some((entry.revision, value)))
            }
            _ => Ok(None),
        }
    }

    /// The entry and its revision as the bucket's leader has them (a direct get may answer
    /// from a replica that is behind, and a compare-and-set on it would fail).
    async fn entry_from_leader(&self) -> Result<Option<(u64, LogEntry)>, Cause> {
        use async_nats::jetstream::stream::LastRawMessageErrorKind;
        let subject = format!("{}{}", self.logs.prefix, self.key);
        let message = match self.logs.stream.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => message,
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => return Ok(None),
            Err(e) => return Err(cause("reading the log registry", e)),
        };
        let removed = (message.headers.get("KV-Operation"))
            .is_some_and(|op| op.as_str() == "DEL" || op.as_str() == "PURGE");
        if removed {
            return Ok(None);
        }
        let value: LogEntry = serde_json::from_slice(&message.payload)
            .map_err(|e| cause(format!("the log registry's entry {} is damaged", self.key), e))?;
        Ok((value.log_id == self.log_id && !value.deleting).then_some((message.sequence, value)))
    }

    /// Opens (creating) the stream of `shard`.
    pub async fn shard_stream(&self, shard: ShardId) -> Result<Arc<ShardHandle>, Cause> {
        let config = shard_config(&self.options, &self.stream, &self.log_id, shard);
        let name = config.name.clone();
        let mut tries = 0;
        let stream = loop {
            match self.js.get_or_create_stream(config.clone()).await {
                Ok(stream) => break stream,
                // Two nodes making a child at once: one of them may time out while the other's
                // is being created.
                Err(e) if tries < 3 => {
                    tracing::debug!(stream = %name, error = %e, "cannot open a stream yet");
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => return Err(cause(format!("opening the NATS stream {name}"), e)),
            }
        };
        Ok(Arc::new(ShardHandle::new(shard, subject(&self.log_id, shard), stream)))
    }

    /// The topology of `entry` (read at `revision`), reusing the handles of `known`.
    pub async fn topology(
        &self,
        revision: u64,
        entry: &LogEntry,
        known: &[Arc<ShardHandle>],
    ) -> Result<Topology, Cause> {
        let lineage = entry.lineage()?;
        let mut handles = Vec::with_capacity(lineage.shards().len());
        for info in lineage.shards() {
            let handle = match known.get(info.id.0 as usize) {
                Some(handle) => handle.clone(),
                None => self.shard_stream(info.id).await?,
            };
            if info.state != ShardState::Open {
                handle.closed.store(true, Ordering::Release);
            }
            handles.push(handle);
        }
        Ok(Topology { lineage, handles, revision })
    }

    /// Stores `change` in the registry (the commit point), making the children's streams
    /// first; returns the children and the committed entry with its revision.
    pub async fn commit(
        &self,
        change: Reshard,
    ) -> Result<(Vec<ShardId>, u64, LogEntry), ReshardError> {
        let unavailable = ReshardError::Unavailable;
        for _ in 0..RESHARD_RACES {
            let Some((revision, mut entry)) =
                self.entry_from_leader().await.map_err(unavailable)?
            else {
                return Err(unavailable(cause(&self.stream, "the log was deleted")));
            };
            let mut lineage = entry.lineage().map_err(unavailable)?;
            let children = lineage.apply(change, &[0, 0])?;
            for child in &children {
                self.shard_stream(*child).await.map_err(unavailable)?;
            }
            entry.lineage = Some(lineage.to_stored());
            match self.logs.update(&self.key, entry.encode(), revision).await {
                Ok(revision) => return Ok((children, revision, entry)),
                // Another node changed the entry: plan again on what it stored.
                Err(e) if is_wrong_last_revision(&e) => continue,
                Err(e) => return Err(unavailable(cause("storing a reshard in the registry", e))),
            }
        }
        Err(unavailable(cause(&self.stream, "other nodes kept resharding the log meanwhile")))
    }
}

/// The subject a closed shard's stream moves to: nobody publishes there.
fn closed_subject(subject: &str) -> String {
    format!("{subject}.closed")
}

/// Fences `handle`'s stream (once its shard is closed) and learns its end: one past the
/// fenced stream's last position.
pub(super) async fn fence_closed(
    js: &jetstream::Context,
    handle: &ShardHandle,
) -> Result<u64, Cause> {
    if let Some(end) = handle.known_end() {
        return Ok(end);
    }
    let name = handle.stream.cached_info().config.name.clone();
    let fenced = vec![closed_subject(&handle.subject)];
    let mut tries = 0;
    let info = loop {
        let info = (handle.stream.get_info().await)
            .map_err(|e| cause(format!("reading the NATS stream {name}"), e))?;
        if info.config.subjects == fenced {
            break info;
        }
        let config = stream::Config { subjects: fenced.clone(), ..info.config };
        match js.update_stream(config).await {
            Ok(_) => continue,
            Err(e) if tries >= 5 => {
                return Err(cause(format!("fencing the NATS stream {name}"), e))
            }
            Err(e) => {
                tracing::debug!(stream = %name, error = %e, "cannot fence a stream yet");
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    handle.remember(&info.state, info.config.max_bytes);
    let end = info.state.last_sequence + 1;
    handle.end.send_replace(Some(end));
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_without_a_lineage_reads_as_before_and_one_with_it_keeps_it() {
        let old = r#"{"log_id":"abc","shards":2,"created_ms":5}"#;
        let entry: LogEntry = serde_json::from_str(old).unwrap();
        assert_eq!(entry.lineage().unwrap(), Lineage::fixed(2));
        assert_eq!(entry.shard_ids(), vec![ShardId(0), ShardId(1)]);
        let mut lineage = Lineage::fixed(2);
        lineage.apply(Reshard::Split { shard: ShardId(0), at: 9 }, &[0]).unwrap();
        let entry = LogEntry { lineage: Some(lineage.to_stored()), ..entry };
        let back: LogEntry = serde_json::from_slice(&entry.encode()).unwrap();
        assert_eq!(back.lineage().unwrap(), lineage);
        assert_eq!(back.shard_ids().len(), 4);
    }
}
