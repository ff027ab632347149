//! The buffers' cutting rules, and the property at the heart of exactly-once: a replay from
//! what the uploader made durable delivers the objects of an uninterrupted run.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::codec::CompressionFormat;
use crate::codec::{compression_for, ObjectCodec};
use crate::delivery::error_output::output_type;

/// A record for the tests: its partition (None: it fails processing and goes to the error
/// output), arrival time and size.
#[derive(Debug, Clone)]
struct Rec {
    seq: u64,
    partition: Option<u8>,
    arrival_ms: i64,
    len: usize,
}

fn codec() -> ObjectCodec {
    ObjectCodec::concatenated(compression_for(CompressionFormat::Uncompressed).into(), "")
}

fn partition(p: u8) -> Partition {
    Partition { query: BTreeMap::from([("k".into(), p.to_string())]), lambda: BTreeMap::new() }
}

/// Objects as comparable values: (key, first, last, variant, body).
type Object = (BufferKey, Pos, Pos, u64, Bytes);

fn object(u: &Unit) -> Object {
    (u.key.clone(), u.first, u.last, u.variant, u.body.clone())
}

/// Feeds `records` (from `start`) the way the assembler does and returns the units with the
/// seal order; `idle_at` ends the input with a watermark.
fn run(
    policy: BatchPolicy,
    codec: &ObjectCodec,
    records: &[Rec],
    markers: Markers,
    start: u64,
    watermark: Option<i64>,
) -> Vec<Unit> {
    let mut b = Buffers::new(policy, codec, Layout::Object, true, markers, start);
    for r in records.iter().filter(|r| r.seq >= start) {
        b.set_floor(r.seq);
        let pos = Pos { seq: r.seq, sub: 0 };
        let body = vec![b'a' + r.partition.unwrap_or(0) % 26; r.len];
        match r.partition {
            Some(p) => {
                b.push_data(partition(p), pos, r.arrival_ms, body.into()).unwrap();
            }
            None => {
                let doc = serde_json::to_vec(&serde_json::json!({"seq": r.seq})).unwrap();
                b.push_error(output_type::PROCESSING_FAILED, pos, r.arrival_ms, doc).unwrap();
            }
        }
        b.set_floor(r.seq + 1);
    }
    if let Some(w) = watermark {
        b.advance(w).unwrap();
    }
    b.take_sealed()
}

fn rec(seq: u64, partition: u8, arrival_ms: i64, len: usize) -> Rec {
    Rec { seq, partition: Some(partition), arrival_ms, len }
}

#[test]
fn each_partition_is_cut_by_its_own_window() {
    let policy = BatchPolicy { max_bytes: 1000, interval_ms: 100 };
    let codec = codec();
    // Partition 1 opens at 0 and 2 at 60: 1's window ends at 100, 2's at 160.
    let records = [rec(0, 1, 0, 1), rec(1, 2, 60, 1), rec(2, 1, 99, 1), rec(3, 2, 120, 1)];
    let units = run(policy, &codec, &records, Markers::default(), 0, Some(130));
    assert_eq!(units.len(), 1, "only partition 1's window has passed at 130");
    assert_eq!((units[0].first.seq, units[0].last.seq), (0, 2));
    assert_eq!(units[0].body, Bytes::from_static(b"bb"));
    assert_eq!(units[0].checkpoint_after, 1, "partition 2 is still open from seq 1");
    let units = run(policy, &codec, &records, Markers::default(), 0, Some(160));
    assert_eq!(units.len(), 2);
    assert_eq!((units[1].first.seq, units[1].last.seq, units[1].checkpoint_after), (1, 3, 4));
}

#[test]
fn a_record_that_would_pass_the_size_limit_starts_the_next_object_of_its_partition() {
    let policy = BatchPolicy { max_bytes: 25, interval_ms: 60_000 };
    let codec = codec();
    let records = [rec(0, 1, 0, 10), rec(1, 2, 0, 10), rec(2, 1, 0, 10), rec(3, 1, 0, 10)];
    let units = run(policy, &codec, &records, Markers::default(), 0, None);
    assert_eq!(units.len(), 1);
    assert_eq!((units[0].first.seq, units[0].last.seq, units[0].records), (0, 2, 2));
    assert_eq!(units[0].checkpoint_after, 1, "partition 2 holds seq 1");
}

#[test]
fn unpartitioned_objects_keep_variant_zero_and_partitions_differ() {
    let key = BufferKey::Data(Partition::default());
    assert_eq!(variant(&key, Pos { seq: 5, sub: 0 }, false), 0);
    assert_ne!(variant(&key, Pos { seq: 5, sub: 1 }, false), 0);
    let a = variant(&BufferKey::Data(partition(1)), Pos { seq: 5, sub: 0 }, true);
    let b = variant(&BufferKey::Data(partition(2)), Pos { seq: 5, sub: 0 }, true);
    let e = variant(&BufferKey::Errors("processing-failed"), Pos { seq: 5, sub: 0 }, true);
    assert!(a != b && a != e && b != e);
}

/// What the uploader made durable, as a crash would find it.
#[derive(Clone)]
struct Disk {
    markers: Markers,
    checkpoint: u64,
}

/// Delivers `units` in order; the crash happens after `crash_after` deliveries, with the
/// markers of the last one stored but its checkpoint not (`torn`) or both stored.
fn deliver(units: &[Unit], start: Disk, crash_after: usize, torn: bool) -> Disk {
    let mut disk = start.clone();
    let mut progress = Progress::new(start.markers, start.checkpoint);
    for (i, unit) in units.iter().enumerate().take(crash_after) {
        let step = progress.delivered(unit);
        if let Some(m) = step.markers {
            disk.markers = m;
        }
        if torn && i + 1 == crash_after {
            break;
        }
        if let Some(c) = step.checkpoint {
            disk.checkpoint = c;
        }
    }
    disk
}

fn records_strategy() -> impl Strategy<Value = Vec<Rec>> {
    prop::collection::vec((prop::option::weighted(0.9, 0u8..6), 0i64..40, 1usize..12), 1..120)
        .prop_map(|v| {
            let mut arrival = 0;
            v.into_iter()
                .enumerate()
                .map(|(i, (partition, step, len))| {
                    arrival += step;
                    Rec { seq: i as u64, partition, arrival_ms: arrival, len }
                })
                .collect()
        })
}

proptest! {
    /// The heart of exactly-once with per-partition buffers: crash after any delivery
    /// (also between the markers and the checkpoint write), replay from what is on disk,
    /// and the objects delivered before and after the crash are exactly the objects of a
    /// run without a crash: same keys, same bytes, no record twice under two keys.
    #[test]
    fn a_replay_after_a_crash_delivers_exactly_the_objects_of_an_uninterrupted_run(
        records in records_strategy(),
        max_bytes in 5u64..60,
        interval_ms in 0i64..150,
        crash_pick in 0usize..1000,
        torn in any::<bool>(),
    ) {
        let policy = BatchPolicy { max_bytes, interval_ms };
        let codec = codec();
        let end = records.last().map_or(0, |r| r.arrival_ms) + 1_000;
        let all = run(policy, &codec, &records, Markers::default(), 0, Some(end));
        let expected: Vec<Object> = all.iter().map(object).collect();

        let crash_after = crash_pick % (all.len() + 1);
        let fresh = Disk { markers: Markers::default(), checkpoint: 0 };
        let disk = deliver(&all, fresh, crash_after, torn);
        let replay = run(policy, &codec, &records, disk.markers.clone(), disk.checkpoint, Some(end));

        let mut delivered: Vec<Object> = expected[..crash_after].to_vec();
        delivered.extend(replay.iter().map(object));
        // Re-delivering the very same object (same key, same bytes) is harmless: dedupe.
        delivered.sort_by(|a, b| (&a.0, a.1, a.2, a.3).cmp(&(&b.0, b.1, b.2, b.3)));
        delivered.dedup();
        let mut want = expected.clone();
        want.sort_by(|a, b| (&a.0, a.1, a.2, a.3).cmp(&(&b.0, b.1, b.2, b.3)));
        prop_assert_eq!(delivered, want);

        // And the replay's own bookkeeping keeps going: a second crash is just as safe.
        let disk2 = deliver(&replay, disk.clone(), replay.len() / 2, !torn);
        let replay2 = run(policy, &codec, &records, disk2.markers, disk2.checkpoint, Some(end));
        for o in replay2.iter().map(object) {
            prop_assert!(expected.contains(&o), "unexpected object {:?}", (o.0, o.1, o.2));
        }
    }

    /// Every record lands in exactly one object.
    #[test]
    fn every_record_is_in_exactly_one_object(
        records in records_strategy(),
        max_bytes in 5u64..60,
        interval_ms in 0i64..150,
    ) {
        let codec = codec();
        let units = run(BatchPolicy { max_bytes, interval_ms }, &codec, &records, Markers::default(), 0, Some(i64::MAX));
        let total: u64 = units.iter().map(|u| u.records).sum();
        prop_assert_eq!(total, records.len() as u64);
        let mut checkpoints: Vec<u64> = units.iter().map(|u| u.checkpoint_after).collect();
        let sorted = { let mut c = checkpoints.clone(); c.sort(); c };
        prop_assert_eq!(&checkpoints, &sorted, "checkpoints only move forward");
        checkpoints.dedup();
        prop_assert_eq!(units.last().map(|u| u.checkpoint_after), Some(records.len() as u64));
    }
}
