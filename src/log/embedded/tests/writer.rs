//! The writer: group commit, fsync policies and failures, limits, shutdown.

use super::*;

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
