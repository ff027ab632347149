//! Tests of the embedded log, each in its own temp dir ("crash" = drop every handle and reopen
//! the same directory): the shard's mechanics by concern, the log's contract
//! (`crate::log::contract`) on [`EmbeddedStore`], and the on-disk format against a fixture
//! written by an earlier version.

mod contract;
mod fixture;
mod reader;
mod recovery;
mod retention;
mod seals;
mod writer;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bytes::Bytes;

use super::record::{self, HEADER_LEN};
use super::segment::{self, SEGMENT_HEADER_LEN};
use super::*;

pub(crate) fn opts(segment_bytes: u64) -> LogOptions {
    LogOptions { segment_bytes, ..LogOptions::default() }
}

pub(crate) fn open(dir: &Path, opts: LogOptions) -> Shard {
    Shard::open(dir, opts, DiskBudget::new(None)).expect("open shard")
}

pub(crate) fn payload(i: u64) -> Bytes {
    Bytes::from(format!("record-{i}-{}", "x".repeat((i % 7) as usize)))
}

/// Every record from `from` on (the shard must hold no seal there).
pub(crate) fn read_all(shard: &Shard, from: u64) -> Vec<Record> {
    let mut r = shard.reader(from).expect("reader");
    let mut out = Vec::new();
    while let Some(rec) = next_record(&mut r) {
        out.push(rec);
    }
    out
}

/// Every entry from `from` on: records and seals.
pub(crate) fn read_entries(shard: &Shard, from: u64) -> Vec<crate::log::Entry> {
    let mut r = shard.reader(from).expect("reader");
    let mut out = Vec::new();
    while let Some(entry) = r.next().expect("read") {
        out.push(entry);
    }
    out
}

/// The reader's next entry, which must be a record.
pub(crate) fn next_record(r: &mut ShardReader) -> Option<Record> {
    match r.next().expect("read")? {
        crate::log::Entry::Record(record) => Some(record),
        other => panic!("expected a record, read {other:?}"),
    }
}

async fn append_n(shard: &Shard, from: u64, n: u64) -> AppendOutcome {
    shard.append((from..from + n).map(payload).collect()).await.expect("append")
}

fn segments(dir: &Path) -> Vec<(u64, PathBuf)> {
    segment::list(dir).unwrap()
}

fn flip_byte(path: &Path, offset: u64) {
    let f = OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 0x5a;
    f.write_all_at(&b, offset).unwrap();
}

/// Byte offset of every frame in a segment file (which must be valid).
fn frame_offsets(path: &Path) -> Vec<u64> {
    let bytes = std::fs::read(path).unwrap();
    let mut at = SEGMENT_HEADER_LEN as usize;
    let mut out = Vec::new();
    while at < bytes.len() {
        out.push(at as u64);
        match record::decode_frame(&bytes[at..]) {
            record::Decoded::Frame { header, .. } => at += header.frame_len() as usize,
            other => panic!("invalid frame at {at}: {other:?}"),
        }
    }
    out
}

fn expect_corrupt(dir: &Path) -> (PathBuf, u64, String) {
    match Shard::open(dir, opts(1 << 20), DiskBudget::new(None)) {
        Err(OpenError::Corrupt { path, offset, reason }) => {
            let msg = OpenError::Corrupt { path: path.clone(), offset, reason: reason.clone() }
                .to_string();
            assert!(msg.contains("move this segment"), "{msg}");
            (path, offset, reason)
        }
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(_) => panic!("expected Corrupt, the shard opened"),
    }
}

/// Counts fdatasyncs; optionally fails them, or holds the next one until released.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    pub(crate) syncs: AtomicUsize,
    fail: AtomicBool,
    disk_full: AtomicBool,
    gate_closed: Mutex<bool>,
    gate: Condvar,
    waiting: AtomicUsize,
}

impl Faults {
    fn close_gate(&self) {
        *self.gate_closed.lock().unwrap() = true;
    }
    fn open_gate(&self) {
        *self.gate_closed.lock().unwrap() = false;
        self.gate.notify_all();
    }
    /// Waits until the writer is blocked in a sync.
    fn wait_for_blocked_sync(&self) {
        while self.waiting.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl FaultInjector for Faults {
    fn before_write(&self) -> std::io::Result<()> {
        if self.disk_full.load(Ordering::SeqCst) {
            return Err(std::io::Error::from_raw_os_error(28));
        }
        Ok(())
    }

    fn before_sync(&self) -> std::io::Result<()> {
        self.syncs.fetch_add(1, Ordering::SeqCst);
        let mut closed = self.gate_closed.lock().unwrap();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        while *closed {
            closed = self.gate.wait(closed).unwrap();
        }
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("injected fdatasync failure"));
        }
        Ok(())
    }
}

fn with_faults(segment_bytes: u64, faults: &Arc<Faults>) -> LogOptions {
    LogOptions {
        segment_bytes,
        fault: Some(faults.clone() as Arc<dyn FaultInjector>),
        ..LogOptions::default()
    }
}
