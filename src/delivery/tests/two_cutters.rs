//! The property behind exactly-once across ownership changes (issue 13): however two cutters
//! of one shard interleave (a node takes the lease over while the old owner, a zombie, keeps
//! cutting until it notices; a node dies after an upload and before its checkpoint, and comes
//! back), every object written has the contents a single uninterrupted run writes for the
//! same key, and together they are that run's objects. Cuts are decided by seals stored in the
//! log, so a replay by anyone cuts the same.
//!
//! Each case runs real workers (threads) on [`MemoryLog`] through a random schedule of appends,
//! clock steps, take-overs and crashes, then compares every object any of them wrote with
//! those of a fresh consumer that reads the whole log once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;

use super::{lease, memory_log, start, Object, Recorder, Running};
use crate::delivery::{BatchPolicy, StopMode};
use crate::log::memory::MemoryStore;
use crate::log::{Append, ShardId, StreamLog};

/// What names an object: its first and last position.
type ObjectKey = ((u64, u32), (u64, u32));

/// Windows of 100 ms of the log's clock, and objects of at most 40 bytes (a few records).
const POLICY: BatchPolicy = BatchPolicy { max_bytes: 40, interval_ms: 100 };

#[derive(Debug, Clone)]
enum Step {
    /// Append this many records.
    Append(u8),
    /// Move the log's clock on by this many ms (window cuts follow).
    Tick(u16),
    /// Another node takes the lease; the old owner goes on as a zombie until it notices.
    TakeOver,
    /// The owner dies after its next upload, before the checkpoint, and comes back.
    CrashAfterWrite,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1u8..6).prop_map(Step::Append),
        3 => (1u16..250).prop_map(Step::Tick),
        1 => Just(Step::TakeOver),
        1 => Just(Step::CrashAfterWrite),
    ]
}

/// One node's worker and what it wrote.
struct Cutter {
    running: Running,
    sink: Arc<Recorder>,
}

async fn new_cutter(log: &Arc<dyn StreamLog>) -> Cutter {
    let sink = Arc::new(Recorder::default());
    let running = start(log, lease(log, "delivery").await, &sink, POLICY);
    Cutter { running, sink }
}

/// Runs `steps`; returns every object any cutter wrote and the objects of one uninterrupted
/// reading of the whole log.
async fn run(steps: Vec<Step>) -> (Vec<Object>, Vec<Object>, usize) {
    let store = MemoryStore::new();
    let (log, memory) = memory_log(&store).await;
    let mut clock = 1_000;
    memory.set_clock(clock);
    // Watermarks run ahead of arrivals, as another node's clock may: a record can arrive inside
    // a window a cutter already closed, and only the seals in the log make replays cut the same.
    memory.set_watermark_lead(150);
    // The consumer that reads everything at the end registers now, so retention keeps it all.
    let replay_lease = lease(&log, "replay").await;
    replay_lease.state().await.unwrap();
    let mut owner = new_cutter(&log).await;
    let mut retired: Vec<Cutter> = Vec::new();
    let mut appended = 0usize;
    for step in steps {
        match step {
            Step::Append(n) => {
                let records = (0..n).map(|_| {
                    appended += 1;
                    Append::implicit(Bytes::from(format!("r{appended} ")))
                });
                for result in log.append(records.collect()).await {
                    result.unwrap();
                }
            }
            Step::Tick(ms) => {
                clock += i64::from(ms);
                memory.set_clock(clock);
            }
            Step::TakeOver => {
                memory.take_over(ShardId(0), "delivery");
                retired.push(std::mem::replace(&mut owner, new_cutter(&log).await));
            }
            Step::CrashAfterWrite => {
                owner.sink.crash_after_write.store(true, Ordering::SeqCst);
                let written = owner.sink.objects().len();
                for _ in 0..40 {
                    if owner.sink.objects().len() > written {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                // The process is gone; the restarted one takes the lease back.
                memory.take_over(ShardId(0), "delivery");
                retired.push(std::mem::replace(&mut owner, new_cutter(&log).await));
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // The end: every window closes, and the owner delivers what is left; the zombies stop.
    memory.set_clock(clock + 60_000);
    let all_written = |owner: &Cutter, retired: &[Cutter]| -> Vec<Object> {
        let mut objects = owner.sink.objects();
        objects.extend(retired.iter().flat_map(|c| c.sink.objects()));
        objects
    };
    for _ in 0..2000 {
        if distinct_records(&all_written(&owner, &retired)) >= appended {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let written = all_written(&owner, &retired);
    owner.running.stop(StopMode::Stop).await;
    for cutter in retired {
        cutter.running.stop(StopMode::Stop).await;
    }

    // One uninterrupted run: a consumer that reads the whole log from the start.
    let sink = Arc::new(Recorder::default());
    let replay = start(&log, replay_lease, &sink, POLICY);
    for _ in 0..2000 {
        if distinct_records(&sink.objects()) >= appended {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    replay.stop(StopMode::Drain).await;
    (written, sink.objects(), appended)
}

/// How many different records `objects` hold.
fn distinct_records(objects: &[Object]) -> usize {
    let records: BTreeSet<&[u8]> = (objects.iter())
        .flat_map(|(_, _, body)| body.split(|b| *b == b' ').filter(|r| !r.is_empty()))
        .collect();
    records.len()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn two_cutters_with_crashes_write_the_objects_of_one_uninterrupted_run(
        steps in proptest::collection::vec(step(), 1..30)
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (written, single, appended) = runtime.block_on(run(steps));
        // No key has two contents.
        let mut by_key: BTreeMap<ObjectKey, Bytes> = BTreeMap::new();
        for (first, last, body) in &written {
            if let Some(other) = by_key.insert((*first, *last), body.clone()) {
                prop_assert_eq!(&other, body, "two contents for the object of {:?}..{:?}", first, last);
            }
        }
        // Together, the uninterrupted run's objects; and that run delivers every record once.
        let written: BTreeSet<Object> = written.into_iter().collect();
        let single_set: BTreeSet<Object> = single.iter().cloned().collect();
        prop_assert_eq!(&written, &single_set);
        let records: Vec<&[u8]> = (single.iter())
            .flat_map(|(_, _, body)| body.split(|b| *b == b' ').filter(|r| !r.is_empty()))
            .collect();
        let distinct: BTreeSet<&[u8]> = records.iter().copied().collect();
        prop_assert_eq!(records.len(), appended);
        prop_assert_eq!(distinct.len(), appended);
    }
}
