//! The contract every implementation of the log's traits keeps, as tests. An implementation
//! runs all of them with [`contract_suite!`] and a [`Harness`]:
//!
//! ```ignore
//! mod contract {
//!     crate::log::contract::contract_suite!(super::MyHarness::new());
//! }
//! ```
//!
//! It is compiled into the library (not only its tests) so that integration tests outside
//! the crate can run it: `tests/log_jetstream.rs` runs it against a real NATS cluster, as
//! `hydrant::log::contract::contract_suite!`.
//!
//! Each case is one promise of the docs in `log/mod.rs`, named as a sentence. Cases about a
//! [capability](super::Capabilities) the log does not have check that it says so and stop.
//!
//! Long file: one function per promise of the trait docs, in their order, so that the two read
//! side by side; splitting them would scatter one contract over several files.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{
    Append, Appended, AtRestKeys, ConsumerState, Entry, HashRange, LeaseError, LogStore, MarkerKey,
    Markers, OpenError, Position, Progress, ReadError, ReadFrom, ReadLimit, Record, Reshard,
    ReshardError, Route, SealKind, SealOutcome, SealProposal, ShardEnd, ShardId, ShardLease,
    ShardReader, ShardState, StreamLog, StreamSpec,
};

/// What the suite needs from an implementation.
pub trait Harness: Send + Sync {
    /// A store over this harness's storage: every call gives a store over the same data, so
    /// that closing and dropping a log and opening it again is a reopen (a restart).
    fn store(&self) -> Arc<dyn LogStore>;

    /// Keys that encrypt at rest.
    fn keys(&self) -> AtRestKeys;

    /// Makes another owner take `consumer`'s lease on `shard` of `stream`'s log (logs whose
    /// leases can be lost).
    fn take_over(&self, stream: &str, shard: ShardId, consumer: &str) {
        let _ = (stream, shard, consumer);
        unreachable!("this log's leases cannot be lost")
    }
}

/// One `#[tokio::test]` per case of the contract, for `$harness` (an expression evaluated
/// anew in each test). With `when $ready`, each test first evaluates `$ready` and passes at
/// once when it is false (a service the harness needs is not there, and the tests may skip).
#[doc(hidden)]
#[macro_export]
macro_rules! log_contract_suite {
    ($harness:expr) => {
        $crate::log::contract::contract_suite!($harness, when $crate::log::contract::ALWAYS);
    };
    ($harness:expr, when $ready:expr) => {
        $crate::log::contract::contract_suite!(@cases ($ready) $harness;
            every_log_stores_seals_or_bounds_its_watermark,
            acknowledged_records_are_read_back_after_reopen,
            records_of_one_shard_come_back_in_append_order_at_increasing_positions,
            a_reader_starts_at_the_position_asked_for,
            each_record_is_read_back_with_the_arrival_time_its_append_answered,
            arrival_times_never_decrease_within_a_shard,
            the_caught_up_watermark_bounds_every_later_arrival,
            a_new_consumer_starts_at_the_oldest_retained_entry_without_markers,
            committed_state_survives_reopen,
            a_commit_outside_the_shard_is_refused_and_stores_nothing,
            retention_never_deletes_what_a_registered_consumer_has_not_passed,
            markers_beyond_the_end_are_lowered_when_the_log_is_opened,
            a_seal_proposed_after_new_entries_is_moved,
            a_reader_moves_past_its_own_seal,
            a_seal_is_read_back_at_its_position_by_every_later_reader,
            two_seals_at_one_position_agree,
            a_lost_lease_cannot_commit,
            records_read_back_as_appended_across_encryption_switches,
            every_append_after_an_encryption_switch_returns_is_in_the_new_mode,
            an_encryption_switch_takes_effect_at_one_position_of_every_shard,
            encrypting_without_keys_is_refused,
            shards_cover_the_hash_space_exactly_once_and_records_route_by_range,
            implicit_routes_spread_records_over_every_shard,
            a_closed_shard_ends_and_its_children_are_granted_after_it,
            a_merge_ends_both_parents_and_its_child_is_granted_after_both,
            the_children_of_an_empty_closed_shard_are_granted_once_the_consumer_registers,
            reshards_that_break_the_rules_are_refused_and_change_nothing,
            shard_lineage_and_positions_survive_reopen,
            consumer_names_outside_the_rule_are_refused,
            a_forgotten_consumer_starts_over,
            a_deleted_log_starts_empty_when_opened_again,
            an_existing_log_keeps_its_shard_count,
            a_log_is_open_at_most_once,
            a_shared_log_opens_through_every_store,
        );
    };
    (@cases ($ready:expr) $harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                if !$ready {
                    return;
                }
                $crate::log::contract::$case(&$harness).await;
            }
        )*
    };
}
pub use crate::log_contract_suite as contract_suite;

/// The `when` of a harness that needs nothing outside the process.
#[doc(hidden)]
pub const ALWAYS: bool = true;

const STREAM: &str = "contract";
const CONSUMER: &str = "contract-consumer";

fn spec(shards: u32, at_rest: AtRestKeys) -> StreamSpec {
    StreamSpec { shards, at_rest }
}

async fn open(h: &dyn Harness, shards: u32) -> Arc<dyn StreamLog> {
    h.store().open(STREAM, spec(shards, AtRestKeys::default())).await.expect("the log opens")
}

/// Closes `log`, drops it and opens it again (what a restart does).
async fn reopen(
    h: &dyn Harness,
    log: Arc<dyn StreamLog>,
    at_rest: AtRestKeys,
) -> Arc<dyn StreamLog> {
    let shards = log.shards().len() as u32;
    log.close().await;
    drop(log);
    h.store().open(STREAM, spec(shards, at_rest)).await.expect("the log opens again")
}

fn data(i: usize) -> Bytes {
    Bytes::from(format!("record-{i:05}"))
}

/// Appends `records` routed as `route` says and expects every one stored.
async fn append(log: &Arc<dyn StreamLog>, records: Vec<Bytes>, route: Route) -> Vec<Appended> {
    let records = records.into_iter().map(|data| Append { data, route }).collect();
    log.append(records).await.into_iter().map(|r| r.expect("stored")).collect()
}

/// The first hash key of `shard` (so records go there).
fn key_of(log: &Arc<dyn StreamLog>, shard: ShardId) -> Route {
    let info = log.shards().into_iter().find(|s| s.id == shard).expect("a shard of the log");
    Route::HashKey(info.hash_range.start)
}

async fn reader(log: &Arc<dyn StreamLog>, shard: ShardId, from: ReadFrom) -> Box<dyn ShardReader> {
    log.reader(shard, from).await.expect("a reader")
}

/// Reads until caught up; the entries and the last watermark.
fn read_to_end(reader: &mut dyn ShardReader) -> (Vec<Entry>, i64) {
    let mut entries = Vec::new();
    loop {
        let batch = reader.read(ReadLimit { entries: 7, bytes: 1 << 20 }).expect("reads");
        entries.extend(batch.entries);
        if let Some(watermark) = batch.caught_up {
            return (entries, watermark);
        }
    }
}

fn records(entries: &[Entry]) -> Vec<Record> {
    (entries.iter())
        .filter_map(|e| match e {
            Entry::Record(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

async fn all_records(log: &Arc<dyn StreamLog>, shard: ShardId) -> Vec<Record> {
    records(&read_to_end(reader(log, shard, ReadFrom::Oldest).await.as_mut()).0)
}

async fn lease(log: &Arc<dyn StreamLog>, shard: ShardId) -> Arc<dyn ShardLease> {
    let mut assignments = log.assignments(CONSUMER).expect("a valid consumer");
    loop {
        let lease = tokio::time::timeout(Duration::from_secs(5), assignments.next())
            .await
            .expect("granted in time")
            .expect("the shard is granted");
        if lease.shard() == shard {
            return lease;
        }
    }
}

fn partition(value: &str) -> MarkerKey {
    MarkerKey::Partition {
        query: BTreeMap::from([("k".to_string(), value.to_string())]),
        lambda: BTreeMap::new(),
    }
}

pub async fn every_log_stores_seals_or_bounds_its_watermark(h: &dyn Harness) {
    let caps = open(h, 1).await.capabilities();
    assert!(caps.durable_seals || caps.watermark_is_a_bound, "{caps:?}: cuts would not replay");
}

pub async fn acknowledged_records_are_read_back_after_reopen(h: &dyn Harness) {
    let log = open(h, 2).await;
    let appended = append(&log, (0..50).map(data).collect(), Route::Implicit).await;
    let log = reopen(h, log, AtRestKeys::default()).await;
    for shard in [ShardId(0), ShardId(1)] {
        let want: Vec<(u64, Bytes)> = (appended.iter().enumerate())
            .filter(|(_, a)| a.shard == shard)
            .map(|(i, a)| (a.seq, data(i)))
            .collect();
        let got: Vec<(u64, Bytes)> =
            all_records(&log, shard).await.into_iter().map(|r| (r.seq, r.data)).collect();
        assert_eq!(got, want, "shard {shard}");
    }
}

pub async fn records_of_one_shard_come_back_in_append_order_at_increasing_positions(
    h: &dyn Harness,
) {
    let log = open(h, 3).await;
    let route = key_of(&log, ShardId(1));
    let mut appended = Vec::new();
    for call in 0..3 {
        appended.extend(append(&log, (call * 10..call * 10 + 10).map(data).collect(), route).await);
    }
    assert!(appended.iter().all(|a| a.shard == ShardId(1)));
    assert!(appended.windows(2).all(|w| w[0].seq < w[1].seq), "{appended:?}");
    let read = all_records(&log, ShardId(1)).await;
    assert_eq!(
        read.iter().map(|r| r.seq).collect::<Vec<_>>(),
        appended.iter().map(|a| a.seq).collect::<Vec<_>>()
    );
    assert_eq!(
        read.into_iter().map(|r| r.data).collect::<Vec<_>>(),
        (0..30).map(data).collect::<Vec<_>>()
    );
}

pub async fn a_reader_starts_at_the_position_asked_for(h: &dyn Harness) {
    let log = open(h, 1).await;
    let appended = append(&log, (0..20).map(data).collect(), Route::Implicit).await;
    let mut from_seventh = reader(&log, ShardId(0), ReadFrom::Seq(appended[7].seq)).await;
    assert_eq!(records(&read_to_end(from_seventh.as_mut()).0)[0].data, data(7));
    let mut oldest = reader(&log, ShardId(0), ReadFrom::Oldest).await;
    assert_eq!(records(&read_to_end(oldest.as_mut()).0).len(), 20);
    let mut latest = reader(&log, ShardId(0), ReadFrom::Latest).await;
    assert!(read_to_end(latest.as_mut()).0.is_empty());
    append(&log, vec![data(20)], Route::Implicit).await;
    assert_eq!(records(&read_to_end(latest.as_mut()).0)[0].data, data(20));
    let beyond = appended[19].seq + 10;
    let e = log.reader(ShardId(0), ReadFrom::Seq(beyond)).await.unwrap_err();
    assert!(matches!(e, ReadError::BeyondEnd { requested, .. } if requested == beyond), "{e}");
    let e = log.reader(ShardId(9), ReadFrom::Oldest).await.unwrap_err();
    assert!(matches!(e, ReadError::UnknownShard(ShardId(9))), "{e}");
}

/// Appends 4 × 20 calls of 5 records from 4 tasks at once; every answer by (shard, seq).
async fn append_concurrently(log: &Arc<dyn StreamLog>) -> BTreeMap<(ShardId, u64), i64> {
    let tasks: Vec<_> = (0..4)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut out = Vec::new();
                for call in 0..20 {
                    let batch = (0..5).map(|i| data(t * 1000 + call * 10 + i)).collect();
                    out.extend(append(&log, batch, Route::Implicit).await);
                }
                out
            })
        })
        .collect();
    let mut appended = BTreeMap::new();
    for task in tasks {
        for a in task.await.unwrap() {
            appended.insert((a.shard, a.seq), a.arrival_ms);
        }
    }
    appended
}

pub async fn each_record_is_read_back_with_the_arrival_time_its_append_answered(h: &dyn Harness) {
    let log = open(h, 2).await;
    let appended = append_concurrently(&log).await;
    for shard in [ShardId(0), ShardId(1)] {
        let read = all_records(&log, shard).await;
        assert_eq!(read.len(), appended.keys().filter(|(s, _)| *s == shard).count());
        for r in read {
            assert_eq!(appended[&(shard, r.seq)], r.arrival_ms, "the answer said when it arrived");
        }
    }
}

pub async fn arrival_times_never_decrease_within_a_shard(h: &dyn Harness) {
    let log = open(h, 2).await;
    if !log.capabilities().monotonic_arrivals {
        return;
    }
    append_concurrently(&log).await;
    for shard in [ShardId(0), ShardId(1)] {
        let read = all_records(&log, shard).await;
        assert!(read.windows(2).all(|w| w[0].arrival_ms <= w[1].arrival_ms), "shard {shard}");
    }
}

pub async fn the_caught_up_watermark_bounds_every_later_arrival(h: &dyn Harness) {
    let log = open(h, 1).await;
    if !log.capabilities().watermark_is_a_bound {
        return;
    }
    let writer = {
        let log = log.clone();
        tokio::spawn(async move {
            for i in 0..200 {
                append(&log, vec![data(i)], Route::Implicit).await;
                if i % 20 == 0 {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        })
    };
    let mut reader = reader(&log, ShardId(0), ReadFrom::Oldest).await;
    let (mut bound, mut seen) = (i64::MIN, 0);
    while seen < 200 {
        let batch = reader.read(ReadLimit { entries: 3, bytes: 1 << 20 }).expect("reads");
        for r in records(&batch.entries) {
            assert!(
                r.arrival_ms >= bound,
                "record {} arrived at {} < watermark {bound}",
                r.seq,
                r.arrival_ms
            );
            seen += 1;
        }
        if let Some(w) = batch.caught_up {
            bound = bound.max(w);
            tokio::task::yield_now().await;
        }
    }
    writer.await.unwrap();
}

pub async fn a_new_consumer_starts_at_the_oldest_retained_entry_without_markers(h: &dyn Harness) {
    let log = open(h, 1).await;
    append(&log, (0..5).map(data).collect(), Route::Implicit).await;
    let oldest = reader(&log, ShardId(0), ReadFrom::Oldest).await.position();
    let state = lease(&log, ShardId(0)).await.state().await.expect("registers");
    assert_eq!(state, ConsumerState { next_seq: oldest, markers: Default::default() });
}

pub async fn committed_state_survives_reopen(h: &dyn Harness) {
    let log = open(h, 2).await;
    let appended = append(&log, (0..6).map(data).collect(), key_of(&log, ShardId(1))).await;
    let markers = BTreeMap::from([
        (partition("a"), Position { seq: appended[4].seq, sub: 2 }),
        (MarkerKey::Errors("processing-failed".into()), Position { seq: appended[5].seq, sub: 0 }),
    ]);
    let held = lease(&log, ShardId(1)).await;
    held.state().await.expect("registers");
    let progress = Progress { markers: Some(markers.clone()), next_seq: Some(appended[3].seq) };
    held.commit(progress).await.expect("commits");
    drop(held);
    let log = reopen(h, log, AtRestKeys::default()).await;
    let state = lease(&log, ShardId(1)).await.state().await.expect("loads");
    assert_eq!(state, ConsumerState { next_seq: appended[3].seq, markers });
    let other = lease(&log, ShardId(0)).await.state().await.expect("loads");
    assert!(other.markers.is_empty(), "state is per shard");
}

pub async fn a_commit_outside_the_shard_is_refused_and_stores_nothing(h: &dyn Harness) {
    let log = open(h, 1).await;
    let appended = append(&log, (0..3).map(data).collect(), Route::Implicit).await;
    let held = lease(&log, ShardId(0)).await;
    let before = held.state().await.expect("registers");
    let end = appended[2].seq + 1;
    let markers = BTreeMap::from([(partition("x"), Position { seq: 1, sub: 0 })]);
    let e = held
        .commit(Progress { markers: Some(markers), next_seq: Some(end + 5) })
        .await
        .unwrap_err();
    assert!(matches!(e, LeaseError::OutOfRange { next_seq, .. } if next_seq == end + 5), "{e}");
    assert_eq!(held.state().await.expect("loads"), before);
    held.commit(Progress { markers: None, next_seq: Some(end) })
        .await
        .expect("the end is in range");
}

pub async fn retention_never_deletes_what_a_registered_consumer_has_not_passed(h: &dyn Harness) {
    let log = open(h, 1).await;
    let held = lease(&log, ShardId(0)).await;
    let start = held.state().await.expect("registers").next_seq;
    let mut last = 0;
    for call in 0..20 {
        let appended =
            append(&log, (call * 10..call * 10 + 10).map(data).collect(), Route::Implicit).await;
        last = appended[9].seq;
    }
    // Another consumer passes everything; this one has read nothing.
    let mut assignments = log.assignments("fast-consumer").expect("valid");
    let fast = assignments.next().await.expect("granted");
    fast.state().await.expect("registers");
    fast.commit(Progress { markers: None, next_seq: Some(last + 1) }).await.expect("commits");
    let mut from_start = reader(&log, ShardId(0), ReadFrom::Seq(start)).await;
    assert_eq!(records(&read_to_end(from_start.as_mut()).0).len(), 200);
    // Once both passed it, it may go.
    held.commit(Progress { markers: None, next_seq: Some(last + 1) }).await.expect("commits");
    match log.reader(ShardId(0), ReadFrom::Seq(start)).await {
        Ok(mut r) => assert!(records(&read_to_end(r.as_mut()).0).len() <= 200),
        Err(e) => assert!(matches!(e, ReadError::Trimmed { .. }), "{e}"),
    }
}

pub async fn markers_beyond_the_end_are_lowered_when_the_log_is_opened(h: &dyn Harness) {
    let log = open(h, 1).await;
    let appended = append(&log, (0..5).map(data).collect(), Route::Implicit).await;
    let (inside, end) = (appended[3].seq, appended[4].seq + 1);
    let held = lease(&log, ShardId(0)).await;
    held.state().await.expect("registers");
    let markers = BTreeMap::from([
        (partition("in"), Position { seq: inside, sub: 0 }),
        (partition("past"), Position { seq: end + 4, sub: 2 }),
        (MarkerKey::Errors("processing-failed".into()), Position { seq: end, sub: 0 }),
    ]);
    held.commit(Progress { markers: Some(markers), next_seq: None }).await.expect("commits");
    drop(held);
    let log = reopen(h, log, AtRestKeys::default()).await;
    let state = lease(&log, ShardId(0)).await.state().await.expect("loads");
    let lowered = Position { seq: end - 1, sub: u32::MAX };
    assert_eq!(
        state.markers,
        BTreeMap::from([
            (partition("in"), Position { seq: inside, sub: 0 }),
            (partition("past"), lowered),
            (MarkerKey::Errors("processing-failed".into()), lowered),
        ])
    );
}

pub async fn a_seal_proposed_after_new_entries_is_moved(h: &dyn Harness) {
    let log = open(h, 1).await;
    append(&log, vec![data(0)], Route::Implicit).await;
    let mut reader = reader(&log, ShardId(0), ReadFrom::Oldest).await;
    let (_, w) = read_to_end(reader.as_mut());
    append(&log, vec![data(1)], Route::Implicit).await;
    let proposal = SealProposal { watermark_ms: w, kind: SealKind::Window };
    assert_eq!(reader.seal(proposal).await.expect("answers"), SealOutcome::Moved);
    assert_eq!(records(&read_to_end(reader.as_mut()).0)[0].data, data(1));
    assert!(matches!(reader.seal(proposal).await.expect("answers"), SealOutcome::Sealed(_)));
}

pub async fn a_reader_moves_past_its_own_seal(h: &dyn Harness) {
    let log = open(h, 1).await;
    append(&log, vec![data(0)], Route::Implicit).await;
    let mut reader = reader(&log, ShardId(0), ReadFrom::Oldest).await;
    let (_, w) = read_to_end(reader.as_mut());
    let at = reader.position();
    let proposal = SealProposal { watermark_ms: w, kind: SealKind::Drain };
    let SealOutcome::Sealed(seal) = reader.seal(proposal).await.expect("answers") else {
        panic!("nothing was appended: the seal holds")
    };
    assert_eq!((seal.position, seal.watermark_ms, seal.kind), (at, w, SealKind::Drain));
    assert!(read_to_end(reader.as_mut()).0.is_empty(), "its own seal is not read again");
    append(&log, vec![data(1)], Route::Implicit).await;
    let (entries, _) = read_to_end(reader.as_mut());
    assert_eq!(records(&entries)[0].data, data(1));
    assert!(records(&entries)[0].seq > at || !log.capabilities().durable_seals);
}

pub async fn a_seal_is_read_back_at_its_position_by_every_later_reader(h: &dyn Harness) {
    let log = open(h, 1).await;
    if !log.capabilities().durable_seals {
        return;
    }
    append(&log, (0..3).map(data).collect(), Route::Implicit).await;
    let mut first = reader(&log, ShardId(0), ReadFrom::Oldest).await;
    let (_, w) = read_to_end(first.as_mut());
    let proposal = SealProposal { watermark_ms: w, kind: SealKind::Window };
    let SealOutcome::Sealed(seal) = first.seal(proposal).await.expect("answers") else {
        panic!("the seal holds")
    };
    append(&log, (3..5).map(data).collect(), Route::Implicit).await;
    let expect = |entries: Vec<Entry>| {
        let kinds: Vec<String> = (entries.iter())
            .map(|e| match e {
                Entry::Record(r) => String::from_utf8_lossy(&r.data).into_owned(),
                Entry::Seal(s) => format!("seal {s:?}"),
                e => format!("{e:?}"),
            })
            .collect();
        let mut want: Vec<String> =
            (0..3).map(|i| String::from_utf8_lossy(&data(i)).into_owned()).collect();
        want.push(format!("seal {seal:?}"));
        want.extend((3..5).map(|i| String::from_utf8_lossy(&data(i)).into_owned()));
        assert_eq!(kinds, want);
    };
    expect(read_to_end(reader(&log, ShardId(0), ReadFrom::Oldest).await.as_mut()).0);
    let log = reopen(h, log, AtRestKeys::default()).await;
    expect(read_to_end(reader(&log, ShardId(0), ReadFrom::Oldest).await.as_mut()).0);
    let mut at_seal = reader(&log, ShardId(0), ReadFrom::Seq(seal.position)).await;
    assert_eq!(read_to_end(at_seal.as_mut()).0[0], Entry::Seal(seal));
}

pub async fn two_seals_at_one_position_agree(h: &dyn Harness) {
    let log = open(h, 1).await;
    if !log.capabilities().durable_seals {
        return;
    }
    append(&log, vec![data(0)], Route::Implicit).await;
    let mut a = reader(&log, ShardId(0), ReadFrom::Oldest).await;
    let mut b = reader(&log, ShardId(0), ReadFrom::Oldest).await;
    read_to_end(a.as_mut());
    read_to_end(b.as_mut());
    let first = a.seal(SealProposal { watermark_ms: 100, kind: SealKind::Window }).await.unwrap();
    let second = b.seal(SealProposal { watermark_ms: 200, kind: SealKind::Drain }).await.unwrap();
    assert!(matches!(first, SealOutcome::Sealed(_)), "{first:?}");
    assert_eq!(first, second, "the first seal at a position holds for everyone");
}

pub async fn a_lost_lease_cannot_commit(h: &dyn Harness) {
    let log = open(h, 1).await;
    if !log.capabilities().leases_can_be_lost {
        return;
    }
    append(&log, (0..3).map(data).collect(), Route::Implicit).await;
    let held = lease(&log, ShardId(0)).await;
    let before = held.state().await.expect("registers");
    let lost = held.lost();
    h.take_over(STREAM, ShardId(0), CONSUMER);
    tokio::time::timeout(Duration::from_secs(5), lost).await.expect("the loss is noticed");
    let e = held.commit(Progress { markers: None, next_seq: Some(2) }).await.unwrap_err();
    assert!(matches!(e, LeaseError::Lost { .. }), "{e}");
    let now = lease(&log, ShardId(0)).await.state().await.expect("the new owner loads");
    assert_eq!(now, before, "nothing was stored");
}

/// Appends 10 records per shard; `encrypted` what the answers must say.
async fn append_everywhere(
    log: &Arc<dyn StreamLog>,
    from: usize,
    encrypted: bool,
) -> Vec<Appended> {
    let mut out = Vec::new();
    for shard in log.shards() {
        let route = Route::HashKey(shard.hash_range.start);
        let appended = append(log, (from..from + 10).map(data).collect(), route).await;
        assert!(appended.iter().all(|a| a.encrypted == encrypted), "{appended:?}");
        out.extend(appended);
    }
    out
}

pub async fn records_read_back_as_appended_across_encryption_switches(h: &dyn Harness) {
    let keys = h.keys();
    let log = h.store().open(STREAM, spec(2, keys.clone())).await.expect("opens");
    let on = AtRestKeys { encrypt: true, ..keys.clone() };
    append_everywhere(&log, 0, false).await;
    log.switch_encryption(on.clone()).await.expect("switches on");
    append_everywhere(&log, 10, true).await;
    log.switch_encryption(keys.clone()).await.expect("switches off");
    append_everywhere(&log, 20, false).await;
    let log = reopen(h, log, on).await;
    append_everywhere(&log, 30, true).await;
    for shard in [ShardId(0), ShardId(1)] {
        let read: Vec<Bytes> = all_records(&log, shard).await.into_iter().map(|r| r.data).collect();
        assert_eq!(read, (0..40).map(data).collect::<Vec<_>>(), "shard {shard}");
    }
}

pub async fn every_append_after_an_encryption_switch_returns_is_in_the_new_mode(h: &dyn Harness) {
    let keys = h.keys();
    let log = h.store().open(STREAM, spec(2, keys.clone())).await.expect("opens");
    let on = AtRestKeys { encrypt: true, ..keys.clone() };
    let writer = {
        let log = log.clone();
        tokio::spawn(async move {
            for call in 0..20 {
                let batch = (0..4).map(|i| data(call * 10 + i)).collect();
                for r in log.append(batch_of(batch)).await {
                    r.expect("stored");
                }
                tokio::task::yield_now().await;
            }
        })
    };
    tokio::task::yield_now().await;
    log.switch_encryption(on).await.expect("switches on");
    append_everywhere(&log, 500, true).await;
    writer.await.unwrap();
    log.switch_encryption(keys).await.expect("switches off");
    append_everywhere(&log, 600, false).await;
    let want: Vec<Bytes> = (500..510).chain(600..610).map(data).collect();
    for shard in [ShardId(0), ShardId(1)] {
        let read: Vec<Bytes> = (all_records(&log, shard).await.into_iter())
            .map(|r| r.data)
            .filter(|d| want.contains(d))
            .collect();
        assert_eq!(read, want, "shard {shard}: read back as appended");
    }
}

pub async fn an_encryption_switch_takes_effect_at_one_position_of_every_shard(h: &dyn Harness) {
    let keys = h.keys();
    let log = h.store().open(STREAM, spec(3, keys.clone())).await.expect("opens");
    if !log.capabilities().atomic_encryption_switch {
        return;
    }
    let writers: Vec<_> = (0..3)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut out = Vec::new();
                for call in 0..30 {
                    let batch = (0..4).map(|i| data(t * 1000 + call * 10 + i)).collect();
                    let records = batch_of(batch);
                    out.extend(log.append(records).await.into_iter().map(|r| r.expect("stored")));
                    tokio::task::yield_now().await;
                }
                out
            })
        })
        .collect();
    tokio::task::yield_now().await;
    log.switch_encryption(AtRestKeys { encrypt: true, ..keys }).await.expect("switches on");
    let mut by_shard: BTreeMap<ShardId, Vec<(u64, bool)>> = BTreeMap::new();
    for writer in writers {
        for a in writer.await.unwrap() {
            by_shard.entry(a.shard).or_default().push((a.seq, a.encrypted));
        }
    }
    for (shard, mut flags) in by_shard {
        flags.sort();
        let switches = flags.windows(2).filter(|w| w[0].1 != w[1].1).count();
        assert!(switches <= 1, "shard {shard}: {flags:?}");
        assert!(
            flags.windows(2).all(|w| w[0].1 <= w[1].1),
            "shard {shard} switched back: {flags:?}"
        );
    }
}

fn batch_of(records: Vec<Bytes>) -> Vec<Append> {
    records.into_iter().map(Append::implicit).collect()
}

pub async fn encrypting_without_keys_is_refused(h: &dyn Harness) {
    let log = open(h, 1).await;
    let e = log.switch_encryption(AtRestKeys { ring: None, encrypt: true }).await.unwrap_err();
    assert!(matches!(e, super::EncryptionError::Keys(_)), "{e}");
    let appended = append(&log, vec![data(0)], Route::Implicit).await;
    assert!(!appended[0].encrypted);
}

pub async fn shards_cover_the_hash_space_exactly_once_and_records_route_by_range(h: &dyn Harness) {
    let log = open(h, 4).await;
    let shards = log.shards();
    assert_eq!(shards.len(), 4);
    assert_eq!(shards[0].hash_range.start, 0);
    assert_eq!(shards[3].hash_range.end, u128::MAX);
    for pair in shards.windows(2) {
        assert_eq!(pair[1].hash_range.start, pair[0].hash_range.end + 1, "{pair:?}");
    }
    for shard in &shards {
        assert_eq!(shard.state, ShardState::Open);
        let range = shard.hash_range;
        for key in [range.start, range.start + (range.end - range.start) / 2, range.end] {
            let appended = append(&log, vec![data(0)], Route::HashKey(key)).await;
            assert_eq!(appended[0].shard, shard.id, "key {key:#x}");
        }
    }
}

pub async fn implicit_routes_spread_records_over_every_shard(h: &dyn Harness) {
    let log = open(h, 4).await;
    let appended = append(&log, (0..400).map(data).collect(), Route::Implicit).await;
    for shard in 0..4 {
        let n = appended.iter().filter(|a| a.shard == ShardId(shard)).count();
        assert!(n > 40, "shard {shard} got {n} of 400");
    }
}

pub async fn a_closed_shard_ends_and_its_children_are_granted_after_it(h: &dyn Harness) {
    let log = open(h, 1).await;
    if !log.capabilities().shards_can_end {
        assert!(log.shards().iter().all(|s| s.state == ShardState::Open));
        let split = Reshard::Split { shard: ShardId(0), at: 1 };
        let refused = log.reshard(split).await;
        assert!(matches!(refused, Err(ReshardError::Unsupported)), "{refused:?}");
        return;
    }
    let mut assignments = log.assignments(CONSUMER).expect("valid");
    let parent = assignments.next().await.expect("granted");
    parent.state().await.expect("registers");
    append(&log, (0..3).map(data).collect(), Route::Implicit).await;
    let at = 1u128 << 127;
    let children = log.reshard(Reshard::Split { shard: ShardId(0), at }).await.expect("splits");
    let children: [ShardId; 2] = children.try_into().expect("two children");
    let shards = log.shards();
    let ShardState::Closed { end } = shards[0].state else { panic!("{shards:?}") };
    for child in children {
        let info = shards.iter().find(|s| s.id == child).expect("listed");
        assert_eq!((info.parent, info.state), (Some(ShardId(0)), ShardState::Open));
    }
    assert!(assignments.try_next().is_none(), "children wait for their parent");
    let mut reader = reader(&log, ShardId(0), ReadFrom::Oldest).await;
    let (entries, _) = read_to_end(reader.as_mut());
    assert_eq!(records(&entries).len(), 3);
    let Some(Entry::End(shard_end)) = entries.last() else { panic!("{entries:?}") };
    assert_eq!((shard_end.position, shard_end.children.as_slice()), (end, children.as_slice()));
    assert!(read_to_end(reader.as_mut()).0.is_empty(), "nothing after the end");
    let appended = append(&log, vec![data(3)], Route::Implicit).await;
    assert!(children.contains(&appended[0].shard), "the parent takes no more appends");
    parent.commit(Progress { markers: None, next_seq: Some(end) }).await.expect("commits");
    let mut granted = Vec::new();
    for _ in 0..2 {
        let lease = tokio::time::timeout(Duration::from_secs(5), assignments.next()).await;
        granted.push(lease.expect("granted in time").expect("granted").shard());
    }
    granted.sort();
    assert_eq!(granted, children.to_vec());
}

/// Reads `shard` from the oldest entry to its end: its records' data and the end.
async fn read_closed(log: &Arc<dyn StreamLog>, shard: ShardId) -> (Vec<Bytes>, ShardEnd) {
    let mut reader = reader(log, shard, ReadFrom::Oldest).await;
    let (entries, _) = read_to_end(reader.as_mut());
    let Some(Entry::End(end)) = entries.last().cloned() else { panic!("{entries:?}") };
    (records(&entries).into_iter().map(|r| r.data).collect(), end)
}

pub async fn a_merge_ends_both_parents_and_its_child_is_granted_after_both(h: &dyn Harness) {
    let log = open(h, 2).await;
    if !log.capabilities().shards_can_end {
        return;
    }
    let mut assignments = log.assignments(CONSUMER).expect("valid");
    let mut parents = Vec::new();
    for _ in 0..2 {
        let lease = assignments.next().await.expect("granted");
        lease.state().await.expect("registers");
        parents.push(lease);
    }
    parents.sort_by_key(|l| l.shard());
    for shard in [ShardId(0), ShardId(1)] {
        append(&log, vec![data(shard.0 as usize)], key_of(&log, shard)).await;
    }
    let merge = Reshard::Merge { shard: ShardId(1), adjacent: ShardId(0) };
    let child = log.reshard(merge).await.expect("merges");
    assert_eq!(child.len(), 1);
    let info = log.shards().into_iter().find(|s| s.id == child[0]).expect("listed");
    assert_eq!((info.parent, info.adjacent_parent), (Some(ShardId(1)), Some(ShardId(0))));
    assert_eq!(info.hash_range, HashRange { start: 0, end: u128::MAX });
    let appended = append(&log, vec![data(9)], Route::HashKey(7)).await;
    assert_eq!(appended[0].shard, child[0], "the merged shard takes the appends");
    for parent in &parents {
        let (data_read, end) = read_closed(&log, parent.shard()).await;
        assert_eq!(data_read, vec![data(parent.shard().0 as usize)]);
        assert_eq!(end.children, child);
        assert!(assignments.try_next().is_none(), "the child waits for both parents");
        parent.commit(Progress { markers: None, next_seq: Some(end.position) }).await.unwrap();
    }
    let lease = tokio::time::timeout(Duration::from_secs(5), assignments.next()).await;
    assert_eq!(lease.expect("granted in time").expect("granted").shard(), child[0]);
}

pub async fn the_children_of_an_empty_closed_shard_are_granted_once_the_consumer_registers(
    h: &dyn Harness,
) {
    let log = open(h, 1).await;
    if !log.capabilities().shards_can_end {
        return;
    }
    let children = log.reshard(Reshard::Split { shard: ShardId(0), at: 1 << 64 }).await.unwrap();
    let mut assignments = log.assignments(CONSUMER).expect("valid");
    let parent = assignments.next().await.expect("granted");
    assert_eq!(parent.shard(), ShardId(0));
    assert!(assignments.try_next().is_none(), "the children wait for the parent");
    // Nothing to deliver, so nothing to commit: registering at the end finishes the shard.
    let ShardState::Closed { end } = log.shards()[0].state else { panic!("{:?}", log.shards()) };
    assert_eq!(parent.state().await.unwrap().next_seq, end);
    let mut granted = Vec::new();
    for _ in 0..2 {
        let lease = tokio::time::timeout(Duration::from_secs(5), assignments.next()).await;
        granted.push(lease.expect("granted in time").expect("granted").shard());
    }
    granted.sort();
    assert_eq!(granted, children);
}

pub async fn reshards_that_break_the_rules_are_refused_and_change_nothing(h: &dyn Harness) {
    let log = open(h, 3).await;
    if !log.capabilities().shards_can_end {
        return;
    }
    let before = log.shards();
    let start = before[1].hash_range.start;
    for change in [
        Reshard::Split { shard: ShardId(1), at: start },
        Reshard::Split { shard: ShardId(7), at: 5 },
        Reshard::Merge { shard: ShardId(0), adjacent: ShardId(2) },
    ] {
        let refused = log.reshard(change).await;
        assert!(refused.is_err(), "{change:?} was done: {refused:?}");
        assert_eq!(log.shards(), before, "{change:?} changed the shards");
    }
    log.reshard(Reshard::Split { shard: ShardId(1), at: start + 1 }).await.expect("splits");
    let again = log.reshard(Reshard::Split { shard: ShardId(1), at: start + 2 }).await;
    assert!(matches!(again, Err(ReshardError::Closed(ShardId(1)))), "{again:?}");
}

pub async fn shard_lineage_and_positions_survive_reopen(h: &dyn Harness) {
    let log = open(h, 1).await;
    if !log.capabilities().shards_can_end {
        return;
    }
    append(&log, (0..3).map(data).collect(), Route::HashKey(1)).await;
    let children = log.reshard(Reshard::Split { shard: ShardId(0), at: 1 << 64 }).await.unwrap();
    let low = append(&log, vec![data(3)], Route::HashKey(5)).await;
    let high = append(&log, vec![data(4)], Route::HashKey(u128::MAX)).await;
    assert_eq!((low[0].shard, high[0].shard), (children[0], children[1]));
    let merged =
        log.reshard(Reshard::Merge { shard: children[0], adjacent: children[1] }).await.unwrap();
    let shards = log.shards();
    let log = reopen(h, log, AtRestKeys::default()).await;
    assert_eq!(log.shards(), shards, "the lineage after reopen");
    let (parent, end) = read_closed(&log, ShardId(0)).await;
    assert_eq!((parent.len(), end.children), (3, children.clone()));
    assert_eq!(read_closed(&log, children[0]).await.0, vec![data(3)]);
    let appended = append(&log, vec![data(5)], Route::HashKey(5)).await;
    assert_eq!(appended[0].shard, merged[0], "appends go to the open shard after reopen");
}

pub async fn a_forgotten_consumer_starts_over(h: &dyn Harness) {
    let log = open(h, 1).await;
    append(&log, (0..4).map(data).collect(), Route::Implicit).await;
    let first = lease(&log, ShardId(0)).await;
    let markers = Markers::from([(partition("a"), Position { seq: 1, sub: 0 })]);
    first.commit(Progress { markers: Some(markers), next_seq: Some(2) }).await.expect("commits");
    drop(first);
    log.forget(CONSUMER).await.expect("forgets");
    let again = lease(&log, ShardId(0)).await;
    let state = again.state().await.expect("registers anew");
    assert!(state.markers.is_empty(), "{state:?}");
    let oldest = reader(&log, ShardId(0), ReadFrom::Oldest).await.position();
    assert_eq!(state.next_seq, oldest, "a new registration starts at the oldest entry");
}

pub async fn consumer_names_outside_the_rule_are_refused(h: &dyn Harness) {
    let log = open(h, 1).await;
    for bad in ["", ".", "..", "a/b", "a b", &"x".repeat(201)] {
        let e = log.assignments(bad).unwrap_err();
        assert!(matches!(e, LeaseError::InvalidConsumer(_)), "{bad:?}: {e}");
    }
    log.assignments("delivery-2.x_y").expect("a valid name");
}

pub async fn a_deleted_log_starts_empty_when_opened_again(h: &dyn Harness) {
    let store = h.store();
    let log = open(h, 2).await;
    append(&log, (0..10).map(data).collect(), Route::Implicit).await;
    log.close().await;
    drop(log);
    store.delete(STREAM).await.expect("deletes");
    store.delete(STREAM).await.expect("deleting twice is no error");
    let log = open(h, 2).await;
    for shard in [ShardId(0), ShardId(1)] {
        assert!(all_records(&log, shard).await.is_empty(), "shard {shard}");
    }
}

pub async fn an_existing_log_keeps_its_shard_count(h: &dyn Harness) {
    let log = open(h, 2).await;
    append(&log, vec![data(0)], Route::Implicit).await;
    log.close().await;
    drop(log);
    let e = h.store().open(STREAM, spec(3, AtRestKeys::default())).await.unwrap_err();
    assert!(matches!(e, OpenError::ShardCount { existing: 2, configured: 3 }), "{e}");
    open(h, 2).await;
}

pub async fn a_log_is_open_at_most_once(h: &dyn Harness) {
    let log = open(h, 1).await;
    if log.capabilities().shared_open {
        return;
    }
    let e = h.store().open(STREAM, spec(1, AtRestKeys::default())).await.unwrap_err();
    assert!(matches!(e, OpenError::Locked(_)), "{e}");
    drop(log);
    open(h, 1).await;
}

pub async fn a_shared_log_opens_through_every_store(h: &dyn Harness) {
    let first = open(h, 2).await;
    if !first.capabilities().shared_open {
        return;
    }
    let second = open(h, 2).await;
    let from_first = append(&first, (0..5).map(data).collect(), key_of(&first, ShardId(1))).await;
    let from_second =
        append(&second, (5..10).map(data).collect(), key_of(&second, ShardId(1))).await;
    assert!(from_first.iter().chain(&from_second).all(|a| a.shard == ShardId(1)));
    assert!(from_first.last().unwrap().seq < from_second[0].seq, "one shard, one order");
    for log in [&first, &second] {
        let read: Vec<Bytes> =
            all_records(log, ShardId(1)).await.into_iter().map(|r| r.data).collect();
        assert_eq!(read, (0..10).map(data).collect::<Vec<_>>());
    }
}
