//! The on-disk format against a data directory written by an earlier version (`testdata/v1`,
//! see its README): segments, checkpoints, markers files and `keys/` are read as they are, and
//! storing the same state writes the same bytes, so either version can open what the other
//! wrote.

use std::collections::BTreeMap;
use std::fs;

use crate::codec::encryption::{KeyRing, MasterKey};
use crate::log::{
    AtRestKeys, ConsumerState, Entry, LogStore, MarkerKey, Position, Progress, ReadFrom, ReadLimit,
    ShardId, ShardLease, StreamLog, StreamSpec,
};

use super::*;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/log/embedded/testdata/v1");

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The key the fixture's records 9 to 16 were sealed under.
fn keys() -> AtRestKeys {
    let key = MasterKey::from_bytes("fixture", &[0x5a; 32]).unwrap();
    AtRestKeys { ring: Some(Arc::new(KeyRing::new("fixture", [key]).unwrap())), encrypt: false }
}

fn shard_dir(data: &Path, i: u32) -> PathBuf {
    data.join(format!("streams/fixture/shard-{i:04}"))
}

async fn state(log: &Arc<dyn StreamLog>, shard: u32) -> (Arc<dyn ShardLease>, ConsumerState) {
    let mut assignments = log.assignments("delivery").unwrap();
    loop {
        let lease = assignments.next().await.unwrap();
        if lease.shard() == ShardId(shard) {
            let state = lease.state().await.unwrap();
            return (lease, state);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_written_by_an_earlier_version_reads_back_and_stores_the_same_bytes() {
    let data = tempfile::tempdir().unwrap();
    copy_dir(Path::new(FIXTURE), data.path());
    let before = |i, file: &str| fs::read(shard_dir(Path::new(FIXTURE), i).join(file)).unwrap();

    let store = EmbeddedStore::new(data.path(), opts(200), DiskBudget::new(None));
    let log = store.open("fixture", StreamSpec { shards: 2, at_rest: keys() }).await.unwrap();

    // Every record reads back as appended, in append order per shard; records 9 to 16 were
    // encrypted at rest, and their plaintext is nowhere on disk.
    let mut read = Vec::new();
    for shard in [ShardId(0), ShardId(1)] {
        let mut reader = log.reader(shard, ReadFrom::Oldest).await.unwrap();
        let batch = reader.read(ReadLimit::default()).unwrap();
        assert!(batch.caught_up.is_some());
        let numbers: Vec<u32> = (batch.entries.iter())
            .map(|e| match e {
                Entry::Record(r) => {
                    let text = std::str::from_utf8(&r.data).unwrap();
                    text.strip_prefix("record-").unwrap().parse().unwrap()
                }
                e => panic!("{e:?}"),
            })
            .collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "shard {shard}: {numbers:?}");
        read.extend(numbers);
    }
    read.sort();
    assert_eq!(read, (1..=24).collect::<Vec<_>>());
    for i in 0..2 {
        for (_, segment) in segments(&shard_dir(data.path(), i)) {
            let bytes = fs::read(segment).unwrap();
            for n in 9..=16 {
                let plain = format!("record-{n:03}");
                assert!(!bytes.windows(10).any(|w| w == plain.as_bytes()), "{plain} in the clear");
            }
        }
    }

    // Checkpoints and markers load as written.
    let (lease0, state0) = state(&log, 0).await;
    let partition = |query: &[(&str, &str)], lambda: &[(&str, &str)]| {
        let map = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
            kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        MarkerKey::Partition { query: map(query), lambda: map(lambda) }
    };
    let markers0 = BTreeMap::from([
        (partition(&[("k", "a")], &[]), Position { seq: 4, sub: 1 }),
        (MarkerKey::Errors("partitioning-failed".into()), Position { seq: 5, sub: 0 }),
    ]);
    assert_eq!(state0, ConsumerState { next_seq: 3, markers: markers0.clone() });
    let (lease1, state1) = state(&log, 1).await;
    let markers1 = BTreeMap::from([(
        partition(&[("a", "z"), ("k", "b")], &[("l", "1")]),
        Position { seq: 6, sub: 0 },
    )]);
    assert_eq!(state1, ConsumerState { next_seq: 2, markers: markers1.clone() });
    let mut backup = log.assignments("backup").unwrap();
    let backup0 = backup.next().await.unwrap();
    assert_eq!(backup0.state().await.unwrap().next_seq, 0);

    // Storing the same state writes the same bytes (the two entries of shard 0's markers may
    // come in another order: the earlier version wrote them in hash-map order).
    lease0.commit(Progress { markers: Some(markers0), next_seq: Some(3) }).await.unwrap();
    lease1.commit(Progress { markers: Some(markers1), next_seq: Some(2) }).await.unwrap();
    let after = |i, file: &str| fs::read(shard_dir(data.path(), i).join(file)).unwrap();
    for i in 0..2 {
        assert_eq!(after(i, "checkpoint-delivery"), before(i, "checkpoint-delivery"));
        assert_eq!(after(i, "keys/ranges.json"), before(i, "keys/ranges.json"));
    }
    assert_eq!(after(0, "checkpoint-backup"), before(0, "checkpoint-backup"));
    assert_eq!(after(1, "delivery-markers.json"), before(1, "delivery-markers.json"));
    let json = |bytes: Vec<u8>| -> serde_json::Value {
        let mut value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        value["delivered"].as_array_mut().unwrap().sort_by_key(|e| e.to_string());
        value
    };
    assert_eq!(json(after(0, "delivery-markers.json")), json(before(0, "delivery-markers.json")));
}
