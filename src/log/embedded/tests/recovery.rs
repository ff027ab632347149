//! Recovery: reopening after a crash, torn tails, damage reported with file and offset, locks.

use super::*;

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
