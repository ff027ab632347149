//! Readers: committed records only, the watermark, segment rolls and deletions.

use super::*;

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
    assert_eq!(next_record(&mut reader).unwrap().seq, 0);
    assert_eq!(next_record(&mut reader).unwrap().seq, 1);
    assert!(reader.next().unwrap().is_none());
    assert!(matches!(shard.reader(3), Err(ReadError::BeyondEnd { .. })));
    // ... and the watermark is the in-flight group's arrival time.
    let in_flight = shard.watermark_ms();

    faults.open_gate();
    let out = pending.await.unwrap().unwrap();
    assert_eq!(out.arrival_ms, in_flight);
    watch.changed().await.unwrap();
    assert_eq!(*watch.borrow(), 3);
    let rec = next_record(&mut reader).unwrap();
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
        while let Some(r) = next_record(&mut reader) {
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
async fn a_reader_started_deep_inside_a_large_segment_skips_across_buffer_refills() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open(dir.path(), opts(64 << 20));
    let big = |i: u64| Bytes::from(vec![i as u8; 10_000]);
    shard.append((0..60).map(big).collect()).await.unwrap();
    let recs = read_all(&shard, 55);
    assert_eq!(recs.len(), 5);
    assert!(recs.iter().zip(55..).all(|(r, s)| r.seq == s && r.data == big(s)));
}
