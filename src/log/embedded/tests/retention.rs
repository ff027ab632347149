//! Retention, checkpoints and the disk budget.

use super::*;

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
