//! The per-shard writer thread: group commit, fsync policy, segment rolls, failure handling.

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
use super::record::encode_frame;
use super::segment::{self, SegmentInfo, SEGMENT_HEADER_LEN};
use super::shard::{lock, now_unix_ms, AppendOutcome, Shared};

/// Upper bound of the frame bytes of one group (a single larger request still forms a group).
pub(crate) const GROUP_MAX_BYTES: u64 = 8 << 20;

pub(crate) type Reply = oneshot::Sender<Result<AppendOutcome, AppendError>>;

pub(crate) enum Msg {
    Append { records: Vec<Bytes>, frame_bytes: u64, reply: Reply },
    Close { reply: oneshot::Sender<()> },
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
        len: u64,
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
            len,
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
            let mut group_bytes = 0;
            let mut msg = Some(first);
            while let Some(m) = msg.take() {
                match m {
                    Msg::Append { records, frame_bytes, reply } => {
                        group_bytes += frame_bytes;
                        self.group.push(Pending { records, frame_bytes, reply });
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

        let written = match &self.fault {
            Some(f) => f.before_write(),
            None => Ok(()),
        }
        .and_then(|()| self.file.write_all_at(&self.buf, self.len));
        if let Err(e) = written {
            budget.release(total);
            let truncated = self.file.set_len(self.len);
            self.clear_in_flight();
            let disk_full = is_disk_full(&e);
            tracing::warn!(dir = %self.shard_dir(), error = %e, bytes = total, "log write failed; truncated back");
            let e = Arc::new(e);
            if let Err(te) = truncated {
                self.poison(format!("write failed ({e}) and truncating back failed ({te})"));
            }
            for p in group.drain(..) {
                let err =
                    if disk_full { AppendError::DiskFull } else { AppendError::Io(e.clone()) };
                let _ = p.reply.send(Err(err));
            }
            self.accepted = group;
            return;
        }

        match self.policy {
            FsyncPolicy::Always => {
                if let Err(e) = Self::sync_file(&self.fault, &self.file) {
                    // The page cache state is unknown now: drop what we can and stop accepting.
                    if self.file.set_len(self.len).is_ok() {
                        budget.release(total);
                    } else {
                        self.shared.disk_bytes.fetch_add(total, Ordering::AcqRel);
                    }
                    self.clear_in_flight();
                    self.poison(format!("fdatasync failed: {e}"));
                    let e = Arc::new(e);
                    for p in group.drain(..) {
                        let _ = p.reply.send(Err(AppendError::SyncFailed(e.clone())));
                    }
                    self.accepted = group;
                    return;
                }
                self.last_sync = Instant::now();
            }
            FsyncPolicy::Interval(_) => self.dirty = true,
        }

        // Commit: publish to readers, then clear the in-flight time, then answer.
        self.len += total;
        self.next_seq = seq;
        self.shared.disk_bytes.fetch_add(total, Ordering::AcqRel);
        {
            let mut st = lock(&self.shared.state);
            if let Some(active) = st.segments.last_mut() {
                active.len = self.len;
            }
            st.committed = seq;
        }
        self.shared.committed.store(seq, Ordering::Release);
        self.shared.notify.send_replace(seq);
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

        if let FsyncPolicy::Interval(every) = self.policy {
            if self.last_sync.elapsed() >= every {
                self.interval_sync();
            }
        }
        if self.len >= self.segment_bytes {
            self.roll();
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
                self.shared.budget.add(SEGMENT_HEADER_LEN);
                self.shared.disk_bytes.fetch_add(SEGMENT_HEADER_LEN, Ordering::AcqRel);
                lock(&self.shared.state).segments.push(SegmentInfo {
                    base,
                    path,
                    len: SEGMENT_HEADER_LEN,
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
