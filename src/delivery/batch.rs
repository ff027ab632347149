//! Deterministic batches: which records go into one object.
//!
//! A batch starts at the first undelivered record and takes every following record whose
//! arrival time (stored in the log) is within `IntervalInSeconds` of the first one's, until
//! adding the next record would pass `SizeInMBs` (counted before compression, as Firehose
//! does). Both rules read only what the log holds, never the wall clock at flush time, so a
//! replay after a crash cuts exactly the same batches and names them with the same keys.

use std::io;

use super::assembler::{Assembler, Unit};
use crate::codec::RecordError;
use crate::core::Record;

/// `BufferingHints` as batch-cutting rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPolicy {
    /// Largest batch, in bytes before compression.
    pub max_bytes: u64,
    /// Arrival-time window of one batch, in milliseconds. 0 is Firehose's "zero buffering":
    /// only records that arrived in the same millisecond (in practice, the same group commit)
    /// share an object.
    pub interval_ms: i64,
}

impl BatchPolicy {
    /// First arrival time (exclusive) that no longer belongs to a batch starting at `first`.
    pub fn window_end(&self, first_arrival_ms: i64) -> i64 {
        first_arrival_ms.saturating_add(self.interval_ms.max(1))
    }
}

/// A record the object format refused; it goes to the error output.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub record: Record,
    pub error: RecordError,
}

/// A batch being filled: records stream through the assembler as they are read.
pub struct BatchBuilder<'s> {
    policy: BatchPolicy,
    assembler: Assembler<'s>,
    pub first_seq: u64,
    pub last_seq: u64,
    pub first_arrival_ms: i64,
    pub records: u64,
    pub bytes: u64,
}

/// A finished batch: the objects it became, and the log range it covers.
pub struct SealedBatch {
    pub units: Vec<Unit>,
    pub first_seq: u64,
    pub last_seq: u64,
    pub first_arrival_ms: i64,
    pub records: u64,
    pub bytes: u64,
}

impl<'s> BatchBuilder<'s> {
    /// Starts a batch with its first record (always admitted: one record is never larger than
    /// the smallest buffer).
    pub fn start(
        policy: BatchPolicy,
        assembler: Assembler<'s>,
        first: &Record,
    ) -> io::Result<Self> {
        let mut batch = Self {
            policy,
            assembler,
            first_seq: first.seq,
            last_seq: first.seq,
            first_arrival_ms: first.arrival_ms,
            records: 0,
            bytes: 0,
        };
        batch.append(first)?;
        Ok(batch)
    }

    pub fn window_end(&self) -> i64 {
        self.policy.window_end(self.first_arrival_ms)
    }

    /// Whether `record` belongs to this batch.
    pub fn admits(&self, record: &Record) -> bool {
        record.arrival_ms < self.window_end()
            && self.bytes + record.data.len() as u64 <= self.policy.max_bytes
    }

    /// Whether no further record can be admitted by size (the batch is full).
    pub fn is_full(&self) -> bool {
        self.bytes >= self.policy.max_bytes
    }

    pub fn push(&mut self, record: &Record) -> io::Result<()> {
        debug_assert!(self.admits(record));
        self.append(record)
    }

    fn append(&mut self, record: &Record) -> io::Result<()> {
        self.assembler.push(record)?;
        self.last_seq = record.seq;
        self.records += 1;
        self.bytes += record.data.len() as u64;
        Ok(())
    }

    pub fn seal(self) -> io::Result<SealedBatch> {
        Ok(SealedBatch {
            units: self.assembler.finish()?,
            first_seq: self.first_seq,
            last_seq: self.last_seq,
            first_arrival_ms: self.first_arrival_ms,
            records: self.records,
            bytes: self.bytes,
        })
    }
}

/// Cuts a finished sequence of records into batches the way the worker does; used by tests
/// and by replay reasoning. Returns `(first_seq, last_seq)` per complete batch.
pub fn cut(policy: BatchPolicy, records: &[Record]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut current: Option<(u64, u64, i64, u64)> = None; // first, last, first_arrival, bytes
    for r in records {
        let len = r.data.len() as u64;
        match current {
            Some((first, _, arrival, bytes))
                if r.arrival_ms < policy.window_end(arrival) && bytes + len <= policy.max_bytes =>
            {
                current = Some((first, r.seq, arrival, bytes + len));
            }
            Some((first, last, ..)) => {
                out.push((first, last));
                current = Some((r.seq, r.seq, r.arrival_ms, len));
            }
            None => current = Some((r.seq, r.seq, r.arrival_ms, len)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn rec(seq: u64, arrival_ms: i64, len: usize) -> Record {
        Record { seq, arrival_ms, data: Bytes::from(vec![b'x'; len]) }
    }

    #[test]
    fn records_within_the_interval_share_a_batch() {
        let policy = BatchPolicy { max_bytes: 1000, interval_ms: 100 };
        let records = [
            rec(0, 1000, 10),
            rec(1, 1050, 10),
            rec(2, 1099, 10),
            rec(3, 1100, 10),
            rec(4, 1300, 10),
        ];
        assert_eq!(cut(policy, &records), vec![(0, 2), (3, 3)]);
    }

    #[test]
    fn a_record_that_would_pass_the_size_limit_starts_the_next_batch() {
        let policy = BatchPolicy { max_bytes: 25, interval_ms: 60_000 };
        let records = [rec(0, 1, 10), rec(1, 1, 10), rec(2, 1, 10), rec(3, 1, 5)];
        assert_eq!(cut(policy, &records), vec![(0, 1)]);
        let exact = BatchPolicy { max_bytes: 30, interval_ms: 60_000 };
        assert_eq!(cut(exact, &records), vec![(0, 2)]);
    }

    #[test]
    fn zero_interval_batches_only_records_of_the_same_millisecond() {
        let policy = BatchPolicy { max_bytes: 1000, interval_ms: 0 };
        let records = [rec(0, 5, 1), rec(1, 5, 1), rec(2, 6, 1), rec(3, 7, 1)];
        assert_eq!(cut(policy, &records), vec![(0, 1), (2, 2)]);
    }

    #[test]
    fn cutting_is_the_same_whatever_was_appended_later() {
        // Determinism: the batches of a prefix of the log never change when more is appended.
        let policy = BatchPolicy { max_bytes: 40, interval_ms: 50 };
        let records: Vec<_> = (0..200)
            .map(|i| rec(i, (i as i64 * 7) % 13 + i as i64 * 3, (i % 9) as usize))
            .collect();
        let all = cut(policy, &records);
        for n in 1..records.len() {
            let prefix = cut(policy, &records[..n]);
            assert_eq!(&all[..prefix.len()], &prefix[..]);
        }
    }

    #[test]
    fn the_builder_agrees_with_cut() {
        let policy = BatchPolicy { max_bytes: 25, interval_ms: 100 };
        let records = [rec(0, 0, 10), rec(1, 10, 10), rec(2, 20, 10)];
        let codec = crate::codec::ObjectCodec::concatenated(
            crate::codec::compression_for(crate::config::CompressionFormat::Uncompressed).into(),
            "",
        );
        let mut stages = super::super::assembler::Stages::plain(1 << 20);
        let assembler = Assembler::new(&mut stages, &codec, 0);
        let mut b = BatchBuilder::start(policy, assembler, &records[0]).unwrap();
        assert!(b.admits(&records[1]));
        b.push(&records[1]).unwrap();
        assert!(!b.admits(&records[2]));
        let sealed = b.seal().unwrap();
        assert_eq!(
            (sealed.first_seq, sealed.last_seq, sealed.records, sealed.bytes),
            (0, 1, 2, 20)
        );
    }
}
