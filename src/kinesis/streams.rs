//! The Kinesis data streams of one server: each a log of the core (the same log Firehose
//! delivery streams use, under the name `kinesis:<name>`, which no delivery stream can have),
//! and their list in `<data_dir>/kinesis-streams.json`, written atomically and durably before
//! a create or delete is answered, so streams survive restarts (kill -9 included) with their
//! records and sequence numbers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::throughput::WriteBudget;
use crate::codec::encryption::KeyRing;
use crate::log::{
    AtRestKeys, LogStore, OpenError, ReadBatch, ReadError, ReadFrom, ReadLimit, Reshard,
    ReshardError, ShardId, ShardInfo, ShardState, StoreError, StreamLog, StreamSpec,
};

mod upkeep;

/// The file that lists the streams.
pub const STREAMS_FILE: &str = "kinesis-streams.json";
/// Kinesis' default retention; records are kept at least this long.
pub const DEFAULT_RETENTION_HOURS: u32 = 24;
/// The longest retention Kinesis allows (365 days).
pub const MAX_RETENTION_HOURS: u32 = 8760;

/// What bounds the streams (from `limits:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KinesisLimits {
    pub max_streams: u32,
    pub max_shards_per_stream: u32,
    /// Of all Kinesis streams together: each shard is a log writer thread and open files.
    pub max_shards: u32,
}

/// One Kinesis stream.
#[derive(Debug)]
pub struct KinesisStream {
    pub name: String,
    /// When it was created (Unix milliseconds); iterators carry it, so an iterator of a
    /// deleted stream never reads a new one of the same name.
    pub created_ms: i64,
    /// Shards it was created with (the log keeps the shards its reshards left).
    initial_shards: u32,
    settings: Mutex<StreamSettings>,
    pub log: Arc<dyn StreamLog>,
    /// Each shard's write allowance ([`super::throughput`]) and what it took since the
    /// on-demand scaler last looked, by shard id, made at its first write.
    writes: Mutex<BTreeMap<ShardId, ShardWrites>>,
    /// The delivery streams that read it now ([`super::source::SourceLog`]s alive).
    readers: Arc<Mutex<BTreeSet<String>>>,
}

#[derive(Debug)]
struct ShardWrites {
    budget: WriteBudget,
    records: u64,
    bytes: u64,
}

/// What a stream's owner changes through the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSettings {
    pub retention_hours: u32,
    pub tags: BTreeMap<String, String>,
    pub mode: StreamMode,
    /// The id of the `storage.encryption` key new records are encrypted at rest with
    /// (`StartStreamEncryption`); `None`: not encrypted.
    pub encryption_key: Option<String>,
}

/// Who decides the shard count: the owner (`PROVISIONED`) or the load ([`super::on_demand`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StreamMode {
    #[default]
    Provisioned,
    OnDemand,
}

impl StreamMode {
    /// Kinesis' name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamMode::Provisioned => "PROVISIONED",
            StreamMode::OnDemand => "ON_DEMAND",
        }
    }
}

impl KinesisStream {
    /// Up to `limit` entries of `shard` from `position` on (blocking reads run off the
    /// runtime's workers).
    pub async fn read(
        &self,
        shard: ShardId,
        position: u64,
        limit: ReadLimit,
    ) -> Result<ReadBatch, ReadError> {
        let mut reader = match self.log.reader(shard, ReadFrom::Seq(position)).await {
            Err(ReadError::Trimmed { .. }) => self.log.reader(shard, ReadFrom::Oldest).await?,
            other => other?,
        };
        tokio::task::spawn_blocking(move || reader.read(limit))
            .await
            .map_err(|e| ReadError::Unavailable(crate::log::Cause::new(e)))?
    }

    fn lock_settings(&self) -> std::sync::MutexGuard<'_, StreamSettings> {
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn settings(&self) -> StreamSettings {
        self.lock_settings().clone()
    }

    /// How many shards are open now.
    pub fn open_shard_count(&self) -> u32 {
        self.open_shards().len() as u32
    }

    /// The open shards, to route many records by ([`shard_of`]) with one look at the log.
    pub fn open_shards(&self) -> Vec<ShardInfo> {
        self.log.shards().into_iter().filter(|s| s.state == ShardState::Open).collect()
    }

    /// Takes a record of `bytes` from `shard`'s write allowance; `false` when the shard is over
    /// Kinesis' limits (the record must not be stored).
    pub fn admit(&self, shard: ShardId, bytes: usize) -> bool {
        let now = Instant::now();
        let mut writes = self.writes.lock().unwrap_or_else(|e| e.into_inner());
        let shard = writes.entry(shard).or_insert_with(|| ShardWrites {
            budget: WriteBudget::new(now),
            records: 0,
            bytes: 0,
        });
        let admitted = shard.budget.admit(bytes, now);
        if admitted {
            shard.records += 1;
            shard.bytes += bytes as u64;
        }
        admitted
    }

    /// The log as delivery stream `delivery` reads it (`KinesisStreamAsSource`); the stream
    /// cannot be deleted while the returned log lives.
    pub fn reader(&self, delivery: &str) -> super::source::SourceLog {
        super::source::SourceLog::new(self.log.clone(), &self.name, delivery, self.readers.clone())
    }

    /// The delivery streams that read it now.
    pub fn readers(&self) -> Vec<String> {
        self.readers.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
    }

    /// The records and bytes each shard took since the last call.
    pub fn take_writes(&self) -> BTreeMap<ShardId, (u64, u64)> {
        let mut writes = self.writes.lock().unwrap_or_else(|e| e.into_inner());
        (writes.iter_mut())
            .map(|(id, w)| (*id, (std::mem::take(&mut w.records), std::mem::take(&mut w.bytes))))
            .collect()
    }

    /// One past the last position of `shard` now (where `LATEST` starts).
    pub fn end_of(&self, shard: ShardId) -> u64 {
        (self.log.stats().into_iter()).find(|s| s.shard == shard).map_or(0, |s| s.next_seq)
    }
}

/// The shard of `open` (a stream's [`open_shards`](KinesisStream::open_shards)) whose
/// hash-key range holds `key`.
pub fn shard_of(open: &[ShardInfo], key: u128) -> Option<ShardId> {
    open.iter().find(|s| s.hash_range.contains(key)).map(|s| s.id)
}

/// Why a stream could not be created, found or deleted.
#[derive(Debug, thiserror::Error)]
pub enum KinesisError {
    #[error("Stream {0} not found")]
    NotFound(String),
    #[error("Stream {0} already exists")]
    InUse(String),
    /// Delivery streams read it (`KinesisStreamAsSource`).
    #[error("Stream {stream} is read by delivery stream(s) {readers}: delete them first")]
    ReadBy { stream: String, readers: String },
    /// A limit of `limits:`; the text names it.
    #[error("{0}")]
    LimitExceeded(String),
    #[error("cannot open the log of stream {stream}: {source}")]
    Open { stream: String, source: OpenError },
    #[error("cannot delete the log of stream {stream}: {source}")]
    Delete { stream: String, source: StoreError },
    #[error("cannot write {path}: {source}")]
    Persist { path: String, source: std::io::Error },
    #[error("{path} is damaged: {reason}")]
    Damaged { path: String, reason: String },
    /// An argument Kinesis' rules refuse; the text says which and why.
    #[error("{0}")]
    Invalid(String),
    /// A reshard the log refused; the text says why.
    #[error(transparent)]
    Reshard(#[from] ReshardError),
}

/// One stream in [`STREAMS_FILE`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredStream {
    name: String,
    shards: u32,
    created_ms: i64,
    retention_hours: u32,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    mode: StreamMode,
    /// The key its records are encrypted at rest with, when encryption is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    encryption_key: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredStreams {
    /// Layout of this file (1).
    format: u32,
    streams: Vec<StoredStream>,
}

/// The Kinesis streams of a server.
#[derive(Debug)]
pub struct KinesisStreams {
    data_dir: PathBuf,
    store: Arc<dyn LogStore>,
    limits: KinesisLimits,
    streams: Mutex<BTreeMap<String, Arc<KinesisStream>>>,
    /// Creates and deletes one at a time, so the file always lists what exists.
    changing: tokio::sync::Mutex<()>,
    /// The on-demand scaler's task, once started.
    scaler: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The server's keys for encryption at rest (`storage.encryption`).
    keys: Option<Arc<KeyRing>>,
}

/// The log name of a stream: `:` is in no stream name, so no delivery stream has it.
fn log_name(stream: &str) -> String {
    format!("kinesis:{stream}")
}

impl KinesisStreams {
    /// Opens the streams `data_dir` lists.
    pub async fn open(
        data_dir: &Path,
        store: Arc<dyn LogStore>,
        limits: KinesisLimits,
        keys: Option<Arc<KeyRing>>,
    ) -> Result<Self, KinesisError> {
        let this = Self {
            data_dir: data_dir.to_path_buf(),
            store,
            limits,
            streams: Mutex::default(),
            changing: tokio::sync::Mutex::default(),
            scaler: Mutex::default(),
            keys,
        };
        for stored in this.read_file()?.streams {
            let stream = this.open_stream(&stored).await?;
            this.lock().insert(stored.name.clone(), Arc::new(stream));
        }
        Ok(this)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<KinesisStream>>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn path(&self) -> PathBuf {
        self.data_dir.join(STREAMS_FILE)
    }

    fn read_file(&self) -> Result<StoredStreams, KinesisError> {
        let path = self.path();
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(StoredStreams { format: 1, streams: Vec::new() })
            }
            Err(source) => {
                return Err(KinesisError::Persist { path: path.display().to_string(), source })
            }
        };
        serde_json::from_slice(&text).map_err(|e| KinesisError::Damaged {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    fn write_file(
        &self,
        streams: &BTreeMap<String, Arc<KinesisStream>>,
    ) -> Result<(), KinesisError> {
        let stored = StoredStreams {
            format: 1,
            streams: (streams.values())
                .map(|s| {
                    let settings = s.settings();
                    StoredStream {
                        name: s.name.clone(),
                        shards: s.initial_shards,
                        created_ms: s.created_ms,
                        retention_hours: settings.retention_hours,
                        tags: settings.tags,
                        mode: settings.mode,
                        encryption_key: settings.encryption_key,
                    }
                })
                .collect(),
        };
        let json = serde_json::to_vec_pretty(&stored).expect("plain fields serialize");
        let path = self.path();
        crate::log::embedded::dirs::write_file_private(&path, &json, ".tmp")
            .map_err(|source| KinesisError::Persist { path: path.display().to_string(), source })
    }

    async fn open_stream(&self, stored: &StoredStream) -> Result<KinesisStream, KinesisError> {
        let at_rest = self
            .at_rest(stored.encryption_key.as_deref())
            .map_err(|why| KinesisError::Invalid(format!("stream {}: {why}", stored.name)))?;
        let spec = StreamSpec { shards: stored.shards, at_rest };
        let log = (self.store.open(&log_name(&stored.name), spec).await)
            .map_err(|source| KinesisError::Open { stream: stored.name.clone(), source })?;
        Ok(KinesisStream {
            name: stored.name.clone(),
            created_ms: stored.created_ms,
            initial_shards: stored.shards,
            settings: Mutex::new(StreamSettings {
                retention_hours: stored.retention_hours,
                tags: stored.tags.clone(),
                mode: stored.mode,
                encryption_key: stored.encryption_key.clone(),
            }),
            log,
            writes: Mutex::default(),
            readers: Arc::default(),
        })
    }

    pub fn get(&self, name: &str) -> Result<Arc<KinesisStream>, KinesisError> {
        self.lock().get(name).cloned().ok_or_else(|| KinesisError::NotFound(name.to_string()))
    }

    /// Every stream, by name.
    pub fn all(&self) -> Vec<Arc<KinesisStream>> {
        self.lock().values().cloned().collect()
    }

    /// Creates a stream of `shards` shards; it is listed in the file before it is answered.
    pub async fn create(
        &self,
        name: &str,
        shards: u32,
        tags: BTreeMap<String, String>,
        mode: StreamMode,
    ) -> Result<(), KinesisError> {
        let _changing = self.changing.lock().await;
        let existing = self.all();
        if existing.iter().any(|s| s.name == name) {
            return Err(KinesisError::InUse(name.to_string()));
        }
        let limits = self.limits;
        if existing.len() as u32 >= limits.max_streams {
            return Err(KinesisError::LimitExceeded(format!(
                "this server has {} streams, its most (limits.max_streams {}); delete one or \
                 raise limits.max_streams",
                existing.len(),
                limits.max_streams
            )));
        }
        self.check_shard_limits(name, shards)?;
        // A log under this name that the file does not list is left over from a delete that
        // a crash interrupted: the new stream starts empty.
        (self.store.delete(&log_name(name)).await)
            .map_err(|source| KinesisError::Delete { stream: name.to_string(), source })?;
        let stored = StoredStream {
            name: name.to_string(),
            shards,
            created_ms: crate::clock::now_ms(),
            retention_hours: DEFAULT_RETENTION_HOURS,
            tags,
            mode,
            encryption_key: None,
        };
        let stream = Arc::new(self.open_stream(&stored).await?);
        let mut next: BTreeMap<_, _> = existing.into_iter().map(|s| (s.name.clone(), s)).collect();
        next.insert(name.to_string(), stream);
        if let Err(e) = self.write_file(&next) {
            let _ = self.store.delete(&log_name(name)).await;
            return Err(e);
        }
        *self.lock() = next;
        Ok(())
    }

    /// Deletes a stream: it leaves the file first, then its log goes.
    pub async fn delete(&self, name: &str) -> Result<(), KinesisError> {
        let _changing = self.changing.lock().await;
        let mut next = self.lock().clone();
        let Some(stream) = next.remove(name) else {
            return Err(KinesisError::NotFound(name.to_string()));
        };
        let readers = stream.readers();
        if !readers.is_empty() {
            return Err(KinesisError::ReadBy {
                stream: name.to_string(),
                readers: readers.join(", "),
            });
        }
        self.write_file(&next)?;
        *self.lock() = next;
        stream.log.close().await;
        drop(stream);
        (self.store.delete(&log_name(name)).await)
            .map_err(|source| KinesisError::Delete { stream: name.to_string(), source })
    }

    /// Changes a stream's settings with `change` (which may refuse) and stores them before
    /// they take effect.
    pub async fn update<T>(
        &self,
        name: &str,
        change: impl FnOnce(&mut StreamSettings) -> Result<T, KinesisError>,
    ) -> Result<T, KinesisError> {
        let _changing = self.changing.lock().await;
        let stream = self.get(name)?;
        let mut settings = stream.settings();
        let answer = change(&mut settings)?;
        let previous = std::mem::replace(&mut *stream.lock_settings(), settings);
        let all = self.lock().clone();
        if let Err(e) = self.write_file(&all) {
            *stream.lock_settings() = previous;
            return Err(e);
        }
        Ok(answer)
    }

    /// Encryption at rest of a stream's log: the server's keys (`storage.encryption`) always,
    /// to read what was encrypted before; with `key`, new records are encrypted under it.
    fn at_rest(&self, key: Option<&str>) -> Result<AtRestKeys, String> {
        let Some(key) = key else {
            return Ok(AtRestKeys { ring: self.keys.clone(), encrypt: false });
        };
        let ring = self.keys.as_ref().ok_or(
            "encryption at rest needs keys: set storage.encryption in the server's config file",
        )?;
        let ring = ring.with_active(key).ok_or_else(|| {
            format!(
                "key {key:?} is not in storage.encryption (its keys: {})",
                ring.ids().collect::<Vec<_>>().join(", ")
            )
        })?;
        Ok(AtRestKeys { ring: Some(Arc::new(ring)), encrypt: true })
    }

    /// Starts (`key`: the id of a `storage.encryption` key, or `None` for the active one) or
    /// stops (`start` false) encrypting the records a stream stores from now on; records stored
    /// before stay readable either way. Returns the key used.
    pub async fn set_encryption(
        &self,
        name: &str,
        start: bool,
        key: Option<&str>,
    ) -> Result<Option<String>, KinesisError> {
        let _changing = self.changing.lock().await;
        let stream = self.get(name)?;
        let key = match (start, key, &self.keys) {
            (false, _, _) => None,
            (true, Some(key), _) => Some(key.to_string()),
            (true, None, Some(ring)) => Some(ring.active_id().to_string()),
            (true, None, None) => None,
        };
        if start && key.is_none() {
            return Err(KinesisError::Invalid(
                "encryption at rest needs keys: set storage.encryption in the server's config file"
                    .into(),
            ));
        }
        let keys = self.at_rest(key.as_deref()).map_err(KinesisError::Invalid)?;
        // Stored first: after a crash the stream opens in the new mode (records already
        // stored stay readable with the same keys either way).
        let mut settings = stream.settings();
        let previous = settings.encryption_key.clone();
        settings.encryption_key = key.clone();
        *stream.lock_settings() = settings;
        let all = self.lock().clone();
        if let Err(e) = self.write_file(&all) {
            stream.lock_settings().encryption_key = previous;
            return Err(e);
        }
        stream.log.switch_encryption(keys).await.map_err(|e| {
            KinesisError::Invalid(format!("the log could not switch its encryption: {e}"))
        })?;
        tracing::info!(stream = name, key = ?key, "Kinesis stream encryption at rest changed");
        Ok(key)
    }

    /// Splits or merges shards of a stream; returns the new shards.
    pub async fn reshard(&self, name: &str, change: Reshard) -> Result<Vec<ShardId>, KinesisError> {
        let _changing = self.changing.lock().await;
        let stream = self.get(name)?;
        if let Reshard::Split { .. } = change {
            self.check_shard_limits(name, stream.open_shard_count() + 1)?;
        }
        let children = stream.log.reshard(change).await?;
        tracing::info!(stream = name, ?change, ?children, "resharded Kinesis stream");
        Ok(children)
    }

    /// Takes a stream to `target` open shards of equal ranges (`UNIFORM_SCALING`) with splits
    /// and merges; returns the open shard count before.
    pub async fn scale(&self, name: &str, target: u32) -> Result<u32, KinesisError> {
        let _changing = self.changing.lock().await;
        let stream = self.get(name)?;
        let current = stream.open_shard_count();
        if target > current.saturating_mul(2) || target < current.div_ceil(2) {
            return Err(KinesisError::Invalid(format!(
                "TargetShardCount {target} must be between half ({}) and double ({}) the \
                 stream's {current} open shards",
                current.div_ceil(2),
                current.saturating_mul(2)
            )));
        }
        self.check_shard_limits(name, target)?;
        crate::log::scale(stream.log.as_ref(), target).await?;
        tracing::info!(stream = name, from = current, to = target, "scaled Kinesis stream");
        Ok(current)
    }

    /// Whether stream `name` may have `open` open shards under `limits:`.
    fn check_shard_limits(&self, name: &str, open: u32) -> Result<(), KinesisError> {
        let limits = self.limits;
        if open > limits.max_shards_per_stream {
            return Err(KinesisError::LimitExceeded(format!(
                "{open} open shards is more than a stream may have here (limits.\
                 max_shards_per_stream {}); raise the limit",
                limits.max_shards_per_stream
            )));
        }
        let others: u32 =
            (self.all().iter()).filter(|s| s.name != name).map(|s| s.open_shard_count()).sum();
        if others + open > limits.max_shards {
            return Err(KinesisError::LimitExceeded(format!(
                "{open} open shards would make {} shards of Kinesis streams, more than \
                 limits.max_shards {}; delete streams or raise the limit",
                others + open,
                limits.max_shards
            )));
        }
        Ok(())
    }

    /// Closes every stream's log (nothing acknowledged can be lost after it returns).
    pub async fn close(&self) {
        if let Some(scaler) = self.scaler.lock().unwrap_or_else(|e| e.into_inner()).take() {
            scaler.abort();
        }
        for stream in self.all() {
            stream.log.close().await;
        }
    }
}
