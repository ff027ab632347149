//! The delivery worker on [`MemoryLog`], which has what the embedded log lacks (leases that can
//! be lost, shards that end), and on the embedded log for what both have (seals stored in the
//! log, across a restart). Each test runs real workers (threads) against the log and a sink
//! that records the objects.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bytes::Bytes;

use super::assembler::{Assembler, Stages};
use super::buffers::{Layout, Markers, Unit};
use super::sink::{ErrorOutput, Sink, SinkContext, SinkResult};
use super::worker::restart_wait;
use super::{BatchPolicy, ShardWorker, StopMode, WorkerSignals, WorkerStatus};
use crate::codec::{compression_for, CompressionFormat, ObjectCodec};
use crate::log::memory::{MemoryLog, MemoryStore};
use crate::log::{
    Append, AtRestKeys, DiskBudget, EmbeddedStore, LogOptions, LogStore, Record, ShardId,
    ShardLease, ShardState, StreamLog, StreamSpec,
};
use crate::telemetry::Metrics;

/// An object as the tests compare them: first and last position, and the bytes.
type Object = ((u64, u32), (u64, u32), Bytes);

fn object(unit: &Unit) -> Object {
    ((unit.first.seq, unit.first.sub), (unit.last.seq, unit.last.sub), unit.body.clone())
}

fn codec() -> ObjectCodec {
    ObjectCodec::concatenated(compression_for(CompressionFormat::Uncompressed).into(), "")
}

/// Records what it is given. It can hold deliveries until released, and can "crash" after
/// writing an object: the upload then ends as a shutdown would, before anything is committed.
#[derive(Default)]
struct Recorder {
    objects: Mutex<Vec<Object>>,
    crash_after_write: AtomicBool,
    held: Mutex<bool>,
    released: Condvar,
    waiting: AtomicBool,
}

impl Recorder {
    fn objects(&self) -> Vec<Object> {
        self.objects.lock().unwrap().clone()
    }

    fn hold(&self) {
        *self.held.lock().unwrap() = true;
    }

    fn release(&self) {
        *self.held.lock().unwrap() = false;
        self.released.notify_all();
    }
}

impl Sink for Recorder {
    fn layout(&self) -> Layout {
        Layout::Object
    }

    fn deliver(&self, unit: &Unit, _ctx: &SinkContext) -> SinkResult<bool> {
        let mut held = self.held.lock().unwrap();
        while *held {
            self.waiting.store(true, Ordering::SeqCst);
            held = self.released.wait(held).unwrap();
        }
        self.objects.lock().unwrap().push(object(unit));
        Ok(!self.crash_after_write.load(Ordering::SeqCst))
    }

    fn error_output(&self) -> &dyn ErrorOutput {
        self
    }
}

/// Error units are recorded like objects.
impl ErrorOutput for Recorder {
    fn deliver_errors(&self, unit: &Unit, ctx: &SinkContext) -> SinkResult<bool> {
        Sink::deliver(self, unit, ctx)
    }
}

/// One running worker.
struct Running {
    signals: WorkerSignals,
    threads: Vec<std::thread::JoinHandle<()>>,
    status: Arc<WorkerStatus>,
}

impl Running {
    fn finished(&self) -> bool {
        self.threads.iter().all(|t| t.is_finished())
    }

    async fn stop(self, mode: StopMode) {
        self.signals.request(mode);
        tokio::task::spawn_blocking(move || {
            for t in self.threads {
                t.join().unwrap();
            }
        })
        .await
        .unwrap();
    }
}

fn start(
    log: &Arc<dyn StreamLog>,
    lease: Arc<dyn ShardLease>,
    sink: &Arc<Recorder>,
    policy: BatchPolicy,
) -> Running {
    let signals = WorkerSignals::new();
    let status = Arc::new(WorkerStatus::new());
    let worker = ShardWorker {
        stream: "memory".into(),
        log: log.clone(),
        shard_index: lease.shard().0,
        lease,
        version: 1,
        policy,
        codec: codec(),
        stages: Mutex::new(Some(Stages::plain())),
        restart_stages: Arc::new(|| Ok(Stages::plain())),
        evaluates_jq: false,
        sink: sink.clone(),
        metrics: Metrics::global(),
        status: status.clone(),
        stop: signals.receiver(),
        runtime: tokio::runtime::Handle::current(),
    };
    Running { threads: worker.spawn().unwrap(), signals, status }
}

/// Waits (up to 10 s) until `done`.
async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..2000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting until {what}");
}

async fn memory_log(store: &Arc<MemoryStore>) -> (Arc<dyn StreamLog>, MemoryLog) {
    let spec = StreamSpec { shards: 1, at_rest: AtRestKeys::default() };
    let log = store.open("s", spec).await.unwrap();
    (log, store.log("s"))
}

async fn lease(log: &Arc<dyn StreamLog>, consumer: &str) -> Arc<dyn ShardLease> {
    log.assignments(consumer).unwrap().next().await.unwrap()
}

async fn append(log: &Arc<dyn StreamLog>, records: &[&'static str]) {
    let records = records.iter().map(|r| Append::implicit(Bytes::from_static(r.as_bytes())));
    for result in log.append(records.collect()).await {
        result.unwrap();
    }
}

/// A window long enough that only seals cut.
const LONG: BatchPolicy = BatchPolicy { max_bytes: 1 << 20, interval_ms: 60_000 };

/// A worker drains (a shutdown) and the process dies after the drain's object is written,
/// before the checkpoint moves (the sink ends the upload as a kill would, committing
/// nothing). Returns the objects it wrote.
async fn drain_and_die(log: &Arc<dyn StreamLog>) -> Vec<Object> {
    let crashing = Arc::new(Recorder::default());
    crashing.crash_after_write.store(true, Ordering::SeqCst);
    let first = start(log, lease(log, "delivery").await, &crashing, LONG);
    until("the records are read", || first.status.oldest_undelivered_ms().is_some()).await;
    first.stop(StopMode::Drain).await;
    crashing.objects()
}

/// The restart after [`drain_and_die`]: a worker replays until it has written an object,
/// then drains. Returns the objects it wrote.
async fn replay_and_drain(log: &Arc<dyn StreamLog>) -> Vec<Object> {
    let sink = Arc::new(Recorder::default());
    let second = start(log, lease(log, "delivery").await, &sink, LONG);
    until("the replay wrote the drained object", || !sink.objects().is_empty()).await;
    second.stop(StopMode::Drain).await;
    sink.objects()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_a_drain_replays_into_the_objects_it_already_wrote() {
    let store = MemoryStore::new();
    let (log, memory) = memory_log(&store).await;
    memory.set_clock(1_000);
    append(&log, &["a0 ", "a1 ", "a2 "]).await;

    // The first worker drains (a shutdown): the early cut is recorded in the log, the object
    // is written, and the process dies before the checkpoint moves.
    let written = drain_and_die(&log).await;
    assert_eq!(written, [((0, 0), (2, 0), Bytes::from_static(b"a0 a1 a2 "))]);
    assert_eq!(lease(&log, "delivery").await.state().await.unwrap().next_seq, 0);

    // More records in the same window, then a restart: the replay cuts at the recorded drain,
    // so it writes the very same object (same key), not a bigger one.
    append(&log, &["b3 ", "b4 "]).await;
    let replayed = replay_and_drain(&log).await;
    assert_eq!(replayed[0], written[0]);
    assert_eq!(replayed[1].2, Bytes::from_static(b"b3 b4 "));
    assert_eq!(replayed.len(), 2);
}

/// Proof 7 of issue 13 on the embedded log: a process killed during a drain, after an early cut
/// object was uploaded and before its checkpoint, is restarted on the same data directory; the
/// replay reads the drain's seal frame and writes the same object under the same positions
/// (an overwrite), and the records after it go to an object of their own. Before seals were
/// stored, the replay merged them into one bigger object: the first one's records twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_embedded_log_a_kill_during_a_drain_replays_into_the_objects_it_already_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let spec = || StreamSpec { shards: 1, at_rest: AtRestKeys::default() };
    let store = || EmbeddedStore::new(dir.path(), LogOptions::default(), DiskBudget::new(None));
    let log = store().open("s", spec()).await.unwrap();
    assert!(log.capabilities().durable_seals);
    append(&log, &["a0 ", "a1 ", "a2 "]).await;

    // The drain seals the buffer early; the upload happens and the process dies before the
    // checkpoint moves (the sink ends the upload as a kill would, committing nothing).
    let before = drain_and_die(&log).await;
    assert_eq!(before, [((0, 0), (2, 0), Bytes::from_static(b"a0 a1 a2 "))]);
    log.close().await;
    drop(log);

    // The restart, on the same directory; more records arrive in the same window.
    let log = store().open("s", spec()).await.unwrap();
    assert_eq!(lease(&log, "delivery").await.state().await.unwrap().next_seq, 0);
    append(&log, &["b4 ", "b5 "]).await;
    let after = replay_and_drain(&log).await;
    assert_eq!(after.len(), 2, "{after:?}");
    // The same object again (same first and last position: the same key), then the new
    // records alone (positions 4 and 5: the drain's seal frame is at 3).
    assert_eq!(after[0], before[0]);
    assert_eq!(after[1], ((4, 0), (5, 0), Bytes::from_static(b"b4 b5 ")));
    let records: Vec<Bytes> = (after.iter())
        .flat_map(|(_, _, body)| body.split(|b| *b == b' ').filter(|r| !r.is_empty()))
        .map(Bytes::copy_from_slice)
        .collect();
    let distinct: std::collections::BTreeSet<&Bytes> = records.iter().collect();
    assert_eq!(distinct.len(), records.len(), "no record delivered twice after the restart");
}

/// A window cut while caught up records a seal after the last record; once the object it
/// sealed is delivered, the checkpoint passes the seal too, so the shard shows no backlog and a
/// restart does not read the seal again. A graceful stop with nothing open records no seal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_embedded_log_the_checkpoint_passes_the_seal_that_cut_the_last_object() {
    let dir = tempfile::tempdir().unwrap();
    let spec = StreamSpec { shards: 1, at_rest: AtRestKeys::default() };
    let store = EmbeddedStore::new(dir.path(), LogOptions::default(), DiskBudget::new(None));
    let log = store.open("s", spec).await.unwrap();
    append(&log, &["w0 "]).await;
    let sink = Arc::new(Recorder::default());
    let policy = BatchPolicy { max_bytes: 1 << 20, interval_ms: 1 };
    let worker = start(&log, lease(&log, "delivery").await, &sink, policy);
    until("the window cut", || sink.objects().len() == 1).await;
    assert_eq!(log.stats()[0].next_seq, 2, "the record at 0, the seal at 1");
    until("the checkpoint passed the seal", || worker.status.next_seq() == 2).await;
    worker.stop(StopMode::Drain).await;
    assert_eq!(log.stats()[0].next_seq, 2, "a drain with nothing open records no seal");
    assert_eq!(lease(&log, "delivery").await.state().await.unwrap().next_seq, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_cuts_replay_from_their_seals_when_the_watermark_is_only_a_hint() {
    let store = MemoryStore::new();
    let (log, memory) = memory_log(&store).await;
    // Watermarks run ahead of arrivals, as another node's clock may: a record can still
    // arrive inside a window the watermark said was over.
    memory.set_watermark_lead(5_000);
    assert!(!log.capabilities().watermark_is_a_bound);
    memory.set_clock(1_000);
    let policy = BatchPolicy { max_bytes: 1 << 20, interval_ms: 1_000 };
    // The consumer that replays later registers now, so that retention keeps the records.
    let replay_lease = lease(&log, "replay").await;
    replay_lease.state().await.unwrap();
    append(&log, &["r0 "]).await;
    let sink = Arc::new(Recorder::default());
    let worker = start(&log, lease(&log, "delivery").await, &sink, policy);
    until("the first cut", || sink.objects().len() == 1).await;
    memory.set_clock(1_500);
    append(&log, &["r1 "]).await;
    until("the second cut", || sink.objects().len() == 2).await;
    worker.stop(StopMode::Stop).await;
    let live = sink.objects();
    // The records as stored (before the replay's commits let retention delete them).
    let records: Vec<Record> = (memory.entries(ShardId(0), 0).into_iter())
        .filter_map(|e| match e {
            crate::log::Entry::Record(r) => Some(r),
            _ => None,
        })
        .collect();

    // A replay by another owner (here: from scratch) cuts where the seals say.
    let replay_sink = Arc::new(Recorder::default());
    let replay = start(&log, replay_lease, &replay_sink, policy);
    until("the replay's cuts", || replay_sink.objects().len() == 2).await;
    replay.stop(StopMode::Stop).await;
    assert_eq!(replay_sink.objects(), live);

    // Without the seals, r1 (which arrived inside r0's window) would join r0's object.
    let codec = codec();
    let mut unsealed =
        Assembler::new(Stages::plain(), &codec, 0, Layout::Object, policy, Markers::default(), 0);
    for r in &records {
        unsealed.push(r).unwrap();
    }
    let without: Vec<Object> = unsealed.finish().unwrap().iter().map(object).collect();
    assert_eq!(without.len(), 1, "{without:?}");
    assert_ne!(without, live);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_finishes_a_shard_that_ends_and_its_children_are_granted_after_it() {
    let store = MemoryStore::new();
    let (log, _) = memory_log(&store).await;
    let mut assignments = log.assignments("delivery").unwrap();
    let parent = assignments.next().await.unwrap();
    append(&log, &["p0 ", "p1 ", "p2 "]).await;
    let sink = Arc::new(Recorder::default());
    let worker = start(&log, parent.clone(), &sink, LONG);
    until("the records are read", || worker.status.oldest_undelivered_ms().is_some()).await;
    let split = crate::log::Reshard::Split { shard: ShardId(0), at: 1 << 127 };
    let children = log.reshard(split).await.unwrap();
    until("the worker finished the shard", || worker.finished()).await;
    assert_eq!(sink.objects(), [((0, 0), (2, 0), Bytes::from_static(b"p0 p1 p2 "))]);
    let ShardState::Closed { end } = log.shards()[0].state else { panic!("the parent is closed") };
    assert_eq!(parent.state().await.unwrap().next_seq, end);
    let mut granted = Vec::new();
    for _ in 0..2 {
        let child = tokio::time::timeout(Duration::from_secs(5), assignments.next()).await;
        granted.push(child.unwrap().unwrap().shard());
    }
    granted.sort();
    assert_eq!(granted, children.to_vec());
    assert!(!worker.status.health().is_down());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_lost_its_lease_stops_and_commits_nothing() {
    let store = MemoryStore::new();
    let (log, memory) = memory_log(&store).await;
    memory.set_clock(1_000);
    append(&log, &["z0 "]).await;
    // Past the record's window, so that the worker cuts it at once.
    memory.set_clock(2_000);
    let sink = Arc::new(Recorder::default());
    sink.hold();
    let policy = BatchPolicy { max_bytes: 1 << 20, interval_ms: 0 };
    let worker = start(&log, lease(&log, "delivery").await, &sink, policy);
    until("an upload is under way", || sink.waiting.load(Ordering::SeqCst)).await;
    // Another node takes the shard while this one is paused in the upload (a zombie).
    memory.take_over(ShardId(0), "delivery");
    sink.release();
    until("the worker stopped", || worker.finished()).await;
    assert_eq!(
        sink.objects().len(),
        1,
        "the zombie's write happened (the same object the new owner writes)"
    );
    let now = lease(&log, "delivery").await.state().await.unwrap();
    assert_eq!(now.next_seq, 0, "but its checkpoint did not move");
    assert!(now.markers.is_empty());
    assert!(!worker.status.health().is_down(), "losing a lease is not a failure");
}

#[test]
fn restart_waits_double_from_200_ms_and_never_pass_ten_seconds() {
    use super::worker::{FIRST_RESTART_WAIT, MAX_RESTART_WAIT};
    let waits: Vec<Duration> = (1..=12).map(restart_wait).collect();
    assert!(waits[0] <= FIRST_RESTART_WAIT && waits[0] >= FIRST_RESTART_WAIT * 85 / 100);
    assert!(waits[3] >= Duration::from_millis(1360) && waits[3] <= Duration::from_millis(1600));
    assert!(waits.iter().all(|w| *w <= MAX_RESTART_WAIT), "{waits:?}");
    assert!(waits[11] >= MAX_RESTART_WAIT * 85 / 100, "{waits:?}");
    assert!(restart_wait(u32::MAX) <= MAX_RESTART_WAIT);
}

/// Two cutters of one shard, with crashes: the objects of one uninterrupted run.
mod two_cutters;
