//! Crash, corruption, retention and group-commit tests of the shard log. Each test works in its
//! own temp dir; "crash" = drop every handle and reopen the same directory.

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

pub(crate) fn read_all(shard: &Shard, from: u64) -> Vec<Record> {
    let mut r = shard.reader(from).expect("reader");
    let mut out = Vec::new();
    while let Some(rec) = r.next().expect("read") {
        out.push(rec);
    }
    out
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

#[tokio::test]
async fn acknowledged_records_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut written = Vec::new();
    {
        let shard = open(dir.path(), opts(300));
        let mut seq = 0;
        for batch in 1..=12 {
            let out = append_n(&shard, seq, batch).await;
            assert_eq!(out.first_seq, seq);
            assert_eq!(out.count, batch as usize);
            seq += batch;
            written.extend(read_all(&shard, out.first_seq));
        }
        assert_eq!(shard.next_seq(), seq);
    }
    assert!(segments(dir.path()).len() > 3, "the test must cross segments");
    let shard = open(dir.path(), opts(300));
    assert_eq!(shard.next_seq(), written.len() as u64);
    let reread = read_all(&shard, 0);
    assert_eq!(reread, written);
    for (i, r) in reread.iter().enumerate() {
        assert_eq!(r.seq, i as u64);
        assert_eq!(r.data, payload(i as u64));
    }
    let out = append_n(&shard, written.len() as u64, 3).await;
    assert_eq!(out.first_seq, written.len() as u64);
    assert!(out.arrival_ms >= written.last().unwrap().arrival_ms);
}

#[tokio::test]
async fn every_record_of_one_append_shares_its_arrival_time() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open(dir.path(), opts(1 << 20));
    let out = append_n(&shard, 0, 5).await;
    assert_eq!(out.bytes, (0..5).map(|i| record::frame_len(payload(i).len())).sum::<u64>());
    for r in read_all(&shard, 0) {
        assert_eq!(r.arrival_ms, out.arrival_ms);
    }
}

#[tokio::test]
async fn a_flipped_byte_in_a_sealed_segment_is_reported_as_corrupt_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    {
        let shard = open(dir.path(), opts(200));
        for i in 0..20 {
            append_n(&shard, i, 1).await;
        }
    }
    let segs = segments(dir.path());
    assert!(segs.len() >= 3);
    let victim = &segs[1].1;
    let frames = frame_offsets(victim);
    let frame = frames[1];
    flip_byte(victim, frame + HEADER_LEN as u64 + 2);
    let (path, offset, reason) = expect_corrupt(dir.path());
    assert_eq!(&path, victim);
    assert_eq!(offset, frame);
    assert!(reason.contains("checksum"), "{reason}");
}

#[tokio::test]
async fn a_torn_end_of_a_sealed_segment_is_corrupt_not_truncated() {
    let dir = tempfile::tempdir().unwrap();
    {
        let shard = open(dir.path(), opts(200));
        for i in 0..20 {
            append_n(&shard, i, 1).await;
        }
    }
    let segs = segments(dir.path());
    let victim = &segs[0].1;
    let len = std::fs::metadata(victim).unwrap().len();
    let last = *frame_offsets(victim).last().unwrap();
    OpenOptions::new().write(true).open(victim).unwrap().set_len(len - 3).unwrap();
    let (path, offset, _) = expect_corrupt(dir.path());
    assert_eq!((&path, offset), (victim, last));
    assert_eq!(std::fs::metadata(victim).unwrap().len(), len - 3, "untouched");
}

#[tokio::test]
async fn damage_in_the_middle_of_the_active_segment_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    {
        let shard = open(dir.path(), opts(1 << 20));
        for i in 0..10 {
            append_n(&shard, i, 1).await;
        }
    }
    let (_, active) = segments(dir.path()).pop().unwrap();
    let frames = frame_offsets(&active);
    let len_before = std::fs::metadata(&active).unwrap().len();
    flip_byte(&active, frames[3] + HEADER_LEN as u64);
    let (path, offset, reason) = expect_corrupt(dir.path());
    assert_eq!((path, offset), (active.clone(), frames[3]));
    assert!(reason.contains("sequence number 4"), "{reason}");
    assert_eq!(std::fs::metadata(&active).unwrap().len(), len_before);
}

#[tokio::test]
async fn a_damaged_length_field_in_the_middle_of_the_active_segment_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    {
        let shard = open(dir.path(), opts(1 << 20));
        for i in 0..10 {
            append_n(&shard, i, 1).await;
        }
    }
    let (_, active) = segments(dir.path()).pop().unwrap();
    let frames = frame_offsets(&active);
    // A huge length: the frame "extends past end of file", like a torn write would.
    flip_byte(&active, frames[5] + 3);
    let (_, offset, _) = expect_corrupt(dir.path());
    assert_eq!(offset, frames[5]);
}

#[tokio::test]
async fn a_torn_tail_is_truncated_and_every_earlier_record_is_kept() {
    for cut in [1u64, 10, HEADER_LEN as u64, HEADER_LEN as u64 + 3] {
        let dir = tempfile::tempdir().unwrap();
        let before = {
            let shard = open(dir.path(), opts(1 << 20));
            for i in 0..6 {
                append_n(&shard, i, 1).await;
            }
            read_all(&shard, 0)
        };
        let (_, active) = segments(dir.path()).pop().unwrap();
        let last = *frame_offsets(&active).last().unwrap();
        let f = OpenOptions::new().write(true).open(&active).unwrap();
        f.set_len(last + cut).unwrap();
        drop(f);

        let shard = open(dir.path(), opts(1 << 20));
        assert_eq!(shard.next_seq(), 5, "cut {cut}");
        assert_eq!(read_all(&shard, 0), before[..5].to_vec());
        assert_eq!(std::fs::metadata(&active).unwrap().len(), last);
        let out = append_n(&shard, 5, 2).await;
        assert_eq!(out.first_seq, 5);
        drop(shard);
        let shard = open(dir.path(), opts(1 << 20));
        assert_eq!(read_all(&shard, 0).len(), 7);
    }
}

#[tokio::test]
async fn garbage_after_the_last_frame_is_truncated() {
    for garbage in [vec![0u8; 4096], vec![0xEE; 7], b"not a frame at all, but long enough".to_vec()]
    {
        let dir = tempfile::tempdir().unwrap();
        {
            let shard = open(dir.path(), opts(1 << 20));
            append_n(&shard, 0, 4).await;
        }
        let (_, active) = segments(dir.path()).pop().unwrap();
        let len = std::fs::metadata(&active).unwrap().len();
        let f = OpenOptions::new().write(true).open(&active).unwrap();
        f.write_all_at(&garbage, len).unwrap();
        drop(f);

        let shard = open(dir.path(), opts(1 << 20));
        assert_eq!(shard.next_seq(), 4);
        assert_eq!(std::fs::metadata(&active).unwrap().len(), len);
        assert_eq!(append_n(&shard, 4, 1).await.first_seq, 4);
    }
}

#[tokio::test]
async fn a_headerless_newest_segment_gets_its_header_rewritten() {
    for leftover in [0usize, 5, 16] {
        let dir = tempfile::tempdir().unwrap();
        {
            let shard = open(dir.path(), opts(1 << 20));
            append_n(&shard, 0, 3).await;
        }
        let path = dir.path().join(segment::file_name(3));
        std::fs::write(&path, vec![0u8; leftover]).unwrap();
        let shard = open(dir.path(), opts(1 << 20));
        assert_eq!(shard.next_seq(), 3);
        assert_eq!(append_n(&shard, 3, 2).await.first_seq, 3);
        assert_eq!(read_all(&shard, 0).len(), 5);
        drop(shard);
        let shard = open(dir.path(), opts(1 << 20));
        assert_eq!(read_all(&shard, 2).len(), 3);
        assert_eq!(segments(dir.path()).len(), 2);
    }
}

#[tokio::test]
async fn a_missing_segment_between_two_others_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    {
        let shard = open(dir.path(), opts(200));
        for i in 0..20 {
            append_n(&shard, i, 1).await;
        }
    }
    let segs = segments(dir.path());
    std::fs::remove_file(&segs[1].1).unwrap();
    let (path, _, reason) = expect_corrupt(dir.path());
    assert_eq!(path, segs[2].1);
    assert!(reason.contains("previous segment"), "{reason}");
}

#[tokio::test]
async fn retention_deletes_only_segments_every_registered_consumer_has_passed() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open(dir.path(), opts(200));
    assert_eq!(shard.load_checkpoint("slow").unwrap(), 0);
    for i in 0..30 {
        append_n(&shard, i, 1).await;
    }
    let all = segments(dir.path());
    let bytes_before = shard.disk_bytes();

    // The fast consumer is done, the slow one has read nothing: nothing may go.
    shard.store_checkpoint("fast", 30).unwrap();
    assert_eq!(segments(dir.path()), all);
    assert_eq!(shard.first_seq(), 0);

    // The slow one passes the middle of segment 2: segments 0 and 1 go, 2 stays.
    let mid = all[2].0 + 1;
    shard.store_checkpoint("slow", mid).unwrap();
    assert_eq!(segments(dir.path()), all[2..].to_vec());
    assert_eq!(shard.first_seq(), all[2].0);
    assert!(shard.disk_bytes() < bytes_before);
    assert!(matches!(
        shard.reader(0),
        Err(ReadError::Trimmed { requested: 0, first_retained }) if first_retained == all[2].0
    ));
    assert_eq!(read_all(&shard, mid).len() as u64, 30 - mid);

    // Even when everyone has read everything, the active segment stays.
    shard.store_checkpoint("slow", 30).unwrap();
    assert_eq!(segments(dir.path()).len(), 1);
    assert_eq!(read_all(&shard, shard.first_seq()).len() as u64, 30 - shard.first_seq());
    drop(shard);

    let shard = open(dir.path(), opts(200));
    assert_eq!(shard.load_checkpoint("slow").unwrap(), 30);
    assert_eq!(shard.load_checkpoint("fast").unwrap(), 30);
    assert_eq!(shard.next_seq(), 30);
}

#[tokio::test]
async fn a_consumer_registered_by_loading_holds_back_retention_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let shard = open(dir.path(), opts(200));
        for i in 0..20 {
            append_n(&shard, i, 1).await;
        }
        assert_eq!(shard.load_checkpoint("late").unwrap(), 0);
    }
    let shard = open(dir.path(), opts(200));
    shard.store_checkpoint("early", 20).unwrap();
    assert_eq!(shard.first_seq(), 0);
    assert_eq!(read_all(&shard, 0).len(), 20);
}

#[tokio::test]
async fn checkpoints_beyond_the_end_of_the_log_or_with_bad_names_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open(dir.path(), opts(1 << 20));
    append_n(&shard, 0, 2).await;
    let err = shard.store_checkpoint("a", 3).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(shard.store_checkpoint("../evil", 1).is_err());
    assert!(shard.load_checkpoint("a b").is_err());
    shard.store_checkpoint("a", 2).unwrap();
}

#[tokio::test]
async fn an_exceeded_budget_is_rejected_without_writing_and_freed_by_retention() {
    let dir = tempfile::tempdir().unwrap();
    let budget = DiskBudget::new(Some(700));
    let shard = Shard::open(dir.path(), opts(200), budget.clone()).unwrap();
    assert_eq!(budget.used(), SEGMENT_HEADER_LEN);
    let mut seq = 0;
    let err = loop {
        match shard.append(vec![payload(seq)]).await {
            Ok(out) => seq = out.first_seq + 1,
            Err(e) => break e,
        }
        assert!(seq < 100);
    };
    assert!(matches!(err, AppendError::BudgetExceeded { max: 700, .. }), "{err}");
    assert_eq!(shard.next_seq(), seq);
    assert_eq!(budget.used(), shard.disk_bytes());
    assert_eq!(read_all(&shard, 0).len() as u64, seq);

    shard.store_checkpoint("only", seq).unwrap();
    assert!(budget.used() < 700 / 2, "used {}", budget.used());
    assert_eq!(shard.append(vec![payload(seq)]).await.unwrap().first_seq, seq);

    // The budget is process-wide: a second shard sees the first one's usage.
    let dir2 = tempfile::tempdir().unwrap();
    let other = Shard::open(dir2.path(), opts(200), budget.clone()).unwrap();
    assert_eq!(budget.used(), shard.disk_bytes() + other.disk_bytes());
    drop(shard);
    assert_eq!(budget.used(), other.disk_bytes(), "a closed shard releases its bytes");
}

#[tokio::test]
async fn a_failed_fsync_fails_the_group_and_poisons_the_shard() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let shard =
        Shard::open(dir.path(), with_faults(1 << 20, &faults), DiskBudget::new(None)).unwrap();
    append_n(&shard, 0, 3).await;
    faults.fail.store(true, Ordering::SeqCst);
    let err = shard.append(vec![payload(3), payload(4)]).await.unwrap_err();
    assert!(matches!(err, AppendError::SyncFailed(_)), "{err}");
    assert_eq!(shard.next_seq(), 3);
    assert_eq!(read_all(&shard, 0).len(), 3, "failed records are invisible");
    faults.fail.store(false, Ordering::SeqCst);
    let err = shard.append(vec![payload(3)]).await.unwrap_err();
    assert!(matches!(err, AppendError::Poisoned { .. }), "{err}");
    assert!(err.to_string().contains("restart"));
    assert!(shard.poisoned().is_some());
    drop(shard);

    let shard = open(dir.path(), opts(1 << 20));
    assert_eq!(shard.next_seq(), 3);
    assert_eq!(read_all(&shard, 0).len(), 3);
    assert_eq!(append_n(&shard, 3, 1).await.first_seq, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_one_fsync_per_group() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let shard =
        Shard::open(dir.path(), with_faults(64 << 20, &faults), DiskBudget::new(None)).unwrap();
    // Hold the first group's fsync so that the other 63 requests queue up behind it.
    faults.close_gate();
    let mut tasks = Vec::new();
    for i in 0..64u64 {
        let shard = shard.clone();
        tasks.push(tokio::spawn(
            async move { shard.append(vec![payload(i), payload(i + 1000)]).await },
        ));
    }
    faults.wait_for_blocked_sync();
    tokio::time::sleep(Duration::from_millis(100)).await;
    faults.open_gate();
    let mut firsts = Vec::new();
    for t in tasks {
        let out = t.await.unwrap().unwrap();
        assert_eq!(out.count, 2);
        firsts.push(out.first_seq);
    }
    firsts.sort();
    assert_eq!(firsts, (0..64).map(|i| i * 2).collect::<Vec<_>>());
    let syncs = faults.syncs.load(Ordering::SeqCst);
    assert!(syncs <= 4, "64 appends took {syncs} fdatasyncs");
    assert_eq!(read_all(&shard, 0).len(), 128);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_never_sees_records_beyond_next_seq() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let shard =
        Shard::open(dir.path(), with_faults(1 << 20, &faults), DiskBudget::new(None)).unwrap();
    append_n(&shard, 0, 2).await;
    let mut reader = shard.reader(0).unwrap();
    let mut watch = shard.subscribe();
    assert_eq!(*watch.borrow_and_update(), 2);

    faults.close_gate();
    let pending = tokio::spawn({
        let shard = shard.clone();
        async move { shard.append(vec![payload(2)]).await }
    });
    faults.wait_for_blocked_sync();
    // The frame is written to the file but not yet fsync'd: it must stay invisible.
    let active = segments(dir.path()).pop().unwrap().1;
    assert_eq!(frame_offsets(&active).len(), 3);
    assert_eq!(shard.next_seq(), 2);
    assert_eq!(reader.next().unwrap().unwrap().seq, 0);
    assert_eq!(reader.next().unwrap().unwrap().seq, 1);
    assert!(reader.next().unwrap().is_none());
    assert!(matches!(shard.reader(3), Err(ReadError::BeyondEnd { .. })));
    // ... and the watermark is the in-flight group's arrival time.
    let in_flight = shard.watermark_ms();

    faults.open_gate();
    let out = pending.await.unwrap().unwrap();
    assert_eq!(out.arrival_ms, in_flight);
    watch.changed().await.unwrap();
    assert_eq!(*watch.borrow(), 3);
    let rec = reader.next().unwrap().unwrap();
    assert_eq!((rec.seq, rec.data), (2, payload(2)));
    assert!(reader.next().unwrap().is_none());
}

#[tokio::test]
async fn the_watermark_never_decreases_and_bounds_every_later_arrival() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open(dir.path(), opts(1 << 20));
    let mut last_w = i64::MIN;
    let mut last_arrival = i64::MIN;
    for i in 0..20 {
        let w = shard.watermark_ms();
        assert!(w >= last_w);
        let out = append_n(&shard, i, 1).await;
        assert!(out.arrival_ms >= w, "arrival {} < watermark {w}", out.arrival_ms);
        assert!(out.arrival_ms >= last_arrival);
        last_w = w;
        last_arrival = out.arrival_ms;
    }
    drop(shard);
    // After a restart the clock starts at the last record's arrival time.
    let shard = open(dir.path(), opts(1 << 20));
    assert!(shard.watermark_ms() >= last_arrival);
}

#[tokio::test]
async fn a_reader_follows_segment_rolls_and_deletions_behind_it() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open(dir.path(), opts(150));
    let mut reader = shard.reader(0).unwrap();
    let mut seen = 0u64;
    for round in 0..10u64 {
        append_n(&shard, round * 4, 4).await;
        while let Some(r) = reader.next().unwrap() {
            assert_eq!((r.seq, &r.data), (seen, &payload(seen)));
            seen += 1;
        }
        assert_eq!(seen, (round + 1) * 4);
        shard.store_checkpoint("me", seen).unwrap();
    }
    assert!(shard.first_seq() > 0, "retention ran behind the reader");
}

#[tokio::test]
async fn a_reader_started_inside_a_segment_begins_at_the_requested_record() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open(dir.path(), opts(1 << 20));
    append_n(&shard, 0, 50).await;
    for from in [0, 1, 17, 49, 50] {
        let recs = read_all(&shard, from);
        assert_eq!(recs.len() as u64, 50 - from);
        assert!(recs.iter().zip(from..).all(|(r, s)| r.seq == s && r.data == payload(s)));
    }
}

#[tokio::test]
async fn the_interval_policy_acknowledges_before_fsync_and_syncs_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let opts = LogOptions {
        fsync: FsyncPolicy::Interval(Duration::from_secs(3600)),
        ..with_faults(1 << 20, &faults)
    };
    let shard = Shard::open(dir.path(), opts, DiskBudget::new(None)).unwrap();
    for i in 0..10 {
        append_n(&shard, i, 1).await;
    }
    assert_eq!(faults.syncs.load(Ordering::SeqCst), 0);
    assert_eq!(read_all(&shard, 0).len(), 10);
    shard.close().await;
    assert_eq!(faults.syncs.load(Ordering::SeqCst), 1);
    assert!(matches!(shard.append(vec![payload(10)]).await, Err(AppendError::Closed)));
    drop(shard);
    let shard = open(dir.path(), self::opts(1 << 20));
    assert_eq!(read_all(&shard, 0).len(), 10);
}

#[tokio::test]
async fn the_interval_policy_syncs_when_the_interval_has_passed() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let opts = LogOptions {
        fsync: FsyncPolicy::Interval(Duration::from_millis(20)),
        ..with_faults(1 << 20, &faults)
    };
    let shard = Shard::open(dir.path(), opts, DiskBudget::new(None)).unwrap();
    append_n(&shard, 0, 1).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while faults.syncs.load(Ordering::SeqCst) == 0 {
        assert!(std::time::Instant::now() < deadline, "no interval sync");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn records_larger_than_the_maximum_are_rejected_and_an_empty_append_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open(dir.path(), opts(1 << 20));
    let big = Bytes::from(vec![0u8; record::MAX_PAYLOAD_LEN + 1]);
    let err = shard.append(vec![payload(0), big]).await.unwrap_err();
    assert!(matches!(err, AppendError::RecordTooLarge { index: 1, .. }));
    let out = shard.append(Vec::new()).await.unwrap();
    assert_eq!((out.first_seq, out.count), (0, 0));
    assert_eq!(shard.next_seq(), 0);
}

#[tokio::test]
async fn dropping_the_last_handle_stops_the_writer_thread() {
    fn writer_threads(name: &str) -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|comm| comm.trim_end() == name)
            .count()
    }
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("q7z");
    let shard = open(&dir, opts(1 << 20));
    let clone = shard.clone();
    // The new thread names itself once it runs.
    for _ in 0..5000 {
        if writer_threads("hydrant-log-q7z") == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(writer_threads("hydrant-log-q7z"), 1);
    append_n(&clone, 0, 1).await;
    drop(shard);
    assert_eq!(writer_threads("hydrant-log-q7z"), 1, "a clone keeps it alive");
    drop(clone);
    assert_eq!(writer_threads("hydrant-log-q7z"), 0);
}

#[tokio::test]
async fn a_shard_without_segments_but_with_checkpoints_does_not_reuse_sequence_numbers() {
    let dir = tempfile::tempdir().unwrap();
    {
        let shard = open(dir.path(), opts(1 << 20));
        append_n(&shard, 0, 5).await;
        shard.store_checkpoint("c", 5).unwrap();
    }
    for (_, path) in segments(dir.path()) {
        std::fs::remove_file(path).unwrap();
    }
    let shard = open(dir.path(), opts(1 << 20));
    assert_eq!(shard.next_seq(), 5);
    assert_eq!(append_n(&shard, 5, 1).await.first_seq, 5);
}

#[tokio::test]
async fn a_reader_started_deep_inside_a_large_segment_skips_across_buffer_refills() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open(dir.path(), opts(64 << 20));
    let big = |i: u64| Bytes::from(vec![i as u8; 10_000]);
    shard.append((0..60).map(big).collect()).await.unwrap();
    let recs = read_all(&shard, 55);
    assert_eq!(recs.len(), 5);
    assert!(recs.iter().zip(55..).all(|(r, s)| r.seq == s && r.data == big(s)));
}

/// `cargo test --release -- --ignored --nocapture throughput`: MB/s of 1 KiB records with
/// `FsyncPolicy::Always` and 8 concurrent appenders (PutRecordBatch-sized calls of 500
/// records, then single-record calls).
#[test]
#[ignore]
fn throughput_of_1_kib_records_with_8_concurrent_appenders() {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for (per_call, calls) in [(500usize, 100usize), (1, 4000)] {
        let dir =
            tempfile::tempdir_in(std::env::var("HYDRANT_BENCH_DIR").unwrap_or_else(|_| ".".into()))
                .unwrap();
        let faults = Arc::new(Faults::default());
        let shard =
            Shard::open(dir.path(), with_faults(64 << 20, &faults), DiskBudget::new(None)).unwrap();
        let record = Bytes::from(vec![b'x'; 1024]);
        let start = std::time::Instant::now();
        rt.block_on(async {
            let mut tasks = Vec::new();
            for _ in 0..8 {
                let shard = shard.clone();
                let record = record.clone();
                tasks.push(tokio::spawn(async move {
                    for _ in 0..calls {
                        shard.append(vec![record.clone(); per_call]).await.unwrap();
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
        let secs = start.elapsed().as_secs_f64();
        let records = 8 * calls * per_call;
        let mb = (records * 1024) as f64 / 1e6;
        let syncs = faults.syncs.load(Ordering::SeqCst);
        println!(
            "{per_call} x 1 KiB per append, 8 appenders: {records} records in {secs:.2} s = {:.1} MB/s, {:.0} records/s, {syncs} fdatasyncs ({:.1} appends per sync)",
            mb / secs,
            records as f64 / secs,
            (8 * calls) as f64 / syncs.max(1) as f64
        );
        drop(shard);
    }
}

#[tokio::test]
async fn a_shard_directory_cannot_be_opened_twice_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open(dir.path(), opts(1 << 20));
    assert!(matches!(
        Shard::open(dir.path(), opts(1 << 20), DiskBudget::new(None)),
        Err(OpenError::Locked { .. })
    ));
    drop(shard);
    let shard = open(dir.path(), opts(1 << 20));
    assert_eq!(shard.next_seq(), 0);
}

#[tokio::test]
async fn a_full_disk_rejects_the_group_without_poisoning_the_shard() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let budget = DiskBudget::new(None);
    let shard = Shard::open(dir.path(), with_faults(1 << 20, &faults), budget.clone()).unwrap();
    append_n(&shard, 0, 2).await;
    let used = budget.used();
    faults.disk_full.store(true, Ordering::SeqCst);
    let err = shard.append(vec![payload(2)]).await.unwrap_err();
    assert!(matches!(err, AppendError::DiskFull), "{err}");
    assert_eq!(shard.next_seq(), 2);
    assert_eq!(budget.used(), used, "the reservation is given back");
    faults.disk_full.store(false, Ordering::SeqCst);
    assert_eq!(append_n(&shard, 2, 1).await.first_seq, 2);
    assert!(shard.poisoned().is_none());
    drop(shard);
    let shard = open(dir.path(), opts(1 << 20));
    assert_eq!(read_all(&shard, 0).len(), 3);
}
