//! The log on a real NATS JetStream cluster (`HYDRANT_NATS_URLS`, the three nodes that
//! `scripts/services.sh up` starts; source its env file). Without it the tests skip with a
//! message, unless `HYDRANT_REQUIRE_SERVICES=1`, which turns a missing cluster into a failure.
//!
//! The log's contract (`hydrant::log::contract`) runs against [`JetStreamHarness`]: each test
//! works in a namespace of its own (its own buckets; shard streams are named by random log
//! ids), removed when it ends, so tests run in parallel next to other users of the cluster.
//! Each `store()` is a new connection: a node of its own.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hydrant::codec::encryption::{KeyRing, MasterKey};
use hydrant::log::contract::{contract_suite, Harness};
use hydrant::log::jetstream::{JetStreamOptions, JetStreamStore, Nats, NatsAuth, NatsOptions};
use hydrant::log::{
    Append, AppendError, AtRestKeys, LogStore, Progress, ReadFrom, ReadLimit, Route, ShardId,
    StreamSpec,
};

/// The cluster's URLs, or `None` (skip) when the tests run without it.
fn nats_urls() -> Option<Vec<String>> {
    match std::env::var("HYDRANT_NATS_URLS") {
        Ok(urls) if !urls.is_empty() => Some(urls.split(',').map(str::to_string).collect()),
        _ if std::env::var("HYDRANT_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("HYDRANT_NATS_URLS is not set and HYDRANT_REQUIRE_SERVICES=1")
        }
        _ => {
            eprintln!(
                "skipping: HYDRANT_NATS_URLS is not set (start the NATS cluster with \
                 scripts/services.sh up and source its env file)"
            );
            None
        }
    }
}

macro_rules! nats_urls_or_skip {
    () => {
        match nats_urls() {
            Some(urls) => urls,
            None => return,
        }
    };
}

/// Leases moving between nodes.
#[path = "log_jetstream/leases.rs"]
mod leases;

/// Shards that split and merge while nodes append.
#[path = "log_jetstream/reshards.rs"]
mod reshards;

/// The stream definitions a cluster's nodes share.
#[path = "log_jetstream/definitions.rs"]
mod definitions;

fn nats_options(servers: Vec<String>) -> NatsOptions {
    let name = "hydrant-test".into();
    NatsOptions { servers, auth: NatsAuth::None, tls: None, name, only_listed: false }
}

#[tokio::test]
async fn a_node_connects_to_the_cluster_and_checks_its_servers() {
    let urls = nats_urls_or_skip!();
    let nats = nats_options(urls).connect().await.expect("connects");
    let (server, version) = nats.server();
    assert!(!server.is_empty());
    assert!(hydrant::log::jetstream::connect::version_at_least(&version, 2, 10), "{version}");
    nats.jetstream().query_account().await.expect("JetStream is enabled");
}

/// A node that starts before NATS is reachable says so and keeps trying: here the only server
/// it knows starts answering (a proxy to the cluster opens) 2 seconds after it began.
#[tokio::test]
async fn a_node_started_before_nats_retries_until_a_server_answers() {
    let urls = nats_urls_or_skip!();
    let target = urls[0].trim_start_matches("nats://").to_string();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let proxy = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            let target = target.clone();
            tokio::spawn(async move {
                let mut server = tokio::net::TcpStream::connect(target).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    let started = std::time::Instant::now();
    let nats = tokio::time::timeout(
        Duration::from_secs(20),
        nats_options(vec![format!("nats://127.0.0.1:{port}")]).connect_retrying(),
    )
    .await
    .expect("connects once the server answers")
    .expect("no permanent error");
    assert!(started.elapsed() >= Duration::from_secs(2), "it could not have connected earlier");
    nats.jetstream().query_account().await.expect("usable");
    proxy.abort();
}

/// Runs `f` to completion on the test's runtime from synchronous code (the contract's
/// harness is synchronous).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

/// The contract's harness: a namespace of its own on the cluster, removed when it is dropped.
struct JetStreamHarness {
    urls: Vec<String>,
    options: JetStreamOptions,
    first: JetStreamStore,
}

impl JetStreamHarness {
    fn new() -> Self {
        Self::with_options(JetStreamOptions::default())
    }

    fn with_options(options: JetStreamOptions) -> Self {
        let urls = nats_urls().expect("checked by `when`");
        let namespace = format!("hydt-{}", uuid::Uuid::new_v4().simple());
        let options = JetStreamOptions { namespace, ..options };
        let first = JetStreamStore::new(block_on(connect(&urls)), options.clone());
        Self { urls, options, first }
    }

    /// A store that is its own node, as an async caller makes it.
    async fn node(&self) -> JetStreamStore {
        JetStreamStore::new(connect(&self.urls).await, self.options.clone())
    }
}

async fn connect(urls: &[String]) -> Nats {
    nats_options(urls.to_vec()).connect().await.expect("connects to the test cluster")
}

impl Drop for JetStreamHarness {
    fn drop(&mut self) {
        if let Err(e) = block_on(self.first.remove_namespace()) {
            eprintln!("cannot remove the test namespace {}: {e}", self.options.namespace);
        }
    }
}

impl Harness for JetStreamHarness {
    fn store(&self) -> Arc<dyn LogStore> {
        Arc::new(block_on(self.node()))
    }

    fn keys(&self) -> AtRestKeys {
        let key = MasterKey::from_bytes("contract", &[3u8; 32]).expect("a key");
        let ring = KeyRing::new("contract", [key]).expect("a ring");
        AtRestKeys { ring: Some(Arc::new(ring)), encrypt: false }
    }

    /// Another node (the harness's own) takes the lease and releases it again.
    fn take_over(&self, stream: &str, shard: ShardId, consumer: &str) {
        block_on(self.first.take_over(stream, shard, consumer)).expect("takes the lease over");
    }
}

mod contract {
    use super::*;

    contract_suite!(JetStreamHarness::new(), when nats_urls().is_some());
}

fn spec(shards: u32) -> StreamSpec {
    StreamSpec { shards, at_rest: AtRestKeys::default() }
}

fn records(n: usize, size: usize) -> Vec<Append> {
    (0..n).map(|i| Append::implicit(Bytes::from(vec![b'a' + (i % 26) as u8; size]))).collect()
}

/// `max_bytes` of a shard stream is the disk budget: an append past it is `Full` (503 to the
/// producer), stores nothing, shows in `problems()`, and once the consumer has passed the
/// records, the purge frees the room and appends are stored again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_shard_refuses_appends_until_delivered_records_are_purged() {
    let _ = nats_urls_or_skip!();
    let options = JetStreamOptions { max_bytes_per_shard: Some(16 << 10), ..Default::default() };
    let h = JetStreamHarness::with_options(options);
    let log = h.node().await.open("full", spec(1)).await.expect("opens");
    let mut stored = Vec::new();
    let full = loop {
        let result = log.append(records(1, 1024)).await.remove(0);
        match result {
            Ok(appended) => stored.push(appended),
            Err(e) => break e,
        }
        assert!(stored.len() < 64, "16 KiB cannot take 64 KiB");
    };
    assert!(matches!(full, AppendError::Full(_)), "{full}");
    assert!(stored.len() >= 8, "{} records fit", stored.len());
    let problems = log.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].reason.contains("full"), "{problems:?}");
    let mut reader = log.reader(ShardId(0), ReadFrom::Oldest).await.expect("a reader");
    let read = tokio::task::block_in_place(|| reader.read(ReadLimit::default())).expect("reads");
    assert!(read.entries.len() <= stored.len());

    let mut assignments = log.assignments("delivery").expect("a valid consumer");
    let lease = assignments.next().await.expect("granted");
    lease.state().await.expect("registers");
    let end = stored.last().unwrap().seq + 1;
    // A commit skips its purge when listing the shard's consumers took over a second (a busy
    // machine): the purge must not act on a stale list. The next commit purges then.
    for _ in 0..20 {
        lease.commit(Progress { markers: None, next_seq: Some(end) }).await.expect("commits");
        if log.problems().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let again = log.append(records(3, 1024)).await;
    assert!(again.iter().all(Result::is_ok), "{again:?}");
    assert!(again[0].as_ref().unwrap().seq >= end);
    assert!(log.problems().is_empty(), "{:?}", log.problems());
    let e = log.reader(ShardId(0), ReadFrom::Seq(stored[0].seq)).await.unwrap_err();
    assert!(matches!(e, hydrant::log::ReadError::Trimmed { .. }), "{e}");
}

/// What [`Proxy`] does with the bytes it gets.
const PASS: u8 = 0;
/// Holds them: they arrive, late, once it passes again.
const HOLD: u8 = 1;
/// Drops them, keeping the connections open (a partition).
const BLACK_HOLE: u8 = 2;
/// Closes every connection and every new one at once (the server is gone).
const CLOSED: u8 = 3;

/// A TCP proxy to a NATS server, the only server a test node knows.
struct Proxy {
    port: u16,
    mode: Arc<std::sync::atomic::AtomicU8>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn to(url: &str) -> Self {
        let target = url.trim_start_matches("nats://").to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(std::sync::atomic::AtomicU8::new(PASS));
        let task = {
            let mode = mode.clone();
            tokio::spawn(async move {
                loop {
                    let (client, _) = listener.accept().await.unwrap();
                    if mode.load(std::sync::atomic::Ordering::Acquire) == CLOSED {
                        continue; // dropped: closed at once
                    }
                    let server = tokio::net::TcpStream::connect(&target).await.unwrap();
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::spawn(forward(client_read, server_write, mode.clone()));
                    tokio::spawn(forward(server_read, client_write, mode.clone()));
                }
            })
        };
        Self { port, mode, task }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, std::sync::atomic::Ordering::Release);
    }

    async fn node(&self, options: JetStreamOptions) -> JetStreamStore {
        // Only through the proxy: the servers it reaches announce the others, which the node
        // would reconnect to when the proxy cuts it off.
        let nats = NatsOptions {
            only_listed: true,
            ..nats_options(vec![format!("nats://127.0.0.1:{}", self.port)])
        };
        let nats = nats.connect().await.expect("connects through the proxy");
        JetStreamStore::new(nats, options)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mode: Arc<std::sync::atomic::AtomicU8>,
) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while mode.load(Ordering::Acquire) == HOLD {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if mode.load(Ordering::Acquire) == BLACK_HOLE {
            std::future::pending::<()>().await;
        }
        if mode.load(Ordering::Acquire) == CLOSED {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// An append whose NATS servers do not answer is `Unavailable` (503) by its deadline: never
/// a hang, never success. Here the only server the node knows turns into a black hole (a
/// partition: the connection stays up, nothing gets through).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_nats_does_not_answer_are_unavailable_by_the_deadline() {
    let urls = nats_urls_or_skip!();
    let proxy = Proxy::to(&urls[0]).await;
    let options =
        JetStreamOptions { append_deadline: Duration::from_secs(3), ..Default::default() };
    // Its namespace, removed when the test ends, through a node that can reach the cluster.
    let h = JetStreamHarness::with_options(options);
    let log =
        proxy.node(h.options.clone()).await.open("unreachable", spec(2)).await.expect("opens");
    assert!(log.append(records(4, 10)).await.iter().all(Result::is_ok));

    proxy.set(BLACK_HOLE);
    let started = std::time::Instant::now();
    let answers = tokio::time::timeout(Duration::from_secs(10), log.append(records(4, 10)))
        .await
        .expect("answers by its deadline");
    let took = started.elapsed();
    for answer in &answers {
        assert!(matches!(answer, Err(AppendError::Unavailable(_))), "{answer:?}");
    }
    assert!(took <= Duration::from_secs(4), "took {took:?}, the deadline is 3 s");
}

/// A node that lost its connection says so in the log's problems (which `/readyz` turns into
/// 503 not ready, so a load balancer sends producers to nodes that can take records), and
/// stops saying so once it has reconnected. Here its only server goes away (the proxy closes
/// every connection), then comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_its_nats_connection_reports_every_shard_until_it_reconnects() {
    let urls = nats_urls_or_skip!();
    let proxy = Proxy::to(&urls[0]).await;
    let h = JetStreamHarness::new();
    let log = proxy.node(h.options.clone()).await.open("cut", spec(2)).await.expect("opens");
    assert!(log.problems().is_empty(), "{:?}", log.problems());

    proxy.set(CLOSED);
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    while log.problems().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the lost connection was never noticed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let problems = log.problems();
    assert_eq!(problems.len(), 2, "every shard: {problems:?}");
    assert!(problems[0].reason.contains("no connection to the NATS servers"), "{problems:?}");

    proxy.set(PASS);
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    while !log.problems().is_empty() {
        assert!(std::time::Instant::now() < deadline, "still reported: {:?}", log.problems());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A publish whose acknowledgement did not come in time is published again under the same
/// message id, and JetStream stores it once: here the node's connection holds everything for
/// 3 seconds (past the 2-second acknowledgement timeout), then delivers the first publishes
/// and their retries together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_retried_after_its_acknowledgement_was_late_is_stored_once() {
    let urls = nats_urls_or_skip!();
    let proxy = Proxy::to(&urls[0]).await;
    let h = JetStreamHarness::new();
    let log = proxy.node(h.options.clone()).await.open("retried", spec(1)).await.expect("opens");
    assert!(log.append(records(1, 10)).await[0].is_ok());

    proxy.set(HOLD);
    let append = tokio::spawn({
        let log = log.clone();
        async move { log.append(records(5, 10)).await }
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.set(PASS);
    let answers = append.await.unwrap();
    let seqs: Vec<u64> = answers.iter().map(|a| a.as_ref().expect("stored").seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");

    let other = h.node().await.open("retried", spec(1)).await.expect("opens");
    let mut reader = other.reader(ShardId(0), ReadFrom::Oldest).await.expect("a reader");
    let mut stored = Vec::new();
    loop {
        let batch = tokio::task::block_in_place(|| reader.read(ReadLimit::default())).unwrap();
        stored.extend(batch.entries);
        if batch.caught_up.is_some() {
            break;
        }
    }
    assert_eq!(stored.len(), 6, "each record once: {stored:?}");
}

/// A handle of a deleted log never reaches the new log of the same name: its appends fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handle_of_a_deleted_log_fails_and_never_writes_into_the_new_one() {
    let _ = nats_urls_or_skip!();
    let options =
        JetStreamOptions { append_deadline: Duration::from_secs(2), ..Default::default() };
    let h = JetStreamHarness::with_options(options);
    let store = h.node().await;
    let old = store.open("reborn", spec(1)).await.expect("opens");
    assert!(old.append(records(2, 10)).await.iter().all(Result::is_ok));
    store.delete("reborn").await.expect("deletes");
    let new = store.open("reborn", spec(1)).await.expect("opens a new log");
    let answers = old.append(records(2, 10)).await;
    assert!(answers.iter().all(|a| matches!(a, Err(AppendError::Unavailable(_)))), "{answers:?}");
    let mut reader = new.reader(ShardId(0), ReadFrom::Oldest).await.expect("a reader");
    let read = tokio::task::block_in_place(|| reader.read(ReadLimit::default())).expect("reads");
    assert!(read.entries.is_empty(), "{:?}", read.entries);
    assert!(new
        .append(vec![Append { data: Bytes::from_static(b"x"), route: Route::Implicit }])
        .await[0]
        .is_ok());
}

/// Not a test: how long appends take on the cluster (`cargo test --test log_jetstream
/// measure_append_latency -- --ignored --nocapture`). Prints p50 and p99 of single-record
/// appends and of 500-record appends of 1 KiB records, over one shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run by hand"]
async fn measure_append_latency() {
    let _ = nats_urls_or_skip!();
    let h = JetStreamHarness::new();
    let log = h.node().await.open("latency", spec(1)).await.expect("opens");
    for (calls, per_call) in [(500, 1), (40, 500)] {
        let mut took = Vec::with_capacity(calls);
        for _ in 0..calls {
            let started = std::time::Instant::now();
            let answers = log.append(records(per_call, 1024)).await;
            took.push(started.elapsed());
            assert!(answers.iter().all(Result::is_ok));
        }
        took.sort();
        let at = |q: f64| took[((took.len() as f64 * q) as usize).min(took.len() - 1)];
        println!(
            "{calls} appends of {per_call} x 1 KiB: p50 {:?}, p99 {:?}, max {:?}",
            at(0.5),
            at(0.99),
            took[took.len() - 1]
        );
    }
}

/// Not a test: what appends see while a shard's stream leader dies. Run it by hand and kill -9
/// the leader of the stream it names (`/jsz?streams=true` on a monitor port) within its first
/// 10 seconds: it appends for 20 s from 4 tasks, counts the answers, and checks that every
/// acknowledged record is stored exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "an experiment; run by hand while killing a NATS server"]
async fn experiment_appends_across_a_leader_kill() {
    let _ = nats_urls_or_skip!();
    let h = JetStreamHarness::new();
    let log = h.node().await.open("election", spec(1)).await.expect("opens");
    let info = log.stats();
    println!("appending to the stream of shard {:?} (see /jsz for HYD_*_0)", info[0].shard);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..4)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                let (mut acked, mut failed, mut slowest) = (Vec::new(), 0, Duration::ZERO);
                let mut n = 0;
                while started.elapsed() < Duration::from_secs(20) {
                    let batch: Vec<Append> = (0..20)
                        .map(|i| Append::implicit(Bytes::from(format!("{t}-{}", n + i))))
                        .collect();
                    let call = std::time::Instant::now();
                    let answers = log.append(batch).await;
                    slowest = slowest.max(call.elapsed());
                    for (i, answer) in answers.into_iter().enumerate() {
                        match answer {
                            Ok(_) => acked.push(format!("{t}-{}", n + i)),
                            Err(AppendError::Unavailable(_)) => failed += 1,
                            Err(other) => panic!("unexpected {other}"),
                        }
                    }
                    n += 20;
                }
                (acked, failed, slowest)
            })
        })
        .collect();
    let (mut acked, mut failed, mut slowest) = (Vec::new(), 0, Duration::ZERO);
    for task in tasks {
        let (a, f, s) = task.await.unwrap();
        acked.extend(a);
        failed += f;
        slowest = slowest.max(s);
    }
    let other = h.node().await.open("election", spec(1)).await.expect("opens");
    let mut reader = other.reader(ShardId(0), ReadFrom::Oldest).await.expect("a reader");
    let mut stored = std::collections::BTreeMap::<String, usize>::new();
    loop {
        let batch = tokio::task::block_in_place(|| reader.read(ReadLimit::default())).unwrap();
        for entry in batch.entries {
            if let hydrant::log::Entry::Record(r) = entry {
                *stored.entry(String::from_utf8_lossy(&r.data).into_owned()).or_default() += 1;
            }
        }
        if batch.caught_up.is_some() {
            break;
        }
    }
    let missing = acked.iter().filter(|id| !stored.contains_key(*id)).count();
    let twice = stored.values().filter(|&&n| n > 1).count();
    println!(
        "acknowledged {}, unavailable {failed}, stored {}, acknowledged but missing {missing}, \
         stored twice {twice}, slowest call {slowest:?}",
        acked.len(),
        stored.len()
    );
    assert_eq!((missing, twice), (0, 0));
}
