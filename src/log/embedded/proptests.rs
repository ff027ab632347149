//! Random operation sequences against a simple in-memory model, with tiny segments so that
//! segment boundaries, rolls and retention are crossed all the time.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;

use super::tests::{open, opts, read_entries};
use super::*;
use crate::log::{Entry, SealKind};

#[derive(Debug, Clone)]
enum Op {
    /// Append one call with records of these sizes.
    Append(Vec<usize>),
    /// Record a seal at the end (a drain when true), then propose another there, which loses.
    Seal(i64, bool),
    /// Drop every handle and open the directory again.
    Reopen,
    /// Read everything from a position (a fraction of the retained range, in 1/256).
    Read(u8),
    /// Store a checkpoint for consumer `0..3` at a fraction of the log.
    Checkpoint(u8, u8),
    /// Load a consumer's checkpoint (registering it when new).
    Load(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => prop::collection::vec(0usize..120, 1..8).prop_map(Op::Append),
        2 => (any::<i64>(), any::<bool>()).prop_map(|(w, drain)| Op::Seal(w, drain)),
        1 => Just(Op::Reopen),
        2 => any::<u8>().prop_map(Op::Read),
        2 => (0u8..3, any::<u8>()).prop_map(|(c, p)| Op::Checkpoint(c, p)),
        1 => (0u8..3).prop_map(Op::Load),
    ]
}

/// What the model holds at a sequence number.
#[derive(Debug, Clone, PartialEq)]
enum Stored {
    /// data, arrival_ms
    Record(Bytes, i64),
    /// watermark_ms, kind
    Seal(i64, SealKind),
}

#[derive(Default)]
struct Model {
    /// Records and seals by sequence number.
    records: Vec<Stored>,
    checkpoints: BTreeMap<String, u64>,
}

fn data(seq: usize, len: usize) -> Bytes {
    Bytes::from((0..len).map(|i| (seq * 31 + i) as u8).collect::<Vec<u8>>())
}

fn scaled(frac: u8, lo: u64, hi: u64) -> u64 {
    lo + (hi - lo) * frac as u64 / 255
}

/// `entry`, read at `seq`, is what the model holds there.
fn check(entry: Entry, seq: u64, model: &Model) -> Result<(), TestCaseError> {
    let read = match entry {
        Entry::Record(r) => {
            prop_assert_eq!(r.seq, seq);
            Stored::Record(r.data, r.arrival_ms)
        }
        Entry::Seal(s) => {
            prop_assert_eq!(s.position, seq);
            Stored::Seal(s.watermark_ms, s.kind)
        }
        e => return Err(TestCaseError::fail(format!("{e:?}"))),
    };
    prop_assert_eq!(&read, &model.records[seq as usize]);
    Ok(())
}

fn run(ops: Vec<Op>, always: bool) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let options = || LogOptions {
        fsync: if always {
            FsyncPolicy::Always
        } else {
            FsyncPolicy::Interval(Duration::from_secs(3600))
        },
        ..opts(256)
    };
    let mut shard = open(dir.path(), options());
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Append(sizes) => {
                let n = model.records.len();
                let batch: Vec<Bytes> =
                    sizes.iter().enumerate().map(|(i, &len)| data(n + i, len)).collect();
                let out = rt.block_on(shard.append(batch.clone())).unwrap();
                prop_assert_eq!(out.first_seq, n as u64);
                prop_assert_eq!(out.count, batch.len());
                let last = model.records.iter().rev().find_map(|e| match e {
                    Stored::Record(_, ts) => Some(*ts),
                    Stored::Seal(..) => None,
                });
                if let Some(last) = last {
                    prop_assert!(out.arrival_ms >= last);
                }
                model.records.extend(batch.into_iter().map(|d| Stored::Record(d, out.arrival_ms)));
            }
            Op::Seal(watermark, drain) => {
                let kind = if drain { SealKind::Drain } else { SealKind::Window };
                let at = model.records.len() as u64;
                prop_assert!(rt.block_on(shard.seal(at, watermark, kind)).unwrap());
                prop_assert!(!rt.block_on(shard.seal(at, 0, SealKind::Window)).unwrap());
                model.records.push(Stored::Seal(watermark, kind));
            }
            Op::Reopen => {
                drop(shard);
                shard = open(dir.path(), options());
                // The writer is idle now: the accounting must match the files exactly.
                let on_disk: u64 = segment::list(dir.path())
                    .unwrap()
                    .iter()
                    .map(|(_, p)| std::fs::metadata(p).unwrap().len())
                    .sum();
                prop_assert_eq!(on_disk, shard.disk_bytes());
            }
            Op::Read(frac) => {
                let first = shard.first_seq();
                let end = model.records.len() as u64;
                let from = scaled(frac, first, end);
                let got = read_entries(&shard, from);
                prop_assert_eq!(got.len() as u64, end - from);
                for (entry, seq) in got.into_iter().zip(from..) {
                    check(entry, seq, &model)?;
                }
                if first > 0 {
                    let trimmed = matches!(shard.reader(first - 1), Err(ReadError::Trimmed { .. }));
                    prop_assert!(trimmed);
                }
            }
            Op::Checkpoint(c, frac) => {
                let name = format!("c{c}");
                let pos = scaled(frac, shard.first_seq(), model.records.len() as u64);
                shard.store_checkpoint(&name, pos).unwrap();
                model.checkpoints.insert(name, pos);
            }
            Op::Load(c) => {
                let name = format!("c{c}");
                let got = shard.load_checkpoint(&name).unwrap();
                let want = *model.checkpoints.entry(name).or_insert_with(|| shard.first_seq());
                prop_assert_eq!(got, want);
            }
        }
        // Invariants after every operation.
        prop_assert_eq!(shard.next_seq(), model.records.len() as u64);
        let first = shard.first_seq();
        match model.checkpoints.values().min() {
            None => prop_assert_eq!(first, 0),
            Some(&min) => {
                prop_assert!(first <= min, "retained from {} but a consumer is at {}", first, min)
            }
        }
    }
    // Everything retained reads back after a final reopen.
    drop(shard);
    let shard = open(dir.path(), options());
    let first = shard.first_seq();
    let got = read_entries(&shard, first);
    prop_assert_eq!(got.len() as u64, model.records.len() as u64 - first);
    for (entry, seq) in got.into_iter().zip(first..) {
        check(entry, seq, &model)?;
    }
    for (name, cp) in &model.checkpoints {
        prop_assert_eq!(shard.load_checkpoint(name).unwrap(), *cp);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_match_the_in_memory_model(
        ops in prop::collection::vec(op(), 1..60),
        always in any::<bool>(),
    ) {
        run(ops, always)?;
    }
}
