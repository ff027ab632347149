//! The embedded [`EmbeddedLog`]'s own tests (the contract suite runs in `tests/contract.rs`).
use super::*;

fn implicit(records: Vec<Bytes>) -> Vec<Append> {
    records.into_iter().map(Append::implicit).collect()
}

#[test]
fn the_listed_hash_ranges_are_exactly_the_keys_each_shard_is_routed() {
    for n in 1..=64u32 {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(dir.path(), n, &LogOptions::default(), &DiskBudget::new(None))
            .unwrap();
        let shards = StreamLog::shards(&log);
        assert_eq!(shards.len(), n as usize);
        assert_eq!(shards[0].hash_range.start, 0);
        assert_eq!(shards[n as usize - 1].hash_range.end, u128::MAX);
        for (i, shard) in shards.iter().enumerate() {
            let range = shard.hash_range;
            assert_eq!(shard.id, ShardId(i as u32));
            assert_eq!(
                log.shard_for_hash_key(range.start),
                ShardId(i as u32),
                "n={n}: start of {i}"
            );
            assert_eq!(log.shard_for_hash_key(range.end), ShardId(i as u32), "n={n}: end of {i}");
            if i > 0 {
                assert_eq!(range.start, shards[i - 1].hash_range.end + 1, "n={n}: gap at {i}");
                assert_eq!(
                    log.shard_for_hash_key(range.start - 1),
                    ShardId(i as u32 - 1),
                    "n={n}: before {i}"
                );
            }
        }
    }
}

#[test]
fn hash_key_ranges_are_equal_and_cover_the_space() {
    let dir = tempfile::tempdir().unwrap();
    let log =
        EmbeddedLog::open(dir.path(), 4, &LogOptions::default(), &DiskBudget::new(None)).unwrap();
    assert_eq!(log.shard_for_hash_key(0), ShardId(0));
    assert_eq!(log.shard_for_hash_key(u128::MAX), ShardId(3));
    assert_eq!(log.shard_for_hash_key(1u128 << 126), ShardId(1));
    assert_eq!(log.shard_for_hash_key((1u128 << 126) - 1), ShardId(0));
    assert_eq!(log.shard_for_hash_key(1u128 << 127), ShardId(2));
}

#[tokio::test]
async fn a_request_is_spread_over_shards_and_keeps_order_within_each() {
    let dir = tempfile::tempdir().unwrap();
    let log =
        EmbeddedLog::open(dir.path(), 3, &LogOptions::default(), &DiskBudget::new(None)).unwrap();
    let records: Vec<Bytes> = (0..300).map(|i| Bytes::from(format!("r{i}"))).collect();
    let results = log.append(implicit(records)).await;
    let locations: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    for shard in 0..3u32 {
        let seqs: Vec<u64> =
            locations.iter().filter(|l| l.shard == ShardId(shard)).map(|l| l.seq).collect();
        assert!(seqs.len() > 50, "shard {shard} got {} of 300", seqs.len());
        assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
        let mut reader = log.shard(shard).reader(0).unwrap();
        let mut expected = locations.iter().enumerate().filter(|(_, l)| l.shard == ShardId(shard));
        while let Some(crate::log::Entry::Record(record)) = reader.next().unwrap() {
            let (i, _) = expected.next().unwrap();
            assert_eq!(record.data, Bytes::from(format!("r{i}")));
        }
        assert!(expected.next().is_none());
    }
}

#[tokio::test]
async fn a_crash_right_after_the_lineage_is_stored_finishes_the_reshard_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let budget = DiskBudget::new(None);
    let log = EmbeddedLog::open(dir.path(), 2, &LogOptions::default(), &budget).unwrap();
    let records =
        (0..10).map(|i| Append { data: Bytes::from(format!("r{i}")), route: Route::HashKey(1) });
    assert!(log
        .append(records.collect())
        .await
        .iter()
        .all(|r| r.as_ref().unwrap().shard == ShardId(0)));
    // The commit point of a split, and then the process dies: the writers never stopped
    // and the children were never opened.
    let mut lineage = Lineage::fixed(2);
    let split = Reshard::Split { shard: ShardId(0), at: 1 << 100 };
    lineage.apply(split, &[0]).unwrap();
    topology::store(dir.path(), &lineage).unwrap();
    log.close().await;
    drop(log);

    let log = EmbeddedLog::open(dir.path(), 2, &LogOptions::default(), &budget).unwrap();
    let shards = StreamLog::shards(&log);
    assert_eq!(shards.len(), 4);
    assert_eq!(shards[0].state, ShardState::Closed { end: 10 }, "its end is where it recovered");
    assert!(shards[2..]
        .iter()
        .all(|s| s.state == ShardState::Open && s.parent == Some(ShardId(0))));
    let mut reader = log.reader(ShardId(0), ReadFrom::Oldest).await.unwrap();
    let batch = reader.read(crate::log::ReadLimit::default()).unwrap();
    assert_eq!(batch.entries.len(), 11, "{:?}", batch.entries);
    let Some(crate::log::Entry::End(end)) = batch.entries.last() else { panic!("an end") };
    assert_eq!((end.position, end.children.clone()), (10, vec![ShardId(2), ShardId(3)]));
    let appended =
        log.append(vec![Append { data: Bytes::from_static(b"x"), route: Route::HashKey(5) }]).await;
    assert_eq!(appended[0].as_ref().unwrap().shard, ShardId(2));
    let seal = crate::log::SealProposal { watermark_ms: 0, kind: crate::log::SealKind::Drain };
    assert!(matches!(reader.seal(seal).await, Ok(crate::log::SealOutcome::Moved)));
    assert_eq!(
        log.shard(0).next_seq(),
        10,
        "nothing is written to a closed shard, not even a seal"
    );
}

#[tokio::test]
async fn an_encrypted_log_holds_no_plaintext_and_reads_back() {
    use crate::codec::encryption::{KeyRing, MasterKey};
    let dir = tempfile::tempdir().unwrap();
    let ring = KeyRing::new("k", [MasterKey::from_bytes("k", &[9u8; 32]).unwrap()]).unwrap();
    let log = EmbeddedLog::open_encrypted(
        dir.path(),
        1,
        &LogOptions::default(),
        &DiskBudget::new(None),
        Some(&ring),
        true,
    )
    .unwrap();
    assert!(log.is_encrypted());
    let results = log.append(implicit(vec![Bytes::from_static(b"top secret record")])).await;
    assert!(results[0].is_ok());
    let segment = std::fs::read(dir.path().join("shard-0000/00000000000000000000.seg")).unwrap();
    assert!(!segment.windows(10).any(|w| w == b"top secret"), "plaintext found in the segment");
    let Some(crate::log::Entry::Record(stored)) = log.shard(0).reader(0).unwrap().next().unwrap()
    else {
        panic!("a record")
    };
    assert_eq!(
        log.at_rest(0).open_record(stored.seq, stored.data).unwrap(),
        Bytes::from_static(b"top secret record")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_encryption_under_load_keeps_every_record_readable() {
    use crate::codec::encryption::{KeyRing, MasterKey};
    let dir = tempfile::tempdir().unwrap();
    let ring = KeyRing::new("k", [MasterKey::from_bytes("k", &[7u8; 32]).unwrap()]).unwrap();
    let log = Arc::new(
        EmbeddedLog::open_encrypted(
            dir.path(),
            2,
            &LogOptions::default(),
            &DiskBudget::new(None),
            Some(&ring),
            false,
        )
        .unwrap(),
    );
    let producers: Vec<_> = (0..4)
        .map(|p| {
            let log = log.clone();
            tokio::spawn(async move {
                for batch in 0..40 {
                    let records =
                        (0..10).map(|i| Bytes::from(format!("p{p}-b{batch}-r{i}"))).collect();
                    for result in log.append(implicit(records)).await {
                        result.unwrap();
                    }
                }
            })
        })
        .collect();
    for _ in 0..15 {
        let keys = |encrypt| AtRestKeys { ring: Some(Arc::new(ring.clone())), encrypt };
        log.switch_encryption(keys(true)).await.unwrap();
        tokio::task::yield_now().await;
        log.switch_encryption(keys(false)).await.unwrap();
        tokio::task::yield_now().await;
    }
    for producer in producers {
        producer.await.unwrap();
    }
    let (mut read, mut sealed) = (std::collections::BTreeSet::new(), 0);
    for i in 0..2 {
        let shard = log.shard(i as u32);
        let mut reader = shard.reader(0).unwrap();
        while let Some(crate::log::Entry::Record(record)) = reader.next().unwrap() {
            sealed += usize::from(!record.data.starts_with(b"p"));
            let text = log.at_rest(i).open_record(record.seq, record.data).unwrap();
            read.insert(String::from_utf8(text.to_vec()).unwrap());
        }
    }
    let sent: std::collections::BTreeSet<String> = (0..4)
        .flat_map(|p| (0..40).flat_map(move |b| (0..10).map(move |i| format!("p{p}-b{b}-r{i}"))))
        .collect();
    assert_eq!(read, sent);
    assert!(sealed > 0 && sealed < sent.len(), "{sealed} of {} sealed", sent.len());
}
