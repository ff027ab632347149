//! The Kinesis data streams of a server: each a log of the core (the same log Firehose
//! delivery streams use, under a name starting `kinesis:`, which no delivery stream can
//! have), listed with their settings in a [`Catalog`] (a file of the data directory, or a
//! bucket a cluster shares), which stores every change before it is answered, so streams
//! survive restarts (kill -9 included) with their records and sequence numbers. In a cluster
//! every node opens every stream's log and follows the changes other nodes make
//! (`streams/follow.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::catalog::{Catalog, CatalogError, StoredStream};
use super::throughput::WriteBudget;
use crate::codec::encryption::KeyRing;
use crate::log::{
    AtRestKeys, LogStore, OpenError, ReadBatch, ReadError, ReadFrom, ReadLimit, ReshardError,
    ShardId, ShardInfo, ShardState, StoreError, StreamLog, StreamSpec,
};

mod follow;
mod reshard;
mod upkeep;

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
    /// Its log's name in the `LogStore`.
    log_name: Option<String>,
    settings: Mutex<StreamSettings>,
    pub log: Arc<dyn StreamLog>,
    /// Each shard's write allowance ([`super::throughput`]) and what it took since the
    /// on-demand scaler last looked, by shard id, made at its first write.
    writes: Mutex<BTreeMap<ShardId, ShardWrites>>,
    /// The delivery streams that read it now ([`super::source::SourceLog`]s alive).
    readers: Arc<Mutex<BTreeSet<String>>>,
    /// When its closed shards expire.
    pub(super) expiry: super::expiry::Expiry,
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

    /// The stream as its catalog keeps it.
    fn stored(&self) -> StoredStream {
        let settings = self.settings();
        StoredStream {
            name: self.name.clone(),
            shards: self.initial_shards,
            created_ms: self.created_ms,
            retention_hours: settings.retention_hours,
            tags: settings.tags,
            mode: settings.mode,
            encryption_key: settings.encryption_key,
            log: self.log_name.clone(),
            deleting: false,
        }
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
    /// The catalog could not be read or written.
    #[error("the list of Kinesis streams: {0}")]
    Catalog(CatalogError),
    /// Other servers kept changing the stream while this one tried to.
    #[error("Stream {0} was changed by other nodes meanwhile; try again")]
    Busy(String),
    /// An argument Kinesis' rules refuse; the text says which and why.
    #[error("{0}")]
    Invalid(String),
    /// A reshard the log refused; the text says why.
    #[error(transparent)]
    Reshard(#[from] ReshardError),
}

impl From<CatalogError> for KinesisError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::InUse(name) => KinesisError::InUse(name),
            CatalogError::Conflict(name) => KinesisError::Busy(name),
            other => KinesisError::Catalog(other),
        }
    }
}

/// How many times a change is tried again after another server changed the stream first.
const RACES: u32 = 6;
/// The first pause before trying again (it doubles each time: 1.6 s in all).
const RACE_PAUSE: std::time::Duration = std::time::Duration::from_millis(25);

/// The Kinesis streams of a server.
#[derive(Debug)]
pub struct KinesisStreams {
    catalog: Arc<dyn Catalog>,
    store: Arc<dyn LogStore>,
    limits: KinesisLimits,
    streams: Mutex<BTreeMap<String, Arc<KinesisStream>>>,
    /// Changes one at a time (this server's and those it follows), so the catalog and the
    /// open streams agree.
    changing: tokio::sync::Mutex<()>,
    /// The upkeep's and the follower's tasks, once started.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The server's keys for encryption at rest (`storage.encryption`).
    keys: Option<Arc<KeyRing>>,
}

impl KinesisStreams {
    /// Opens the streams `catalog` lists (and finishes the deletions a crash cut short).
    pub async fn open(
        catalog: Arc<dyn Catalog>,
        store: Arc<dyn LogStore>,
        limits: KinesisLimits,
        keys: Option<Arc<KeyRing>>,
    ) -> Result<Self, KinesisError> {
        let this = Self {
            catalog,
            store,
            limits,
            streams: Mutex::default(),
            changing: tokio::sync::Mutex::default(),
            tasks: Mutex::default(),
            keys,
        };
        for stored in this.catalog.load().await? {
            if stored.deleting {
                this.finish_delete(&stored).await?;
                continue;
            }
            let stream = this.open_stream(&stored).await?;
            this.lock().insert(stored.name.clone(), Arc::new(stream));
        }
        Ok(this)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<KinesisStream>>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn open_stream(&self, stored: &StoredStream) -> Result<KinesisStream, KinesisError> {
        let at_rest = self
            .at_rest(stored.encryption_key.as_deref())
            .map_err(|why| KinesisError::Invalid(format!("stream {}: {why}", stored.name)))?;
        let spec = StreamSpec { shards: stored.shards, at_rest };
        let log = (self.store.open(&stored.log_name(), spec).await)
            .map_err(|source| KinesisError::Open { stream: stored.name.clone(), source })?;
        Ok(KinesisStream {
            name: stored.name.clone(),
            created_ms: stored.created_ms,
            initial_shards: stored.shards,
            log_name: stored.log.clone(),
            settings: Mutex::new(StreamSettings {
                retention_hours: stored.retention_hours,
                tags: stored.tags.clone(),
                mode: stored.mode,
                encryption_key: stored.encryption_key.clone(),
            }),
            log,
            writes: Mutex::default(),
            readers: Arc::default(),
            expiry: super::expiry::Expiry::default(),
        })
    }

    /// The stream `name`. In a cluster, a stream this node has not heard of yet is looked up
    /// in the catalog (and opened) before the answer is `NotFound`: a create through one node
    /// followed at once by a put through another finds the stream.
    pub async fn get(&self, name: &str) -> Result<Arc<KinesisStream>, KinesisError> {
        if let Some(stream) = self.lock().get(name).cloned() {
            return Ok(stream);
        }
        if self.catalog.shared() {
            if let Some(stored) = self.catalog.find(name).await? {
                let _changing = self.changing.lock().await;
                self.follow_stored(stored).await;
            }
        }
        self.lock().get(name).cloned().ok_or_else(|| KinesisError::NotFound(name.to_string()))
    }

    /// Every stream, by name.
    pub fn all(&self) -> Vec<Arc<KinesisStream>> {
        self.lock().values().cloned().collect()
    }

    /// Creates a stream of `shards` shards; it is in the catalog before it is answered.
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
        let stored = StoredStream {
            name: name.to_string(),
            shards,
            created_ms: crate::clock::now_ms(),
            retention_hours: DEFAULT_RETENTION_HOURS,
            tags,
            mode,
            encryption_key: None,
            log: self.catalog.log_name(name),
            deleting: false,
        };
        // A log under this name that the catalog does not list is left over from a delete
        // that a crash interrupted: the new stream starts empty. (A shared catalog's log
        // names are new for every stream: nothing is left over under them.)
        (self.store.delete(&stored.log_name()).await)
            .map_err(|source| KinesisError::Delete { stream: name.to_string(), source })?;
        // The log first, then the catalog: other nodes open the stream once it is listed, and
        // find its log made (shard streams made by several nodes at once time out). Of two
        // nodes creating one name, each made a log of its own name; the loser deletes its.
        let stream = self.open_stream(&stored).await?;
        if let Err(e) = self.list(&stored).await {
            stream.log.close().await;
            if let Err(deleting) = self.store.delete(&stored.log_name()).await {
                tracing::warn!(stream = name, error = %deleting,
                    "cannot delete the log of a stream that was not created");
            }
            return Err(e);
        }
        self.lock().insert(name.to_string(), Arc::new(stream));
        Ok(())
    }

    /// Stores a new stream in the catalog; a stream whose deleter crashed halfway holds the
    /// name until its deletion is finished here.
    async fn list(&self, stored: &StoredStream) -> Result<(), KinesisError> {
        match self.catalog.create(stored).await {
            Err(CatalogError::InUse(name)) => match self.catalog.find(&name).await? {
                Some(marked) if marked.deleting => {
                    self.finish_delete(&marked).await?;
                    Ok(self.catalog.create(stored).await?)
                }
                _ => Err(KinesisError::InUse(name)),
            },
            other => Ok(other?),
        }
    }

    /// Deletes a stream: it is marked deleted in the catalog first, then its log goes, then
    /// its entry.
    pub async fn delete(&self, name: &str) -> Result<(), KinesisError> {
        self.get(name).await?;
        let _changing = self.changing.lock().await;
        let marked = self
            .change(name, |stream, stored| {
                let readers = stream.readers();
                if !readers.is_empty() {
                    return Err(KinesisError::ReadBy {
                        stream: name.to_string(),
                        readers: readers.join(", "),
                    });
                }
                stored.deleting = true;
                Ok(())
            })
            .await?;
        self.finish_delete(&marked).await
    }

    /// Closes and deletes the log of a stream marked deleted, then its entry.
    async fn finish_delete(&self, marked: &StoredStream) -> Result<(), KinesisError> {
        let open = {
            let mut streams = self.lock();
            let ours = streams.get(&marked.name).is_some_and(|s| s.stored().same_stream(marked));
            if ours {
                streams.remove(&marked.name)
            } else {
                None
            }
        };
        if let Some(stream) = open {
            stream.log.close().await;
        }
        (self.store.delete(&marked.log_name()).await)
            .map_err(|source| KinesisError::Delete { stream: marked.name.clone(), source })?;
        self.catalog.remove(marked).await?;
        Ok(())
    }

    /// Changes stream `name` as it is stored with `change` (which may refuse, and is called
    /// again when another server changed the stream first) and stores it with a
    /// compare-and-set; the caller holds `changing`. Returns what was stored.
    async fn change(
        &self,
        name: &str,
        mut change: impl FnMut(&KinesisStream, &mut StoredStream) -> Result<(), KinesisError>,
    ) -> Result<StoredStream, KinesisError> {
        for race in 0..RACES {
            if race > 0 {
                // What another server stored may take a moment to be read back everywhere.
                tokio::time::sleep(RACE_PAUSE * (1 << race)).await;
            }
            let stream = self
                .lock()
                .get(name)
                .cloned()
                .ok_or_else(|| KinesisError::NotFound(name.to_string()))?;
            let current = stream.stored();
            let mut next = current.clone();
            change(&stream, &mut next)?;
            match self.catalog.replace(&current, &next).await {
                Ok(()) => return Ok(next),
                Err(CatalogError::Conflict(_)) => {
                    // Another server changed it first: take what is stored, and try again.
                    match self.catalog.find(name).await? {
                        Some(stored) if stored.same_stream(&current) && !stored.deleting => {
                            self.follow_stored(stored).await
                        }
                        _ => {
                            self.follow_removed(&current).await;
                            return Err(KinesisError::NotFound(name.to_string()));
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(KinesisError::Busy(name.to_string()))
    }

    /// Changes a stream's settings with `change` (which may refuse, and may be called again
    /// when another server changed them first) and stores them before they take effect.
    pub async fn update<T>(
        &self,
        name: &str,
        mut change: impl FnMut(&mut StreamSettings) -> Result<T, KinesisError>,
    ) -> Result<T, KinesisError> {
        let stream = self.get(name).await?;
        let _changing = self.changing.lock().await;
        let mut answer = None;
        let stored = self
            .change(name, |_, stored| {
                let mut settings = settings_of(stored);
                answer = Some(change(&mut settings)?);
                set_settings(stored, settings);
                Ok(())
            })
            .await?;
        *stream.lock_settings() = settings_of(&stored);
        Ok(answer.expect("set by a change that was stored"))
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
        self.update(name, |settings| {
            settings.encryption_key = key.clone();
            Ok(())
        })
        .await?;
        let stream = self.get(name).await?;
        stream.log.switch_encryption(keys).await.map_err(|e| {
            KinesisError::Invalid(format!("the log could not switch its encryption: {e}"))
        })?;
        tracing::info!(stream = name, key = ?key, "Kinesis stream encryption at rest changed");
        Ok(key)
    }

    /// Stops the upkeep and following, and closes every stream's log (nothing acknowledged
    /// can be lost after it returns).
    pub async fn close(&self) {
        for task in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            task.abort();
        }
        for stream in self.all() {
            stream.log.close().await;
        }
    }
}

/// The settings of a stored stream.
fn settings_of(stored: &StoredStream) -> StreamSettings {
    StreamSettings {
        retention_hours: stored.retention_hours,
        tags: stored.tags.clone(),
        mode: stored.mode,
        encryption_key: stored.encryption_key.clone(),
    }
}

fn set_settings(stored: &mut StoredStream, settings: StreamSettings) {
    stored.retention_hours = settings.retention_hours;
    stored.tags = settings.tags;
    stored.mode = settings.mode;
    stored.encryption_key = settings.encryption_key;
}
