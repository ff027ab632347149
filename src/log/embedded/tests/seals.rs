//! Seal frames: a cut recorded in the shard at its own sequence number, the first one at a
//! position wins, read back after a restart; segments written before seals existed.

use crate::log::{Entry, Seal, SealKind};

use super::*;

fn seal_at(position: u64, watermark_ms: i64, kind: SealKind) -> Entry {
    Entry::Seal(Seal { position, watermark_ms, kind })
}

fn positions(entries: &[Entry]) -> Vec<u64> {
    (entries.iter())
        .map(|e| match e {
            Entry::Record(r) => r.seq,
            Entry::Seal(s) => s.position,
            e => panic!("{e:?}"),
        })
        .collect()
}

/// Rewrites a segment's magic as an earlier version wrote it (the frames are the same).
fn make_version_1(path: &Path) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(segment::MAGIC_V1, 0).unwrap();
}

#[tokio::test]
async fn a_seal_takes_the_next_position_and_reads_back_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open(dir.path(), opts(1 << 20));
    append_n(&shard, 0, 2).await;
    assert!(shard.seal(2, 1_000, SealKind::Window).await.unwrap());
    assert_eq!(shard.next_seq(), 3);
    let out = shard.append(vec![payload(3)]).await.unwrap();
    assert_eq!(out.first_seq, 3, "the record after the seal takes the next position");
    assert!(shard.seal(4, 2_000, SealKind::Drain).await.unwrap());
    let before = read_entries(&shard, 0);
    assert_eq!(positions(&before), [0, 1, 2, 3, 4]);
    assert_eq!(before[2], seal_at(2, 1_000, SealKind::Window));
    assert_eq!(before[4], seal_at(4, 2_000, SealKind::Drain));
    drop(shard);

    let shard = open(dir.path(), opts(1 << 20));
    assert_eq!(shard.next_seq(), 5);
    assert_eq!(read_entries(&shard, 0), before);
    assert_eq!(read_entries(&shard, 2)[0], before[2], "a reader can start at a seal");
    // The clock restarts at the last record's arrival, not at a seal's watermark.
    let Entry::Record(last) = &before[3] else { panic!() };
    assert!(shard.watermark_ms() >= last.arrival_ms);
}

#[tokio::test]
async fn a_seal_where_an_entry_is_committed_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open(dir.path(), opts(1 << 20));
    append_n(&shard, 0, 2).await;
    assert!(!shard.seal(1, 1_000, SealKind::Window).await.unwrap(), "a record is at 1");
    assert!(shard.seal(2, 1_000, SealKind::Window).await.unwrap());
    assert!(!shard.seal(2, 9_000, SealKind::Drain).await.unwrap(), "the first seal holds");
    assert_eq!(shard.next_seq(), 3);
    assert_eq!(read_entries(&shard, 2), [seal_at(2, 1_000, SealKind::Window)]);
}

#[tokio::test]
async fn seals_are_counted_in_the_budget_but_never_refused_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let budget = DiskBudget::new(Some(SEGMENT_HEADER_LEN + 100));
    let shard = Shard::open(dir.path(), opts(1 << 20), budget.clone()).unwrap();
    shard.append(vec![Bytes::from(vec![7u8; 60])]).await.unwrap();
    assert!(shard.append(vec![Bytes::from(vec![7u8; 60])]).await.is_err(), "the budget is full");
    let used = budget.used();
    assert!(shard.seal(1, 1, SealKind::Drain).await.unwrap());
    let frame = record::frame_len(record::SEAL_PAYLOAD_LEN);
    assert_eq!(budget.used(), used + frame);
    assert_eq!(shard.disk_bytes(), used + frame);
}

#[tokio::test]
async fn a_torn_seal_frame_at_the_tail_is_cut_like_a_torn_record() {
    let dir = tempfile::tempdir().unwrap();
    {
        let shard = open(dir.path(), opts(1 << 20));
        append_n(&shard, 0, 3).await;
        assert!(shard.seal(3, 1_000, SealKind::Drain).await.unwrap());
    }
    let active = segments(dir.path()).pop().unwrap().1;
    let len = std::fs::metadata(&active).unwrap().len();
    for cut in [1, 10, 24] {
        OpenOptions::new().write(true).open(&active).unwrap().set_len(len - cut).unwrap();
        let shard = open(dir.path(), opts(1 << 20));
        assert_eq!(shard.next_seq(), 3, "cut {cut}");
        assert_eq!(read_all(&shard, 0).len(), 3);
        drop(shard);
        assert_eq!(std::fs::metadata(&active).unwrap().len(), len - 25);
        // Written again for the next cut.
        let shard = open(dir.path(), opts(1 << 20));
        assert!(shard.seal(3, 1_000, SealKind::Drain).await.unwrap());
    }
}

#[tokio::test]
async fn a_damaged_seal_frame_before_acknowledged_records_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    {
        let shard = open(dir.path(), opts(1 << 20));
        append_n(&shard, 0, 1).await;
        assert!(shard.seal(1, 1_000, SealKind::Window).await.unwrap());
        append_n(&shard, 2, 2).await;
    }
    let active = segments(dir.path()).pop().unwrap().1;
    let seal = frame_offsets(&active)[1];
    flip_byte(&active, seal + HEADER_LEN as u64);
    let (path, offset, reason) = expect_corrupt(dir.path());
    assert_eq!((path, offset), (active, seal));
    assert!(reason.contains("checksum") && reason.contains("valid frame"), "{reason}");
}

#[tokio::test]
async fn a_segment_written_before_seals_reads_as_before_and_gets_none() {
    let dir = tempfile::tempdir().unwrap();
    {
        let shard = open(dir.path(), opts(1 << 20));
        append_n(&shard, 0, 3).await;
    }
    let old = segments(dir.path()).pop().unwrap().1;
    make_version_1(&old);
    let old_bytes = std::fs::read(&old).unwrap();

    let shard = open(dir.path(), opts(1 << 20));
    assert_eq!(read_all(&shard, 0).len(), 3);
    append_n(&shard, 3, 1).await;
    // The first seal starts a new segment: the old one is left as an earlier version reads it.
    assert!(shard.seal(4, 1_000, SealKind::Drain).await.unwrap());
    let segs = segments(dir.path());
    assert_eq!(segs.iter().map(|s| s.0).collect::<Vec<_>>(), [0, 4]);
    assert_eq!(&std::fs::read(&segs[1].1).unwrap()[..8], segment::MAGIC);
    let mut records_then_seal = std::fs::read(&old).unwrap();
    assert_eq!(&records_then_seal[..8], segment::MAGIC_V1);
    records_then_seal.truncate(old_bytes.len());
    assert_eq!(records_then_seal, old_bytes, "the old segment only grew by the record");
    drop(shard);

    let shard = open(dir.path(), opts(1 << 20));
    assert_eq!(positions(&read_entries(&shard, 0)), [0, 1, 2, 3, 4]);
    assert_eq!(read_entries(&shard, 4), [seal_at(4, 1_000, SealKind::Drain)]);
}

#[tokio::test]
async fn an_empty_segment_written_before_seals_takes_the_current_header() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), opts(1 << 20)));
    let only = segments(dir.path()).pop().unwrap().1;
    make_version_1(&only);
    let shard = open(dir.path(), opts(1 << 20));
    assert!(shard.seal(0, 5, SealKind::Window).await.unwrap());
    assert_eq!(segments(dir.path()).len(), 1);
    assert_eq!(&std::fs::read(&only).unwrap()[..8], segment::MAGIC);
    drop(shard);
    let shard = open(dir.path(), opts(1 << 20));
    assert_eq!(read_entries(&shard, 0), [seal_at(0, 5, SealKind::Window)]);
}

#[tokio::test]
async fn a_seal_frame_in_a_segment_written_before_seals_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    {
        let shard = open(dir.path(), opts(1 << 20));
        append_n(&shard, 0, 1).await;
        assert!(shard.seal(1, 1_000, SealKind::Window).await.unwrap());
        append_n(&shard, 2, 1).await;
    }
    let active = segments(dir.path()).pop().unwrap().1;
    make_version_1(&active);
    let (_, offset, reason) = expect_corrupt(dir.path());
    assert_eq!(offset, frame_offsets(&active)[1]);
    assert!(reason.contains("seal frame in a version 1 segment"), "{reason}");
}

#[tokio::test]
async fn a_seal_fills_segments_and_rolls_like_records() {
    let dir = tempfile::tempdir().unwrap();
    let shard = open(dir.path(), opts(60));
    append_n(&shard, 0, 1).await;
    for watermark in 0..6 {
        let position = shard.next_seq();
        assert!(shard.seal(position, watermark, SealKind::Window).await.unwrap());
    }
    assert!(segments(dir.path()).len() > 2, "{:?}", segments(dir.path()));
    drop(shard);
    let shard = open(dir.path(), opts(60));
    assert_eq!(positions(&read_entries(&shard, 0)), (0..7).collect::<Vec<_>>());
}
