//! The shared stream definitions of a cluster (`hydrant::control::KvDefinitions`) on the real
//! NATS cluster: two stores on their own connections are two nodes of one namespace.

use hydrant::config::{embedded_default, DeliveryStreamConfig};
use hydrant::control::persist::StoredStream;
use hydrant::control::{DefinitionStore, Expect, KvDefinitions, SharedChange, WriteError};

use super::{connect, nats_urls};

/// Two nodes' definition stores in a new namespace, and a way to remove its bucket.
async fn two_nodes(urls: &[String]) -> (KvDefinitions, KvDefinitions, impl FnOnce()) {
    let namespace = format!("hydd-{}", uuid::Uuid::new_v4().simple());
    let a = KvDefinitions::open(&connect(urls).await, &namespace, 3).await.expect("opens");
    let b = KvDefinitions::open(&connect(urls).await, &namespace, 3).await.expect("opens");
    let nats = connect(urls).await;
    let cleanup = move || {
        let bucket = format!("{namespace}-control");
        super::block_on(async move {
            let _ = nats.jetstream().delete_key_value(&bucket).await;
        });
    };
    (a, b, cleanup)
}

fn stream(name: &str, prefix: &str) -> DeliveryStreamConfig {
    let mut config = embedded_default().delivery_streams.remove(0);
    config.delivery_stream_name = name.to_string();
    config.extended_s3_destination_configuration.as_mut().unwrap().prefix = Some(prefix.into());
    config.normalize();
    config
}

fn stored(name: &str, version: u64, prefix: &str) -> StoredStream {
    StoredStream {
        format: 1,
        version,
        created_at: 1.0,
        last_update: None,
        deleting: false,
        config: stream(name, prefix),
    }
}

fn conflict(result: Result<(), WriteError>) -> Option<u64> {
    match result {
        Err(WriteError::Conflict { current }) => current,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_nodes_writing_one_version_exactly_one_wins() {
    let Some(urls) = nats_urls() else { return };
    let (a, b, cleanup) = two_nodes(&urls).await;
    let name = "a.b";
    a.write(&stored(name, 1, "one/"), Expect::Absent).unwrap();
    assert_eq!(conflict(b.write(&stored(name, 1, "other/"), Expect::Absent)), Some(1));
    a.write(&stored(name, 2, "two/"), Expect::Version(1)).unwrap();
    assert_eq!(conflict(b.write(&stored(name, 2, "late/"), Expect::Version(1))), Some(2));
    let all = b.read_all().unwrap();
    assert_eq!(all.len(), 1);
    let prefix =
        all[0].1.config.extended_s3_destination_configuration.as_ref().unwrap().prefix.clone();
    assert_eq!((all[0].1.version, prefix.as_deref()), (2, Some("two/")));
    // Unconditional writes (tags, a deletion) never conflict.
    b.write(&stored(name, 2, "two/"), Expect::Any).unwrap();
    a.remove(name).unwrap();
    assert!(b.read_all().unwrap().is_empty());
    assert_eq!(conflict(b.write(&stored(name, 3, "x/"), Expect::Version(2))), None);
    // A deleted name can be created again.
    b.write(&stored(name, 1, "again/"), Expect::Absent).unwrap();
    cleanup();
}

/// Two writes at the same instant, each from its own node: while one is being stored, the
/// stream's leader refuses the other with error 10164 ("wrong last sequence", unnumbered),
/// which must read as the conflict it is, not as a failure of the store (it was answered
/// InternalFailure before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_writes_at_the_same_instant_one_wins_and_the_other_is_a_conflict() {
    let Some(urls) = nats_urls() else { return };
    let (a, b, cleanup) = two_nodes(&urls).await;
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    for round in 0..20u64 {
        let name = format!("race-{round}");
        let race = |expect: Expect, version: u64| {
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
            let writes: Vec<_> = [(a.clone(), "a/"), (b.clone(), "b/")]
                .into_iter()
                .map(|(node, prefix)| {
                    let (barrier, stored) = (barrier.clone(), stored(&name, version, prefix));
                    std::thread::spawn(move || {
                        barrier.wait();
                        node.write(&stored, expect)
                    })
                })
                .collect();
            let results: Vec<_> = writes.into_iter().map(|w| w.join().unwrap()).collect();
            let won = results.iter().filter(|r| r.is_ok()).count();
            let lost =
                (results.iter()).filter(|r| matches!(r, Err(WriteError::Conflict { .. }))).count();
            assert_eq!((won, lost), (1, 1), "round {round}, {expect:?}: {results:?}");
        };
        race(Expect::Absent, 1);
        race(Expect::Version(1), 2);
    }
    cleanup();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_watching_sees_what_is_stored_then_every_change() {
    let Some(urls) = nats_urls() else { return };
    let (a, b, cleanup) = two_nodes(&urls).await;
    a.write(&stored("first", 1, "p/"), Expect::Absent).unwrap();
    let mut changes = b.watch().expect("a shared store can be watched");
    let next = |changes: &mut tokio::sync::mpsc::UnboundedReceiver<SharedChange>| {
        super::block_on(tokio::time::timeout(std::time::Duration::from_secs(10), changes.recv()))
            .expect("a change within 10 s")
            .expect("the watch runs")
    };
    let SharedChange::Stored(s) = next(&mut changes) else { panic!("the stored stream first") };
    assert_eq!((s.config.delivery_stream_name.as_str(), s.version), ("first", 1));
    a.write(&stored("first", 2, "q/"), Expect::Version(1)).unwrap();
    let SharedChange::Stored(s) = next(&mut changes) else { panic!("the update") };
    assert_eq!(s.version, 2);
    a.remove("first").unwrap();
    let SharedChange::Removed(name) = next(&mut changes) else { panic!("the removal") };
    assert_eq!(name, "first");
    cleanup();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_streams_share_one_version_through_a_rolling_change() {
    let Some(urls) = nats_urls() else { return };
    let (a, b, cleanup) = two_nodes(&urls).await;
    let (old, new, newer) =
        (stream("filed", "v1/"), stream("filed", "v2/"), stream("filed", "v3/"));
    assert_eq!(a.file_stream_version(&old).unwrap(), 1);
    assert_eq!(b.file_stream_version(&old).unwrap(), 1, "the same file: the same version");
    assert_eq!(a.file_stream_version(&new).unwrap(), 2, "a changed file leads the change");
    assert_eq!(b.file_stream_version(&old).unwrap(), 1, "a node behind keeps its version");
    assert_eq!(b.file_stream_version(&new).unwrap(), 2, "and takes the new one with the file");
    assert_eq!(a.file_stream_version(&new).unwrap(), 2, "unchanged: no new version");
    assert_eq!(b.file_stream_version(&newer).unwrap(), 3);
    b.store_file_stream_version("filed", 7, &newer).unwrap();
    assert_eq!(a.file_stream_version(&newer).unwrap(), 7);
    cleanup();
}
