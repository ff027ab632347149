//! The per-shard writer thread: group commit, seal frames, fsync policy, segment rolls,
//! failure handling.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::checkpoint::sync_dir;
use super::error::AppendError;
use super::options::{FaultInjector, FsyncPolicy};
use super::record::{encode_frame, encode_seal, frame_len, SEAL_PAYLOAD_LEN};
use super::segment::{self, SegmentInfo, SEGMENT_HEADER_LEN};
use super::shard::{lock, now_unix_ms, AppendOutcome, Shared};
use crate::log::SealKind;

/// Upper bound of the frame bytes of one group (a single larger request still forms a group).
pub(crate) const GROUP_MAX_BYTES: u64 = 8 << 20;

pub(crate) type Reply = oneshot::Sender<Result<AppendOutcome, AppendError>>;

pub(crate) enum Msg {
    Append {
        records: Vec<Bytes>,
        frame_bytes: u64,
        reply: Reply,
    },
    /// A seal frame at `position` if the log ends there: `Ok(true)` once written, `Ok(false)`
    /// when an entry is at `position` already.
    Seal {
        position: u64,
        watermark_ms: i64,
        kind: SealKind,
        reply: oneshot::Sender<Result<bool, AppendError>>,
    },
    Close {
        reply: oneshot::Sender<()>,
    },
}

/// A seal frame to write (see [`Msg::Seal`]).
struct SealRequest {
    position: u64,
    watermark_ms: i64,
    kind: SealKind,
    reply: oneshot::Sender<Result<bool, AppendError>>,
}

struct Pending {
    records: Vec<Bytes>,
    frame_bytes: u64,
    reply: Reply,
}

pub(crate) struct Writer {
    pub(crate) shared: Arc<Shared>,
    pub(crate) rx: Receiver<Msg>,
    pub(crate) policy: FsyncPolicy,
    pub(crate) segment_bytes: u64,
    pub(crate) fault: Option<Arc<dyn FaultInjector>>,
    /// The active segment.
    pub(crate) file: File,
    /// Bytes of the active segment up to the last committed frame.
    pub(crate) len: u64,
    /// Format version of the active segment: a seal frame goes only into version 2 or later.
    pub(crate) version: u8,
    pub(crate) next_seq: u64,
    pub(crate) buf: Vec<u8>,
    group: Vec<Pending>,
    accepted: Vec<Pending>,
    /// Written but not yet fdatasync'd (Interval policy).
    dirty: bool,
    last_sync: Instant,
    poisoned: Option<String>,
    /// The shard directory's lock, released when the writer exits.
    _dir_lock: File,
}

fn is_disk_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(28)
}

impl Writer {
    pub(crate) fn new(
        shared: Arc<Shared>,
        rx: Receiver<Msg>,
        opts: &super::options::LogOptions,
        file: File,
        active: &SegmentInfo,
        next_seq: u64,
        dir_lock: File,
    ) -> Writer {
        Writer {
            shared,
            rx,
            policy: opts.fsync,
            segment_bytes: opts.segment_bytes.max(SEGMENT_HEADER_LEN + 1),
            fault: opts.fault.clone(),
            file,
            len: active.len,
            version: active.version,
            next_seq,
            buf: Vec::new(),
            group: Vec::new(),
            accepted: Vec::new(),
            dirty: false,
            last_sync: Instant::now(),
            poisoned: None,
            _dir_lock: dir_lock,
        }
    }

    /// Runs until every `Shard` handle is dropped or `close` is requested.
    pub(crate) fn run(mut self) {
        while let Some(first) = self.next_msg() {
            let mut close = None;
            let mut seal = None;
            let mut group_bytes = 0;
            let mut msg = Some(first);
            while let Some(m) = msg.take() {
                match m {
                    Msg::Append { records, frame_bytes, reply } => {
                        group_bytes += frame_bytes;
                        self.group.push(Pending { records, frame_bytes, reply });
                    }
                    Msg::Seal { position, watermark_ms, kind, reply } => {
                        seal = Some(SealRequest { position, watermark_ms, kind, reply });
                        break;
                    }
                    Msg::Close { reply } => {
                        close = Some(reply);
                        break;
                    }
                }
                if group_bytes < GROUP_MAX_BYTES {
                    msg = self.rx.try_recv().ok();
                }
            }
            if !self.group.is_empty() {
                self.commit_group();
            }
            if let Some(seal) = seal {
                self.write_seal(seal);
            }
            if let Some(reply) = close {
                self.finish();
                let _ = reply.send(());
                return;
            }
        }
        self.finish();
    }

    /// Blocks for the next request; under `Interval`, syncs dirty data when the interval is up.
    fn next_msg(&mut self) -> Option<Msg> {
        loop {
            let FsyncPolicy::Interval(every) = self.policy else {
                return self.rx.recv().ok();
            };
            if !self.dirty {
                return self.rx.recv().ok();
            }
            let wait = (self.last_sync + every).saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(wait) {
                Ok(m) => return Some(m),
                Err(RecvTimeoutError::Timeout) => self.interval_sync(),
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Calls the fault hook, then `fdatasync`.
    fn sync_file(fault: &Option<Arc<dyn FaultInjector>>, file: &File) -> io::Result<()> {
        if let Some(f) = fault {
            f.before_sync()?;
        }
        let started = std::time::Instant::now();
        let result = file.sync_data();
        metrics::histogram!("hydrant_log_fsync_seconds").record(started.elapsed().as_secs_f64());
        result
    }

    fn interval_sync(&mut self) {
        if !self.dirty || self.poisoned.is_some() {
            self.dirty = false;
            return;
        }
        if let Err(e) = Self::sync_file(&self.fault, &self.file) {
            self.poison(format!("interval fdatasync failed: {e}"));
        }
        self.dirty = false;
        self.last_sync = Instant::now();
    }

    fn poison(&mut self, reason: String) {
        tracing::error!(dir = %self.shard_dir(), reason = %reason, "shard log poisoned; restart to recover");
        *lock(&self.shared.poisoned) = Some(reason.clone());
        self.poisoned = Some(reason);
    }

    fn shard_dir(&self) -> String {
        self.shared.dir.display().to_string()
    }

    fn clear_in_flight(&self) {
        lock(&self.shared.clock).in_flight = None;
    }

    fn commit_group(&mut self) {
        if let Some(reason) = &self.poisoned {
            for p in self.group.drain(..) {
                let _ = p.reply.send(Err(AppendError::Poisoned { reason: reason.clone() }));
            }
            return;
        }
        // Budget: each request reserves its bytes or is rejected without being written.
        let budget = &self.shared.budget;
        let mut group = std::mem::take(&mut self.accepted);
        for p in self.group.drain(..) {
            match budget.try_reserve(p.frame_bytes) {
                Ok(()) => group.push(p),
                Err(over) => {
                    let _ = p
                        .reply
                        .send(Err(AppendError::BudgetExceeded { used: over.used, max: over.max }));
                }
            }
        }
        if group.is_empty() {
            self.accepted = group;
            return;
        }
        let total: u64 = group.iter().map(|p| p.frame_bytes).sum();

        // One arrival time for the whole group, published as in-flight under the same lock.
        let ts = {
            let mut clock = lock(&self.shared.clock);
            let ts = now_unix_ms().max(clock.last_ts);
            clock.last_ts = ts;
            clock.in_flight = Some(ts);
            ts
        };

        self.buf.clear();
        self.buf.reserve(total as usize);
        let first_seq = self.next_seq;
        let mut seq = first_seq;
        for p in &group {
            for r in &p.records {
                encode_frame(&mut self.buf, seq, ts, r);
                seq += 1;
            }
        }
        debug_assert_eq!(self.buf.len() as u64, total);

        if let Err(e) = self.write_buf(total) {
            self.clear_in_flight();
            for p in group.drain(..) {
                let _ = p.reply.send(Err(e.clone()));
            }
            self.accepted = group;
            return;
        }
        self.publish(seq, total);
        self.clear_in_flight();

        let mut next = first_seq;
        for p in group.drain(..) {
            let count = p.records.len();
            let _ = p.reply.send(Ok(AppendOutcome {
                first_seq: next,
                count,
                arrival_ms: ts,
                bytes: p.frame_bytes,
            }));
            next += count as u64;
        }
        self.accepted = group;
        if self.buf.capacity() > 4 * GROUP_MAX_BYTES as usize {
            // Do not keep the memory of an unusually large request.
            self.buf = Vec::new();
        }
        self.after_commit();
    }

    /// Writes `self.buf` (`total` bytes, already counted in the budget) at the end of the
    /// active segment and syncs it per the policy. On failure the file is truncated back, the
    /// bytes are released, and the error is the one every request of the write gets (a failed
    /// fdatasync, or a failed truncation, poisons the shard).
    fn write_buf(&mut self, total: u64) -> Result<(), AppendError> {
        let written = match &self.fault {
            Some(f) => f.before_write(),
            None => Ok(()),
        }
        .and_then(|()| self.file.write_all_at(&self.buf, self.len));
        if let Err(e) = written {
            self.shared.budget.release(total);
            let truncated = self.file.set_len(self.len);
            let disk_full = is_disk_full(&e);
            tracing::warn!(dir = %self.shard_dir(), error = %e, bytes = total, "log write failed; truncated back");
            let e = Arc::new(e);
            if let Err(te) = truncated {
                self.poison(format!("write failed ({e}) and truncating back failed ({te})"));
            }
            return Err(if disk_full { AppendError::DiskFull } else { AppendError::Io(e) });
        }
        match self.policy {
            FsyncPolicy::Always => {
                if let Err(e) = Self::sync_file(&self.fault, &self.file) {
                    // The page cache state is unknown now: drop what we can and stop accepting.
                    if self.file.set_len(self.len).is_ok() {
                        self.shared.budget.release(total);
                    } else {
                        self.shared.disk_bytes.fetch_add(total, Ordering::AcqRel);
                    }
                    self.poison(format!("fdatasync failed: {e}"));
                    return Err(AppendError::SyncFailed(Arc::new(e)));
                }
                self.last_sync = Instant::now();
            }
            FsyncPolicy::Interval(_) => self.dirty = true,
        }
        Ok(())
    }

    /// Makes the `total` bytes just written committed: readers see entries up to `next_seq`.
    fn publish(&mut self, next_seq: u64, total: u64) {
        self.len += total;
        self.next_seq = next_seq;
        self.shared.disk_bytes.fetch_add(total, Ordering::AcqRel);
        {
            let mut st = lock(&self.shared.state);
            if let Some(active) = st.segments.last_mut() {
                active.len = self.len;
            }
            st.committed = next_seq;
        }
        self.shared.committed.store(next_seq, Ordering::Release);
        self.shared.notify.send_replace(next_seq);
    }

    /// After a commit: the interval sync when it is due, and a roll when the segment is full.
    fn after_commit(&mut self) {
        if let FsyncPolicy::Interval(every) = self.policy {
            if self.last_sync.elapsed() >= every {
                self.interval_sync();
            }
        }
        if self.len >= self.segment_bytes {
            self.roll();
        }
    }

    /// Writes a seal frame at the request's position if the log ends there, as one commit of
    /// its own (one write, one fdatasync under `Always`). Its bytes are counted in the budget
    /// but never refused for it (as segment headers): delivery needs seals to move on, and
    /// moving on is what frees space. Only written when a consumer cuts (a window that ended
    /// while it was caught up, a drain), never per record.
    fn write_seal(&mut self, req: SealRequest) {
        let SealRequest { position, watermark_ms, kind, reply } = req;
        if let Some(reason) = &self.poisoned {
            let _ = reply.send(Err(AppendError::Poisoned { reason: reason.clone() }));
            return;
        }
        if position != self.next_seq {
            let _ = reply.send(Ok(false));
            return;
        }
        if !segment::holds_seals(self.version) {
            if let Err(e) = self.upgrade_active_segment() {
                let _ = reply.send(Err(AppendError::Io(Arc::new(e))));
                return;
            }
        }
        let total = frame_len(SEAL_PAYLOAD_LEN);
        self.shared.budget.add(total);
        self.buf.clear();
        encode_seal(&mut self.buf, position, watermark_ms, kind);
        if let Err(e) = self.write_buf(total) {
            let _ = reply.send(Err(e));
            return;
        }
        self.publish(position + 1, total);
        let _ = reply.send(Ok(true));
        self.after_commit();
    }

    /// Makes the active segment one that may hold seals: a segment an earlier version created
    /// is left as it is (sealed), and the next frame goes into a new one; an empty one gets the
    /// current header in place (nothing to keep, and a new segment would take its name).
    fn upgrade_active_segment(&mut self) -> io::Result<()> {
        if self.len == SEGMENT_HEADER_LEN {
            let base = self.next_seq;
            self.file.write_all_at(&segment::encode_header(base), 0)?;
            Self::sync_file(&self.fault, &self.file)?;
            self.version = segment::VERSION;
            if let Some(active) = lock(&self.shared.state).segments.last_mut() {
                active.version = segment::VERSION;
            }
            return Ok(());
        }
        self.roll();
        if segment::holds_seals(self.version) {
            Ok(())
        } else {
            Err(io::Error::other("cannot start a segment that may hold seals"))
        }
    }

    /// Seals the active segment and starts `{next_seq:020}.seg`.
    fn roll(&mut self) {
        if self.poisoned.is_some() {
            return;
        }
        if self.dirty {
            self.interval_sync();
            if self.poisoned.is_some() {
                return;
            }
        }
        let dir = self.shared.dir.clone();
        let base = self.next_seq;
        let created = segment::create(&dir, base).and_then(|(file, path)| {
            let synced = Self::sync_file(&self.fault, &file).and_then(|()| sync_dir(&dir));
            match synced {
                Ok(()) => Ok((file, path)),
                Err(e) => {
                    drop(file);
                    let _ = std::fs::remove_file(&path);
                    Err(e)
                }
            }
        });
        match created {
            Ok((file, path)) => {
                self.file = file;
                self.len = SEGMENT_HEADER_LEN;
                self.version = segment::VERSION;
                self.shared.budget.add(SEGMENT_HEADER_LEN);
                self.shared.disk_bytes.fetch_add(SEGMENT_HEADER_LEN, Ordering::AcqRel);
                lock(&self.shared.state).segments.push(SegmentInfo {
                    base,
                    path,
                    len: SEGMENT_HEADER_LEN,
                    version: segment::VERSION,
                });
                tracing::debug!(dir = %dir.display(), base, "rolled to a new segment");
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), base, error = %e,
                    "cannot start a new segment; appending to the current one and retrying later");
            }
        }
    }

    /// Flushes dirty data and releases this shard's bytes from the budget.
    fn finish(&mut self) {
        if self.dirty {
            self.interval_sync();
        }
        let mut st = lock(&self.shared.state);
        if st.accounted {
            st.accounted = false;
            self.shared.budget.release(self.shared.disk_bytes.load(Ordering::Acquire));
        }
        tracing::debug!(dir = %self.shard_dir(), next_seq = self.next_seq, "log writer stopped");
    }
}
