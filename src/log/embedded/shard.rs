//! A shard: one ordered, durable log of records with per-shard sequence numbers.
//!
//! [`Shard`] is a cheap handle (clone it freely) around a dedicated writer thread that does
//! group commits; [`ShardReader`] reads committed records with synchronous file I/O.
//! Format and recovery rules: docs/log-format.md.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{oneshot, watch};

use super::budget::DiskBudget;
use super::checkpoint;
use super::error::{AppendError, OpenError, ReadError};
use super::options::LogOptions;
use super::record::{self, FrameHeader, Record, HEADER_LEN, MAX_PAYLOAD_LEN};
use super::segment::{self, SegmentInfo, SEGMENT_HEADER_LEN};
use super::writer::{Msg, Writer};

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

/// Locks a mutex, ignoring poisoning (every critical section leaves the data consistent).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Wall clock in Unix epoch milliseconds.
pub(crate) fn now_unix_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

pub(crate) struct LogState {
    /// Oldest first; the last one is active. `len` of the active one is its committed length.
    pub(crate) segments: Vec<SegmentInfo>,
    /// One past the last committed record.
    pub(crate) committed: u64,
    /// Whether this shard's bytes are counted in the budget (until the writer stops).
    pub(crate) accounted: bool,
}

pub(crate) struct Clock {
    pub(crate) last_ts: i64,
    pub(crate) in_flight: Option<i64>,
}

/// State shared by the handles, the writer thread and the readers.
pub(crate) struct Shared {
    pub(crate) dir: PathBuf,
    pub(crate) budget: Arc<DiskBudget>,
    pub(crate) state: Mutex<LogState>,
    pub(crate) committed: AtomicU64,
    pub(crate) clock: Mutex<Clock>,
    pub(crate) notify: watch::Sender<u64>,
    /// Registered consumers and their checkpoints. Held while a checkpoint is written and
    /// retention runs, which serialises both.
    pub(crate) consumers: Mutex<BTreeMap<String, u64>>,
    pub(crate) disk_bytes: AtomicU64,
    pub(crate) poisoned: Mutex<Option<String>>,
}

impl Shared {
    fn first_retained(&self) -> u64 {
        lock(&self.state).segments[0].base
    }

    /// Deletes sealed segments whose records are all below `min_next_seq`.
    fn retain(&self, min_next_seq: u64) {
        let victims: Vec<SegmentInfo> = {
            let mut st = lock(&self.state);
            let n = st.segments.windows(2).take_while(|w| w[1].base <= min_next_seq).count();
            st.segments.drain(..n).collect()
        };
        for seg in victims {
            match std::fs::remove_file(&seg.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(segment = %seg.path.display(), error = %e,
                        "cannot delete a fully consumed segment");
                    continue;
                }
            }
            if let Err(e) = checkpoint::sync_dir(&self.dir) {
                tracing::warn!(dir = %self.dir.display(), error = %e, "fsync of the shard directory failed");
            }
            {
                // Under the state lock, so that a stopping writer releases a consistent total.
                let st = lock(&self.state);
                self.disk_bytes.fetch_sub(seg.len, Ordering::AcqRel);
                if st.accounted {
                    self.budget.release(seg.len);
                }
            }
            tracing::debug!(segment = %seg.path.display(), bytes = seg.len, "deleted consumed segment");
        }
    }
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
        let writer = Writer::new(shared.clone(), rx, &opts, file, active.len, next_seq, lock_file);
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

    /// One past the last committed (durable per policy) record. Readers never see beyond it.
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
        Ok(ShardReader {
            shared: self.inner.shared.clone(),
            next: from_seq,
            visible: st.committed,
            cur: None,
        })
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

/// Reads a segment file through `pread`, never past `limit` (the committed length of the
/// active segment), so that bytes of an uncommitted write are never buffered.
struct Bounded {
    file: File,
    pos: u64,
    limit: u64,
}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = self.limit.saturating_sub(self.pos);
        let n = (buf.len() as u64).min(room) as usize;
        if n == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..n], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Bounded {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(_) => None,
        };
        self.pos = target.ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(self.pos)
    }
}

struct Cursor {
    base: u64,
    path: PathBuf,
    /// First sequence number of the following segment, once this one is known to be sealed.
    end: Option<u64>,
    /// Byte offset of the next frame.
    offset: u64,
    io: BufReader<Bounded>,
}

const READ_BUFFER: usize = 256 << 10;

/// Held (`flock`) by the writer while the shard is open, so that two writers never share a
/// directory.
pub const LOCK_FILE: &str = "LOCK";

/// Reads committed records in order. Synchronous (blocking) file I/O: call it from a blocking
/// context (`spawn_blocking`, a dedicated thread) or accept short blocking reads of the page
/// cache. Survives segment rolls and retention deleting segments behind it.
pub struct ShardReader {
    shared: Arc<Shared>,
    next: u64,
    /// Committed `next_seq` as of the last refresh.
    visible: u64,
    cur: Option<Cursor>,
}

impl std::fmt::Debug for ShardReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardReader")
            .field("dir", &self.shared.dir)
            .field("next", &self.next)
            .finish()
    }
}

impl ShardReader {
    /// Sequence number of the record the next call returns.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// The next committed record, or `None` when caught up with `next_seq()`.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Record>, ReadError> {
        if self.next >= self.visible {
            self.refresh();
            if self.next >= self.visible {
                return Ok(None);
            }
        }
        let switch = match &self.cur {
            None => true,
            Some(c) => c.end == Some(self.next),
        };
        if switch {
            self.open_segment()?;
        }
        let next = self.next;
        let cur = self.cur.as_mut().expect("a segment is open");
        let rec = read_frame(cur, next)?;
        self.next += 1;
        Ok(Some(rec))
    }

    /// Takes a new snapshot of the committed position and of the current segment's bounds.
    fn refresh(&mut self) {
        let st = lock(&self.shared.state);
        self.visible = st.committed;
        if let Some(cur) = &mut self.cur {
            let active = st.segments.last().expect("at least one segment");
            if active.base == cur.base {
                cur.io.get_mut().limit = active.len;
            } else {
                cur.end = st.segments.iter().find(|s| s.base > cur.base).map(|s| s.base);
                cur.io.get_mut().limit = u64::MAX;
            }
        }
    }

    fn trimmed(&self) -> ReadError {
        ReadError::Trimmed { requested: self.next, first_retained: self.shared.first_retained() }
    }

    /// Opens the segment holding `self.next` and positions on that record.
    fn open_segment(&mut self) -> Result<(), ReadError> {
        self.cur = None;
        let (base, path, end, limit) = {
            let st = lock(&self.shared.state);
            let Some(i) = st.segments.iter().rposition(|s| s.base <= self.next) else {
                drop(st);
                return Err(self.trimmed());
            };
            let seg = &st.segments[i];
            let active = i + 1 == st.segments.len();
            let end = st.segments.get(i + 1).map(|s| s.base);
            let limit = if active { seg.len } else { u64::MAX };
            (seg.base, seg.path.clone(), end, limit)
        };
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(self.trimmed()),
            Err(source) => return Err(ReadError::Io { path, source }),
        };
        let mut io = BufReader::with_capacity(READ_BUFFER, Bounded { file, pos: 0, limit });
        let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
        read_exact(&mut io, &mut header, &path, 0)?;
        if segment::parse_header(&header) != Some(base) {
            return Err(ReadError::Corrupt {
                path,
                offset: 0,
                reason: "invalid segment header".into(),
            });
        }
        let mut cur = Cursor { base, path, end, offset: SEGMENT_HEADER_LEN, io };
        // Skip the frames before `next` (reading only their headers).
        let mut seq = base;
        while seq < self.next {
            let h = read_header(&mut cur, seq)?;
            let skip = h.payload_len as i64;
            cur.io
                .seek_relative(skip)
                .map_err(|source| ReadError::Io { path: cur.path.clone(), source })?;
            cur.offset += h.frame_len();
            seq += 1;
        }
        self.cur = Some(cur);
        Ok(())
    }
}

fn read_exact(
    io: &mut BufReader<Bounded>,
    buf: &mut [u8],
    path: &Path,
    offset: u64,
) -> Result<(), ReadError> {
    io.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ReadError::Corrupt {
                path: path.to_path_buf(),
                offset,
                reason: "committed frame ends before the end of the file".into(),
            }
        } else {
            ReadError::Io { path: path.to_path_buf(), source: e }
        }
    })
}

/// Reads and checks the header of the frame with sequence number `seq` at the cursor.
fn read_header(cur: &mut Cursor, seq: u64) -> Result<FrameHeader, ReadError> {
    let mut head = [0u8; HEADER_LEN];
    read_exact(&mut cur.io, &mut head, &cur.path, cur.offset)?;
    let h = FrameHeader::parse(&head);
    let reason = if h.seq != seq {
        format!("expected sequence number {seq}, found {}", h.seq)
    } else if !h.plausible_len() {
        format!("implausible payload length {}", h.payload_len)
    } else {
        return Ok(h);
    };
    Err(ReadError::Corrupt { path: cur.path.clone(), offset: cur.offset, reason })
}

fn read_frame(cur: &mut Cursor, seq: u64) -> Result<Record, ReadError> {
    let h = read_header(cur, seq)?;
    let mut data = vec![0u8; h.payload_len as usize];
    read_exact(&mut cur.io, &mut data, &cur.path, cur.offset)?;
    if !h.verify(&data) {
        return Err(ReadError::Corrupt {
            path: cur.path.clone(),
            offset: cur.offset,
            reason: "checksum mismatch".into(),
        });
    }
    cur.offset += h.frame_len();
    Ok(Record { seq, arrival_ms: h.arrival_ms, data: Bytes::from(data) })
}
