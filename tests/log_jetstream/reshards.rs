//! Resharding on the real cluster, with two nodes in one process (each store its own node):
//! one node splits and merges while the other appends, and a crash right after the commit
//! point. Every test reads every shard back, parents first, and counts what is missing and
//! what is there twice.

use std::collections::BTreeMap;

use super::*;
use hydrant::log::{Entry, Reshard, ShardInfo, ShardState, StreamLog};

/// Every entry of `shard` from its oldest, read until its end (a closed shard) or until it is
/// caught up (an open one).
async fn read_shard(log: &Arc<dyn StreamLog>, shard: ShardId) -> (Vec<Bytes>, bool) {
    let mut reader = log.reader(shard, ReadFrom::Oldest).await.expect("a reader");
    tokio::task::spawn_blocking(move || {
        let (mut data, started) = (Vec::new(), std::time::Instant::now());
        loop {
            let batch = reader.read(ReadLimit { entries: 1000, bytes: 1 << 20 }).expect("reads");
            for entry in batch.entries {
                match entry {
                    Entry::Record(r) => data.push(r.data),
                    Entry::End(_) => return (data, true),
                    _ => {}
                }
            }
            if batch.caught_up.is_some() && started.elapsed() > Duration::from_secs(3) {
                return (data, false);
            }
            assert!(started.elapsed() < Duration::from_secs(30), "shard {shard} never ended");
        }
    })
    .await
    .expect("the reader's thread")
}

/// The shards in an order that reads every parent before its children.
fn parents_first(shards: &[ShardInfo]) -> Vec<ShardId> {
    // Children always have higher ids than their parents.
    let mut ids: Vec<ShardId> = shards.iter().map(|s| s.id).collect();
    ids.sort();
    ids
}

/// Every record of the log, parents first: closed shards must end.
async fn read_all(log: &Arc<dyn StreamLog>) -> Vec<Bytes> {
    let shards = log.shards();
    let mut all = Vec::new();
    for id in parents_first(&shards) {
        let (data, ended) = read_shard(log, id).await;
        let closed = matches!(shards[id.0 as usize].state, ShardState::Closed { .. });
        assert_eq!(ended, closed, "shard {id}: ended {ended}, closed {closed}");
        all.extend(data);
    }
    all
}

/// Record `i` of key `k`: "k.i".
fn keyed(key: u32, i: u32) -> Append {
    let hash = u128::from(key).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835) | 1;
    Append { data: Bytes::from(format!("{key}.{i}")), route: Route::HashKey(hash) }
}

/// Checks that `read` holds each acknowledged record once, and each key's records in order.
fn count(read: &[Bytes], acknowledged: &[String]) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut last_of_key: BTreeMap<u32, u32> = BTreeMap::new();
    for data in read {
        let text = String::from_utf8(data.to_vec()).unwrap();
        *seen.entry(text.clone()).or_default() += 1;
        let (key, i) = text.split_once('.').unwrap();
        let (key, i): (u32, u32) = (key.parse().unwrap(), i.parse().unwrap());
        if let Some(before) = last_of_key.insert(key, i) {
            assert!(before < i, "key {key}: record {i} read after {before}");
        }
    }
    let missing: Vec<&String> = acknowledged.iter().filter(|a| !seen.contains_key(*a)).collect();
    let twice: Vec<(&String, &usize)> = seen.iter().filter(|(_, n)| **n > 1).collect();
    println!(
        "{} acknowledged, {} read, {} missing, {} twice",
        acknowledged.len(),
        read.len(),
        missing.len(),
        twice.len()
    );
    assert!(missing.is_empty(), "missing: {missing:?}");
    assert!(twice.is_empty(), "twice: {twice:?}");
}

/// Node b appends keyed records without pause while node a splits the only shard, splits a
/// child, merges two neighbours and scales to three: b follows each change (the closed
/// shard refuses its publishes, it routes them again), and reading every shard, parents first,
/// gives every acknowledged record once and each key's records in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_appends_while_another_reshards_and_nothing_is_lost_or_reordered() {
    let _ = nats_urls_or_skip!();
    let h = JetStreamHarness::new();
    let (a, b) = (h.node().await, h.node().await);
    let log_a = a.open("resharded", spec(1)).await.expect("opens");
    let log_b = b.open("resharded", spec(1)).await.expect("opens");
    let writer = tokio::spawn(async move {
        let mut acknowledged = Vec::new();
        for i in 0..150u32 {
            let batch: Vec<Append> = (0..8).map(|key| keyed(key, i)).collect();
            for (record, result) in batch.iter().zip(log_b.append(batch.clone()).await) {
                let appended = result.expect("appended");
                assert!(appended.seq > 0);
                acknowledged.push(String::from_utf8(record.data.to_vec()).unwrap());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (acknowledged, log_b)
    });
    let pause = || tokio::time::sleep(Duration::from_millis(300));
    pause().await;
    let children = log_a.reshard(Reshard::Split { shard: ShardId(0), at: 1 << 127 }).await;
    let children = children.expect("splits");
    pause().await;
    let high = log_a.reshard(Reshard::Split { shard: children[1], at: 3 << 126 }).await;
    let high = high.expect("splits the high child");
    pause().await;
    log_a.reshard(Reshard::Merge { shard: children[0], adjacent: high[0] }).await.expect("merges");
    pause().await;
    hydrant::log::scale(log_a.as_ref(), 3).await.expect("scales to three");
    let (acknowledged, log_b) = writer.await.expect("the writer");
    let open = log_a.shards().into_iter().filter(|s| s.state == ShardState::Open).count();
    assert_eq!(open, 3);
    // b saw every change: it lists the same shards, with the same ends.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(log_b.shards(), log_a.shards());
    count(&read_all(&log_a).await, &acknowledged);
}

/// Two nodes split the same shard at once: the registry's compare-and-set lets one win, the
/// other is refused with Kinesis' rule (the shard is closed), and nothing is split twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_resharding_one_shard_at_once_split_it_once() {
    let _ = nats_urls_or_skip!();
    let h = JetStreamHarness::new();
    let (a, b) = (h.node().await, h.node().await);
    let log_a = a.open("raced", spec(2)).await.expect("opens");
    let log_b = b.open("raced", spec(2)).await.expect("opens");
    let split = |at| Reshard::Split { shard: ShardId(0), at };
    let (one, other) = tokio::join!(log_a.reshard(split(5)), log_b.reshard(split(7)));
    assert!(one.is_ok() != other.is_ok(), "exactly one wins: {one:?} {other:?}");
    let refused = if one.is_err() { one } else { other };
    assert!(matches!(refused, Err(hydrant::log::ReshardError::Closed(ShardId(0)))), "{refused:?}");
    assert_eq!(log_a.shards().len(), 4);
    assert_eq!(log_b.shards(), log_a.shards());
}

/// A node that stores a reshard and crashes before it seals the closed shard: another node
/// that still appends to the shard has its records stored there (before the end) until it
/// follows the reshard and seals the shard itself; nothing acknowledged is lost and the shard
/// ends for every reader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reshard_stored_by_a_node_that_crashed_before_sealing_is_finished_by_another() {
    let _ = nats_urls_or_skip!();
    let h = JetStreamHarness::new();
    let (a, b) = (h.node().await, h.node().await);
    let log_b = b.open("unsealed", spec(1)).await.expect("opens");
    let mut acknowledged = Vec::new();
    let append = |log: Arc<dyn StreamLog>, i: u32| async move {
        let record = keyed(1, i);
        log.append(vec![record.clone()]).await.remove(0).expect("appended");
        String::from_utf8(record.data.to_vec()).unwrap()
    };
    for i in 0..5 {
        acknowledged.push(append(log_b.clone(), i).await);
    }
    let children = a
        .store_reshard_only("unsealed", Reshard::Split { shard: ShardId(0), at: 1 << 127 })
        .await
        .expect("stores the reshard");
    for i in 5..40 {
        acknowledged.push(append(log_b.clone(), i).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let shards = log_b.shards();
    assert!(matches!(shards[0].state, ShardState::Closed { .. }), "b followed: {shards:?}");
    assert_eq!(shards.len(), 1 + children.len());
    count(&read_all(&log_b).await, &acknowledged);
}

/// A closed shard's stream is fenced, not sealed: once every consumer passed its end, its
/// records are purged as an open shard's are, and readers still find its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_shard_is_purged_once_its_consumers_passed_its_end() {
    let _ = nats_urls_or_skip!();
    let h = JetStreamHarness::new();
    let log = h.node().await.open("purged", spec(1)).await.expect("opens");
    assert!(log.append((0..5).map(|i| keyed(1, i)).collect()).await.iter().all(Result::is_ok));
    let mut assignments = log.assignments("delivery").expect("a valid consumer");
    let lease = assignments.next().await.expect("granted");
    lease.state().await.expect("registers");
    log.reshard(Reshard::Split { shard: ShardId(0), at: 1 << 127 }).await.expect("splits");
    let ShardState::Closed { end } = log.shards()[0].state else { panic!("{:?}", log.shards()) };
    let (before, ended) = read_shard(&log, ShardId(0)).await;
    assert_eq!((before.len(), ended), (5, true));
    lease.commit(Progress { markers: None, next_seq: Some(end) }).await.expect("commits");
    let (after, ended) = read_shard(&log, ShardId(0)).await;
    assert_eq!((after.len(), ended), (0, true), "purged, and still ends");
    let appended = log.append(vec![keyed(1, 9)]).await.remove(0).expect("appended");
    assert_ne!(appended.shard, ShardId(0), "a closed shard takes no appends");
}
