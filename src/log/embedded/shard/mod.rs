//! A shard: one ordered, durable log of records with per-shard sequence numbers.
//!
//! [`Shard`] is a cheap handle (clone it freely) around a dedicated writer thread that does
//! group commits; [`ShardReader`] reads committed records with synchronous file I/O.
//! Format and recovery rules: docs/log-format.md.

mod reader;
mod retention;
mod state;

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use bytes::Bytes;
use tokio::sync::{oneshot, watch};

pub use reader::ShardReader;
pub(crate) use state::{lock, now_unix_ms, Clock, LogState, Shared};

use super::budget::DiskBudget;
use super::checkpoint;
use super::error::{AppendError, OpenError, ReadError};
use super::options::LogOptions;
use super::record::{self, MAX_PAYLOAD_LEN};
use super::segment;
use super::writer::{Msg, Writer};
use crate::log::SealKind;

/// What a successful [`Shard::append`] stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Sequence number of the first record; the others follow consecutively.
    pub first_seq: u64,
    /// Number of records stored.
    pub count: usize,
    /// Arrival time given to every record of the call.
    pub arrival_ms: i64,
    /// Bytes added to the log (payloads + 24-byte frame headers).
    pub bytes: u64,
}

struct Handle {
    shared: Arc<Shared>,
    tx: Option<mpsc::Sender<Msg>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Handle {
    /// Closes the channel and waits for the writer to finish the requests it holds, fdatasync
    /// dirty data and exit (at most one group commit: a few milliseconds).
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!(dir = %self.shared.dir.display(), "log writer thread panicked");
            }
        }
    }
}

/// One shard's durable log. Cheap to clone; the writer thread stops when the last clone is
/// dropped (or at [`Shard::close`]).
#[derive(Clone)]
pub struct Shard {
    inner: Arc<Handle>,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("dir", &self.inner.shared.dir)
            .field("next_seq", &self.next_seq())
            .finish()
    }
}

impl Shard {
    /// Opens (creating if missing) the shard directory `dir`, runs recovery and starts the
    /// writer thread `hydrant-log-<dir name>`. Blocking: it reads every retained byte once.
    pub fn open(dir: &Path, opts: LogOptions, budget: Arc<DiskBudget>) -> Result<Shard, OpenError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| OpenError::Io { path, source }
        };
        super::dirs::create_dir_all(dir).map_err(io_err(dir))?;
        let dir = dir.to_path_buf();
        let lock_path = dir.join(LOCK_FILE);
        let lock_file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock_file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(OpenError::Locked { path: lock_path })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }

        let mut consumers = BTreeMap::new();
        for (consumer, path) in checkpoint::list(&dir).map_err(io_err(&dir))? {
            let next_seq = checkpoint::read(&path)
                .map_err(|e| OpenError::Checkpoint { path: path.clone(), reason: e.to_string() })?;
            consumers.insert(consumer, next_seq);
        }
        let highest_checkpoint = consumers.values().copied().max().unwrap_or(0);
        let had_segments = !segment::list(&dir).map_err(io_err(&dir))?.is_empty();
        if !had_segments && highest_checkpoint > 0 {
            tracing::warn!(dir = %dir.display(), next_seq = highest_checkpoint,
                "no segment files but consumers have checkpoints: starting the log at the highest checkpoint");
        }
        let recovered = segment::recover(&dir, highest_checkpoint)?;
        let next_seq = recovered.next_seq;
        for (consumer, cp) in consumers.iter_mut() {
            if *cp > next_seq {
                tracing::error!(dir = %dir.display(), consumer = %consumer, checkpoint = *cp, next_seq,
                    "checkpoint is ahead of the log (records lost after a power loss with fsync interval, or files removed); the consumer resumes at next_seq");
                *cp = next_seq;
            }
        }

        let disk_bytes: u64 = recovered.segments.iter().map(|s| s.len).sum();
        budget.add(disk_bytes);
        let active =
            recovered.segments.last().expect("recovery returns at least one segment").clone();
        let file =
            std::fs::OpenOptions::new().read(true).write(true).open(&active.path).map_err(|e| {
                budget.release(disk_bytes);
                OpenError::Io { path: active.path.clone(), source: e }
            })?;

        let (notify, _) = watch::channel(next_seq);
        let shared = Arc::new(Shared {
            dir: dir.clone(),
            budget: budget.clone(),
            state: Mutex::new(LogState {
                segments: recovered.segments,
                committed: next_seq,
                accounted: true,
            }),
            committed: AtomicU64::new(next_seq),
            clock: Mutex::new(Clock {
                last_ts: recovered.last_arrival_ms.unwrap_or(i64::MIN),
                in_flight: None,
            }),
            notify,
            consumers: Mutex::new(consumers),
            disk_bytes: AtomicU64::new(disk_bytes),
            poisoned: Mutex::new(None),
        });

        let (tx, rx) = mpsc::channel();
        let writer = Writer::new(shared.clone(), rx, &opts, file, &active, next_seq, lock_file);
        let name = format!(
            "hydrant-log-{}",
            dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
        );
        let thread =
            std::thread::Builder::new().name(name).spawn(move || writer.run()).map_err(|e| {
                budget.release(disk_bytes);
                OpenError::Spawn(e)
            })?;
        let shard =
            Shard { inner: Arc::new(Handle { shared, tx: Some(tx), thread: Some(thread) }) };
        {
            let consumers = lock(&shard.inner.shared.consumers);
            if let Some(min) = consumers.values().copied().min() {
                shard.inner.shared.retain(min);
            }
        }
        tracing::debug!(dir = %dir.display(), next_seq, disk_bytes, "shard log opened");
        Ok(shard)
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// Appends `records` in order and resolves once they are durable per the fsync policy,
    /// with their sequence numbers. Requests from many tasks are committed together (one
    /// write, one fdatasync). Dropping the future does not cancel the append.
    pub async fn append(&self, records: Vec<Bytes>) -> Result<AppendOutcome, AppendError> {
        let mut frame_bytes = 0u64;
        for (index, r) in records.iter().enumerate() {
            if r.len() > MAX_PAYLOAD_LEN {
                return Err(AppendError::RecordTooLarge {
                    index,
                    len: r.len(),
                    max: MAX_PAYLOAD_LEN,
                });
            }
            frame_bytes += record::frame_len(r.len());
        }
        if records.is_empty() {
            if let Some(reason) = lock(&self.shared().poisoned).clone() {
                return Err(AppendError::Poisoned { reason });
            }
            return Ok(AppendOutcome {
                first_seq: self.next_seq(),
                count: 0,
                arrival_ms: self.watermark_ms(),
                bytes: 0,
            });
        }
        let (reply, answer) = oneshot::channel();
        let tx = self.inner.tx.as_ref().ok_or(AppendError::Closed)?;
        tx.send(Msg::Append { records, frame_bytes, reply }).map_err(|_| AppendError::Closed)?;
        answer.await.map_err(|_| AppendError::Closed)?
    }

    /// Records a seal (a cut of consumers that buffer by arrival time) at `position`, if the
    /// log ends there: a seal frame, written in order with the appends and durable per the
    /// fsync policy before this returns, at its own sequence number (the records after it
    /// start one later). `Ok(true)` when this call wrote it; `Ok(false)` when an entry is
    /// committed at `position` already (a record, or a seal recorded first: read it to know
    /// which). Never refused for the disk budget.
    pub async fn seal(
        &self,
        position: u64,
        watermark_ms: i64,
        kind: SealKind,
    ) -> Result<bool, AppendError> {
        if position < self.next_seq() {
            return Ok(false);
        }
        let (reply, answer) = oneshot::channel();
        let tx = self.inner.tx.as_ref().ok_or(AppendError::Closed)?;
        tx.send(Msg::Seal { position, watermark_ms, kind, reply })
            .map_err(|_| AppendError::Closed)?;
        answer.await.map_err(|_| AppendError::Closed)?
    }

    /// Stops the writer: requests queued before this call are committed, dirty data is
    /// fdatasync'd, and later appends fail with [`AppendError::Closed`]. Readers keep working.
    /// Dropping the last handle does the same, blocking the dropping thread for at most one
    /// group commit.
    pub async fn close(&self) {
        let (reply, done) = oneshot::channel();
        if let Some(tx) = &self.inner.tx {
            if tx.send(Msg::Close { reply }).is_ok() {
                let _ = done.await;
            }
        }
    }

    /// One past the last committed (durable per policy) entry. Readers never see beyond it.
    pub fn next_seq(&self) -> u64 {
        self.shared().committed.load(Ordering::Acquire)
    }

    /// A time such that every record committed after this call has `arrival_ms >=` it.
    /// Read it *before* draining records up to [`next_seq`](Self::next_seq) to know that no
    /// record with an earlier arrival time can still appear.
    pub fn watermark_ms(&self) -> i64 {
        let mut clock = lock(&self.shared().clock);
        if let Some(ts) = clock.in_flight {
            return ts;
        }
        let w = now_unix_ms().max(clock.last_ts);
        clock.last_ts = w;
        w
    }

    /// A receiver that sees `next_seq` every time records are committed.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared().notify.subscribe()
    }

    /// A reader positioned at `from_seq` (between the oldest retained record and `next_seq`).
    pub fn reader(&self, from_seq: u64) -> Result<ShardReader, ReadError> {
        let st = lock(&self.shared().state);
        let first_retained = st.segments[0].base;
        if from_seq < first_retained {
            return Err(ReadError::Trimmed { requested: from_seq, first_retained });
        }
        if from_seq > st.committed {
            return Err(ReadError::BeyondEnd { requested: from_seq, next_seq: st.committed });
        }
        Ok(ShardReader::new(self.inner.shared.clone(), from_seq, st.committed))
    }

    /// Unregisters `consumer`: its checkpoint and markers files go, and retention no longer
    /// waits for it.
    pub fn forget_checkpoint(&self, consumer: &str) -> Result<(), io::Error> {
        checkpoint::validate_consumer(consumer)?;
        let shared = self.shared();
        let mut consumers = lock(&shared.consumers);
        for file in
            [checkpoint::path(&shared.dir, consumer), super::consumer::path(&shared.dir, consumer)]
        {
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        checkpoint::sync_dir(&shared.dir)?;
        consumers.remove(consumer);
        if let Some(min) = consumers.values().copied().min() {
            shared.retain(min);
        }
        Ok(())
    }

    /// The consumer's stored next sequence number, if it is registered.
    pub fn checkpoint(&self, consumer: &str) -> Option<u64> {
        lock(&self.shared().consumers).get(consumer).copied()
    }

    /// The consumer's stored next sequence number to read. A consumer without a checkpoint is
    /// registered by storing one at the oldest retained record (returned), so retention keeps
    /// its data from now on, across restarts too.
    pub fn load_checkpoint(&self, consumer: &str) -> Result<u64, io::Error> {
        checkpoint::validate_consumer(consumer)?;
        let shared = self.shared();
        let mut consumers = lock(&shared.consumers);
        if let Some(&cp) = consumers.get(consumer) {
            return Ok(cp);
        }
        let first = shared.first_retained();
        checkpoint::store(&shared.dir, consumer, first)?;
        consumers.insert(consumer.to_string(), first);
        Ok(first)
    }

    /// Atomically stores the consumer's next sequence number to read (between `first_seq()`
    /// and `next_seq()`),
    /// then deletes sealed segments that every registered consumer has passed.
    pub fn store_checkpoint(&self, consumer: &str, next_seq: u64) -> Result<(), io::Error> {
        checkpoint::validate_consumer(consumer)?;
        let committed = self.next_seq();
        if next_seq > committed {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "checkpoint {next_seq} is beyond the end of the log (next_seq {committed})"
                ),
            ));
        }
        let shared = self.shared();
        let mut consumers = lock(&shared.consumers);
        let first = shared.first_retained();
        if next_seq < first {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("checkpoint {next_seq} is below the oldest retained record {first}"),
            ));
        }
        checkpoint::store(&shared.dir, consumer, next_seq)?;
        consumers.insert(consumer.to_string(), next_seq);
        if let Some(min) = consumers.values().copied().min() {
            shared.retain(min);
        }
        Ok(())
    }

    /// Bytes of this shard's segment files.
    pub fn disk_bytes(&self) -> u64 {
        self.shared().disk_bytes.load(Ordering::Acquire)
    }

    /// The shard directory.
    pub fn dir(&self) -> &Path {
        &self.inner.shared.dir
    }

    /// Oldest retained sequence number (readers and checkpoints cannot go below it).
    pub fn first_seq(&self) -> u64 {
        self.shared().first_retained()
    }

    /// Why appends are refused, if an earlier failure poisoned the shard.
    pub fn poisoned(&self) -> Option<String> {
        lock(&self.shared().poisoned).clone()
    }
}

/// Held (`flock`) by the writer while the shard is open, so that two writers never share a
/// directory.
pub const LOCK_FILE: &str = "LOCK";
