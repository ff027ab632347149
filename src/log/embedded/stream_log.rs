//! A delivery stream's log: N shards, each owning an equal range of the 128-bit MD5 hash-key
//! space, Kinesis-style.
//!
//! Firehose's Direct PUT has no partition key, so each record gets an implicit one (a
//! per-process nonce plus a counter): MD5 of it spreads records evenly, and the records of one
//! request land on several shards, each in request order. Ordering holds within a shard.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use md5::{Digest, Md5};

use super::at_rest::{AtRestError, ShardAtRest};
use super::budget::DiskBudget;
use super::error::{AppendError, OpenError};
use super::shard::Shard;
use super::LogOptions;
use crate::codec::encryption::KeyRing;

/// Where an appended record lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLocation {
    pub shard: u32,
    pub seq: u64,
    pub arrival_ms: i64,
    /// Whether the record is encrypted at rest.
    pub encrypted: bool,
}

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
    /// Opens (recovering) `count` shards under `dir` (`dir/shard-0000`, ...).
    pub fn open(
        dir: &Path,
        count: u32,
        options: &LogOptions,
        budget: &Arc<DiskBudget>,
    ) -> Result<Self, OpenError> {
        Self::open_encrypted(dir, count, options, budget, None, false)
    }

    /// Like [`open`](Self::open), with encryption at rest: `keys` open records sealed
    /// earlier, and with `encrypt` new records are sealed under their active key.
    pub fn open_encrypted(
        dir: &Path,
        count: u32,
        options: &LogOptions,
        budget: &Arc<DiskBudget>,
        keys: Option<&KeyRing>,
        encrypt: bool,
    ) -> Result<Self, OpenError> {
        let shards = (0..count)
            .map(|i| {
                Shard::open(&dir.join(format!("shard-{i:04}")), options.clone(), budget.clone())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let at_rest = shards
            .iter()
            .map(|shard| {
                ShardAtRest::open(shard.dir(), keys, encrypt, shard.next_seq()).map(Arc::new)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| OpenError::Io {
                path: dir.to_path_buf(),
                source: std::io::Error::other(e.to_string()),
            })?;
        Ok(Self {
            shards,
            at_rest,
            switching: tokio::sync::RwLock::new(()),
            nonce: rand::random(),
            counter: AtomicU64::new(0),
        })
    }

    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// Shard `i`'s encryption at rest (readers open records with it).
    pub fn at_rest(&self, i: usize) -> Arc<ShardAtRest> {
        self.at_rest[i].clone()
    }

    /// Whether records appended now are encrypted at rest.
    pub fn is_encrypted(&self) -> bool {
        self.at_rest.first().is_some_and(|a| a.is_encrypting())
    }

    /// Starts (or, with another active key, continues in a new epoch) or stops encrypting
    /// appended records. Waits for the appends in flight; the records after them are in the
    /// new mode.
    pub async fn switch_encryption(
        &self,
        keys: Option<&KeyRing>,
        encrypt: bool,
    ) -> Result<(), AtRestError> {
        let _no_appends = self.switching.write().await;
        for (shard, at_rest) in self.shards.iter().zip(&self.at_rest) {
            at_rest.switch(keys, encrypt, shard.next_seq())?;
        }
        Ok(())
    }

    /// Which shard owns a 128-bit hash key: shard `i` owns `[i * 2^128 / n, (i + 1) * 2^128 / n)`.
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

    /// Appends records, returning one result per record in input order. Each shard's part is
    /// one append (one group-commit entry); shards are written concurrently.
    pub async fn append(&self, records: Vec<Bytes>) -> Vec<Result<RecordLocation, AppendError>> {
        let _no_switch = self.switching.read().await;
        let encrypted = self.is_encrypted();
        let n = self.shards.len();
        let mut per_shard: Vec<Vec<Bytes>> = vec![Vec::new(); n];
        let mut placement = Vec::with_capacity(records.len());
        for record in records {
            let shard = if n == 1 { 0 } else { self.shard_for_hash_key(self.implicit_hash_key()) };
            placement.push((shard, per_shard[shard].len() as u64));
            per_shard[shard].push(record);
        }
        let appends =
            per_shard.into_iter().enumerate().filter(|(_, r)| !r.is_empty()).map(|(i, r)| {
                let shard = self.shards[i].clone();
                let at_rest = self.at_rest[i].clone();
                async move {
                    match at_rest.seal_all(r) {
                        Ok(records) => (i, shard.append(records).await),
                        Err(e) => {
                            let e = std::io::Error::other(e.to_string());
                            (i, Err(AppendError::Io(Arc::new(e))))
                        }
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
                    Ok((first, arrival_ms)) => Ok(RecordLocation {
                        shard: shard as u32,
                        seq: first + offset,
                        arrival_ms: *arrival_ms,
                        encrypted,
                    }),
                    Err(e) => Err(e.clone()),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let results = log.append(records).await;
        let locations: Vec<_> = results.into_iter().map(Result::unwrap).collect();
        for shard in 0..3u32 {
            let seqs: Vec<u64> =
                locations.iter().filter(|l| l.shard == shard).map(|l| l.seq).collect();
            assert!(seqs.len() > 50, "shard {shard} got {} of 300", seqs.len());
            assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
            let mut reader = log.shards()[shard as usize].reader(0).unwrap();
            let mut expected = locations.iter().enumerate().filter(|(_, l)| l.shard == shard);
            while let Some(record) = reader.next().unwrap() {
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
        let results = log.append(vec![Bytes::from_static(b"top secret record")]).await;
        assert!(results[0].is_ok());
        let segment =
            std::fs::read(dir.path().join("shard-0000/00000000000000000000.seg")).unwrap();
        assert!(!segment.windows(10).any(|w| w == b"top secret"), "plaintext found in the segment");
        let stored = log.shards()[0].reader(0).unwrap().next().unwrap().unwrap();
        assert_eq!(
            log.at_rest(0).open_record(stored.seq, stored.data).unwrap(),
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
                        for result in log.append(records).await {
                            result.unwrap();
                        }
                    }
                })
            })
            .collect();
        for _ in 0..15 {
            log.switch_encryption(Some(&ring), true).await.unwrap();
            tokio::task::yield_now().await;
            log.switch_encryption(Some(&ring), false).await.unwrap();
            tokio::task::yield_now().await;
        }
        for producer in producers {
            producer.await.unwrap();
        }
        let (mut read, mut sealed) = (std::collections::BTreeSet::new(), 0);
        for (i, shard) in log.shards().iter().enumerate() {
            let mut reader = shard.reader(0).unwrap();
            while let Some(record) = reader.next().unwrap() {
                sealed += usize::from(!record.data.starts_with(b"p"));
                let text = log.at_rest(i).open_record(record.seq, record.data).unwrap();
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
