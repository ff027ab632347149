//! A delivery stream's log on the local disk: N shards, each owning an equal range of the
//! 128-bit MD5 hash-key space, Kinesis-style; the [`StreamLog`] implementation.
//!
//! Firehose's Direct PUT has no partition key, so each record gets an implicit one (a
//! per-process nonce plus a counter): MD5 of it spreads records evenly, and the records of one
//! request land on several shards, each in request order. Ordering holds within a shard.
//!
//! Encryption at rest lives here in both directions: appends seal records ([`ShardAtRest`]) and
//! this log's readers open them, so nothing above the log sees a sealed record.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use md5::{Digest, Md5};

use super::at_rest::{AtRestError, ShardAtRest};
use super::budget::DiskBudget;
use super::lease::EmbeddedLease;
use super::reader::EmbeddedReader;
use super::shard::Shard;
use super::{consumer, error as embedded, layout, LogOptions};
use crate::codec::encryption::KeyRing;
use crate::log::{
    Append, AppendError, Appended, Assignments, AtRestKeys, Capabilities, Cause, EncryptionError,
    LeaseError, OpenError, ReadError, ReadFrom, Route, ShardId, ShardInfo, ShardLease,
    ShardProblem, ShardReader, ShardStats, StreamLog,
};

/// The shards of one delivery stream.
#[derive(Debug)]
pub struct EmbeddedLog {
    shards: Vec<Shard>,
    /// Per shard: which records are encrypted at rest, and the keys.
    at_rest: Vec<Arc<ShardAtRest>>,
    /// Appends hold it shared and a switch of encryption exclusively, so that a switch takes
    /// effect at an exact sequence number of every shard.
    switching: tokio::sync::RwLock<()>,
    nonce: u64,
    counter: AtomicU64,
}

impl EmbeddedLog {
    /// Opens (recovering) `count` shards under `dir` (`dir/shard-0000`, ...). Blocking.
    pub fn open(
        dir: &Path,
        count: u32,
        options: &LogOptions,
        budget: &Arc<DiskBudget>,
    ) -> Result<Self, OpenError> {
        Self::open_encrypted(dir, count, options, budget, None, false)
    }

    /// Like [`open`](Self::open), with encryption at rest: `keys` open records sealed
    /// earlier, and with `encrypt` new records are sealed under their active key. Consumers'
    /// markers at or past a shard's recovered end are lowered below it
    /// ([`consumer::lower_to_end`]) before anything is appended or read.
    pub fn open_encrypted(
        dir: &Path,
        count: u32,
        options: &LogOptions,
        budget: &Arc<DiskBudget>,
        keys: Option<&KeyRing>,
        encrypt: bool,
    ) -> Result<Self, OpenError> {
        let shards = (0..count)
            .map(|i| Shard::open(&layout::shard_dir(dir, i), options.clone(), budget.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(open_error)?;
        let at_rest = shards
            .iter()
            .map(|shard| {
                ShardAtRest::open(shard.dir(), keys, encrypt, shard.next_seq()).map(Arc::new)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| match e {
                AtRestError::Io { .. } => OpenError::Unavailable(Cause::new(e)),
                e => OpenError::Keys(Cause::new(e)),
            })?;
        for shard in &shards {
            consumer::lower_to_end(shard.dir(), shard.next_seq()).map_err(|source| {
                let path = shard.dir().to_path_buf();
                OpenError::Unavailable(Cause::new(embedded::OpenError::Io { path, source }))
            })?;
        }
        Ok(Self {
            shards,
            at_rest,
            switching: tokio::sync::RwLock::new(()),
            nonce: rand::random(),
            counter: AtomicU64::new(0),
        })
    }

    /// Shard `i`'s handle (the embedded log's own tests and tools).
    pub fn shard(&self, i: u32) -> &Shard {
        &self.shards[i as usize]
    }

    /// Whether records appended now are encrypted at rest.
    pub fn is_encrypted(&self) -> bool {
        self.at_rest.first().is_some_and(|a| a.is_encrypting())
    }

    /// Which shard owns a 128-bit hash key: shard `i` owns `[i * 2^128 / n, (i + 1) * 2^128 / n)`
    /// (exactly [`HashRange::part`]).
    pub fn shard_for_hash_key(&self, hash_key: u128) -> usize {
        (((hash_key >> 64) * self.shards.len() as u128) >> 64) as usize
    }

    fn implicit_hash_key(&self) -> u128 {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut md5 = Md5::new();
        md5.update(self.nonce.to_le_bytes());
        md5.update(n.to_le_bytes());
        u128::from_be_bytes(md5.finalize().into())
    }

    fn shard_of(&self, route: Route) -> usize {
        match route {
            // One shard: no key to compute.
            Route::Implicit if self.shards.len() == 1 => 0,
            Route::Implicit => self.shard_for_hash_key(self.implicit_hash_key()),
            Route::HashKey(key) => self.shard_for_hash_key(key),
        }
    }

    fn get(&self, shard: ShardId) -> Result<&Shard, ReadError> {
        self.shards.get(shard.0 as usize).ok_or(ReadError::UnknownShard(shard))
    }
}

#[async_trait]
impl StreamLog for EmbeddedLog {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            // Seal frames in the shards' segments (docs/log-format.md).
            durable_seals: true,
            watermark_is_a_bound: true,
            leases_can_be_lost: false,
            shards_can_end: false,
            monotonic_arrivals: true,
            // The shard directories' LOCK files: one process, one open handle.
            shared_open: false,
            atomic_encryption_switch: true,
        }
    }

    fn shards(&self) -> Vec<ShardInfo> {
        ShardInfo::fixed(self.shards.len() as u32)
    }

    /// Each shard's part is one append (one group-commit entry); shards are written
    /// concurrently.
    async fn append(&self, records: Vec<Append>) -> Vec<Result<Appended, AppendError>> {
        let _no_switch = self.switching.read().await;
        let encrypted = self.is_encrypted();
        let n = self.shards.len();
        let mut per_shard: Vec<Vec<Bytes>> = vec![Vec::new(); n];
        let mut placement = Vec::with_capacity(records.len());
        for record in records {
            let shard = self.shard_of(record.route);
            placement.push((shard, per_shard[shard].len() as u64));
            per_shard[shard].push(record.data);
        }
        let appends =
            per_shard.into_iter().enumerate().filter(|(_, r)| !r.is_empty()).map(|(i, r)| {
                let shard = self.shards[i].clone();
                let at_rest = self.at_rest[i].clone();
                async move {
                    match at_rest.seal_all(r) {
                        Ok(records) => (i, shard.append(records).await.map_err(append_error)),
                        Err(e) => (i, Err(AppendError::Unavailable(Cause::new(e)))),
                    }
                }
            });
        let mut outcomes: Vec<Option<Result<(u64, i64), AppendError>>> =
            (0..n).map(|_| None).collect();
        for (i, outcome) in futures::future::join_all(appends).await {
            outcomes[i] = Some(outcome.map(|o| (o.first_seq, o.arrival_ms)));
        }
        placement
            .into_iter()
            .map(|(shard, offset)| {
                match outcomes[shard].as_ref().expect("every used shard answered") {
                    Ok((first, arrival_ms)) => Ok(Appended {
                        shard: ShardId(shard as u32),
                        seq: first + offset,
                        arrival_ms: *arrival_ms,
                        encrypted,
                    }),
                    Err(e) => Err(e.clone()),
                }
            })
            .collect()
    }

    async fn reader(
        &self,
        shard: ShardId,
        from: ReadFrom,
    ) -> Result<Box<dyn ShardReader>, ReadError> {
        let handle = self.get(shard)?;
        let from = match from {
            ReadFrom::Seq(seq) => seq,
            ReadFrom::Oldest => handle.first_seq(),
            ReadFrom::Latest => handle.next_seq(),
        };
        let at_rest = self.at_rest[shard.0 as usize].clone();
        Ok(Box::new(EmbeddedReader::new(shard, handle, at_rest, from)?))
    }

    /// Every shard, at once; the stream of leases ends there.
    fn assignments(&self, consumer: &str) -> Result<Assignments, LeaseError> {
        super::checkpoint::validate_consumer(consumer)
            .map_err(|_| LeaseError::InvalidConsumer(consumer.to_string()))?;
        let (granted, assignments) = tokio::sync::mpsc::unbounded_channel();
        for (i, shard) in self.shards.iter().enumerate() {
            let lease: Arc<dyn ShardLease> =
                Arc::new(EmbeddedLease::new(ShardId(i as u32), shard.clone(), consumer));
            let _ = granted.send(lease);
        }
        Ok(Assignments::new(assignments))
    }

    /// Starts (or, with another active key, continues in a new epoch) or stops encrypting
    /// appended records. Waits for the appends in flight; the records after them are in the
    /// new mode.
    async fn switch_encryption(&self, keys: AtRestKeys) -> Result<(), EncryptionError> {
        let _no_appends = self.switching.write().await;
        for (shard, at_rest) in self.shards.iter().zip(&self.at_rest) {
            at_rest.switch(keys.ring.as_deref(), keys.encrypt, shard.next_seq()).map_err(|e| {
                match e {
                    AtRestError::Io { .. } => EncryptionError::Unavailable(Cause::new(e)),
                    e => EncryptionError::Keys(Cause::new(e)),
                }
            })?;
        }
        Ok(())
    }

    fn stats(&self) -> Vec<ShardStats> {
        (self.shards.iter().enumerate())
            .map(|(i, shard)| ShardStats {
                shard: ShardId(i as u32),
                next_seq: shard.next_seq(),
                bytes: shard.disk_bytes(),
            })
            .collect()
    }

    fn problems(&self) -> Vec<ShardProblem> {
        (self.shards.iter().enumerate())
            .filter_map(|(i, shard)| {
                shard.poisoned().map(|reason| ShardProblem { shard: ShardId(i as u32), reason })
            })
            .collect()
    }

    async fn close(&self) {
        futures::future::join_all(self.shards.iter().map(Shard::close)).await;
    }
}

/// What an embedded open failure means to callers.
pub(super) fn open_error(e: embedded::OpenError) -> OpenError {
    match e {
        embedded::OpenError::Locked { .. } => OpenError::Locked(Cause::new(e)),
        embedded::OpenError::Corrupt { .. } | embedded::OpenError::Checkpoint { .. } => {
            OpenError::Damaged(Cause::new(e))
        }
        embedded::OpenError::Io { .. } | embedded::OpenError::Spawn(_) => {
            OpenError::Unavailable(Cause::new(e))
        }
    }
}

/// What an embedded append failure means to producers: full (back off) or not now.
fn append_error(e: embedded::AppendError) -> AppendError {
    match e {
        embedded::AppendError::DiskFull | embedded::AppendError::BudgetExceeded { .. } => {
            AppendError::Full(Cause::new(e))
        }
        embedded::AppendError::RecordTooLarge { index, len, max } => {
            AppendError::TooLarge { index, len, max }
        }
        embedded::AppendError::Io(_)
        | embedded::AppendError::SyncFailed(_)
        | embedded::AppendError::Poisoned { .. }
        | embedded::AppendError::Closed => AppendError::Unavailable(Cause::new(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn implicit(records: Vec<Bytes>) -> Vec<Append> {
        records.into_iter().map(Append::implicit).collect()
    }

    #[test]
    fn the_listed_hash_ranges_are_exactly_the_keys_each_shard_is_routed() {
        for n in 1..=64u32 {
            let dir = tempfile::tempdir().unwrap();
            let log =
                EmbeddedLog::open(dir.path(), n, &LogOptions::default(), &DiskBudget::new(None))
                    .unwrap();
            let shards = StreamLog::shards(&log);
            assert_eq!(shards.len(), n as usize);
            assert_eq!(shards[0].hash_range.start, 0);
            assert_eq!(shards[n as usize - 1].hash_range.end, u128::MAX);
            for (i, shard) in shards.iter().enumerate() {
                let range = shard.hash_range;
                assert_eq!(shard.id, ShardId(i as u32));
                assert_eq!(log.shard_for_hash_key(range.start), i, "n={n}: start of {i}");
                assert_eq!(log.shard_for_hash_key(range.end), i, "n={n}: end of {i}");
                if i > 0 {
                    assert_eq!(range.start, shards[i - 1].hash_range.end + 1, "n={n}: gap at {i}");
                    assert_eq!(log.shard_for_hash_key(range.start - 1), i - 1, "n={n}: before {i}");
                }
            }
        }
    }

    #[test]
    fn hash_key_ranges_are_equal_and_cover_the_space() {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(dir.path(), 4, &LogOptions::default(), &DiskBudget::new(None))
            .unwrap();
        assert_eq!(log.shard_for_hash_key(0), 0);
        assert_eq!(log.shard_for_hash_key(u128::MAX), 3);
        assert_eq!(log.shard_for_hash_key(1u128 << 126), 1);
        assert_eq!(log.shard_for_hash_key((1u128 << 126) - 1), 0);
        assert_eq!(log.shard_for_hash_key(1u128 << 127), 2);
    }

    #[tokio::test]
    async fn a_request_is_spread_over_shards_and_keeps_order_within_each() {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(dir.path(), 3, &LogOptions::default(), &DiskBudget::new(None))
            .unwrap();
        let records: Vec<Bytes> = (0..300).map(|i| Bytes::from(format!("r{i}"))).collect();
        let results = log.append(implicit(records)).await;
        let locations: Vec<_> = results.into_iter().map(Result::unwrap).collect();
        for shard in 0..3u32 {
            let seqs: Vec<u64> =
                locations.iter().filter(|l| l.shard == ShardId(shard)).map(|l| l.seq).collect();
            assert!(seqs.len() > 50, "shard {shard} got {} of 300", seqs.len());
            assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
            let mut reader = log.shard(shard).reader(0).unwrap();
            let mut expected =
                locations.iter().enumerate().filter(|(_, l)| l.shard == ShardId(shard));
            while let Some(crate::log::Entry::Record(record)) = reader.next().unwrap() {
                let (i, _) = expected.next().unwrap();
                assert_eq!(record.data, Bytes::from(format!("r{i}")));
            }
            assert!(expected.next().is_none());
        }
    }

    #[tokio::test]
    async fn an_encrypted_log_holds_no_plaintext_and_reads_back() {
        use crate::codec::encryption::{KeyRing, MasterKey};
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::new("k", [MasterKey::from_bytes("k", &[9u8; 32]).unwrap()]).unwrap();
        let log = EmbeddedLog::open_encrypted(
            dir.path(),
            1,
            &LogOptions::default(),
            &DiskBudget::new(None),
            Some(&ring),
            true,
        )
        .unwrap();
        assert!(log.is_encrypted());
        let results = log.append(implicit(vec![Bytes::from_static(b"top secret record")])).await;
        assert!(results[0].is_ok());
        let segment =
            std::fs::read(dir.path().join("shard-0000/00000000000000000000.seg")).unwrap();
        assert!(!segment.windows(10).any(|w| w == b"top secret"), "plaintext found in the segment");
        let Some(crate::log::Entry::Record(stored)) =
            log.shard(0).reader(0).unwrap().next().unwrap()
        else {
            panic!("a record")
        };
        assert_eq!(
            log.at_rest[0].open_record(stored.seq, stored.data).unwrap(),
            Bytes::from_static(b"top secret record")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn switching_encryption_under_load_keeps_every_record_readable() {
        use crate::codec::encryption::{KeyRing, MasterKey};
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::new("k", [MasterKey::from_bytes("k", &[7u8; 32]).unwrap()]).unwrap();
        let log = Arc::new(
            EmbeddedLog::open_encrypted(
                dir.path(),
                2,
                &LogOptions::default(),
                &DiskBudget::new(None),
                Some(&ring),
                false,
            )
            .unwrap(),
        );
        let producers: Vec<_> = (0..4)
            .map(|p| {
                let log = log.clone();
                tokio::spawn(async move {
                    for batch in 0..40 {
                        let records =
                            (0..10).map(|i| Bytes::from(format!("p{p}-b{batch}-r{i}"))).collect();
                        for result in log.append(implicit(records)).await {
                            result.unwrap();
                        }
                    }
                })
            })
            .collect();
        for _ in 0..15 {
            let keys = |encrypt| AtRestKeys { ring: Some(Arc::new(ring.clone())), encrypt };
            log.switch_encryption(keys(true)).await.unwrap();
            tokio::task::yield_now().await;
            log.switch_encryption(keys(false)).await.unwrap();
            tokio::task::yield_now().await;
        }
        for producer in producers {
            producer.await.unwrap();
        }
        let (mut read, mut sealed) = (std::collections::BTreeSet::new(), 0);
        for (i, shard) in log.shards.iter().enumerate() {
            let mut reader = shard.reader(0).unwrap();
            while let Some(crate::log::Entry::Record(record)) = reader.next().unwrap() {
                sealed += usize::from(!record.data.starts_with(b"p"));
                let text = log.at_rest[i].open_record(record.seq, record.data).unwrap();
                read.insert(String::from_utf8(text.to_vec()).unwrap());
            }
        }
        let sent: std::collections::BTreeSet<String> = (0..4)
            .flat_map(|p| {
                (0..40).flat_map(move |b| (0..10).map(move |i| format!("p{p}-b{b}-r{i}")))
            })
            .collect();
        assert_eq!(read, sent);
        assert!(sealed > 0 && sealed < sent.len(), "{sealed} of {} sealed", sent.len());
    }
}
