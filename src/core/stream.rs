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

use super::at_rest::ShardCipher;
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
}

/// The shards of one delivery stream.
#[derive(Debug)]
pub struct ShardedLog {
    shards: Vec<Shard>,
    /// Per shard, when records are encrypted at rest.
    ciphers: Option<Vec<Arc<ShardCipher>>>,
    nonce: u64,
    counter: AtomicU64,
}

impl ShardedLog {
    /// Opens (recovering) `count` shards under `dir` (`dir/shard-0000`, ...).
    pub fn open(
        dir: &Path,
        count: u32,
        options: &LogOptions,
        budget: &Arc<DiskBudget>,
    ) -> Result<Self, OpenError> {
        Self::open_encrypted(dir, count, options, budget, None)
    }

    /// Like [`open`](Self::open); with a key ring, records are encrypted at rest.
    pub fn open_encrypted(
        dir: &Path,
        count: u32,
        options: &LogOptions,
        budget: &Arc<DiskBudget>,
        ring: Option<&KeyRing>,
    ) -> Result<Self, OpenError> {
        let shards = (0..count)
            .map(|i| {
                Shard::open(&dir.join(format!("shard-{i:04}")), options.clone(), budget.clone())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ciphers = match ring {
            None => None,
            Some(ring) => Some(
                shards
                    .iter()
                    .map(|shard| ShardCipher::open(shard.dir(), ring).map(Arc::new))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| OpenError::Io {
                        path: dir.to_path_buf(),
                        source: std::io::Error::other(e.to_string()),
                    })?,
            ),
        };
        Ok(Self { shards, ciphers, nonce: rand::random(), counter: AtomicU64::new(0) })
    }

    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// The at-rest cipher of shard `i`, when the stream is encrypted.
    pub fn cipher(&self, i: usize) -> Option<Arc<ShardCipher>> {
        self.ciphers.as_ref().map(|c| c[i].clone())
    }

    /// Whether records are encrypted at rest.
    pub fn is_encrypted(&self) -> bool {
        self.ciphers.is_some()
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
                let cipher = self.cipher(i);
                async move {
                    let records = match cipher {
                        None => r,
                        Some(cipher) => match cipher.encrypt_all(r) {
                            Ok(sealed) => sealed,
                            Err(e) => {
                                let e = std::io::Error::other(e.to_string());
                                return (i, Err(AppendError::Io(Arc::new(e))));
                            }
                        },
                    };
                    (i, shard.append(records).await)
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
        let log = ShardedLog::open(dir.path(), 4, &LogOptions::default(), &DiskBudget::new(None))
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
        let log = ShardedLog::open(dir.path(), 3, &LogOptions::default(), &DiskBudget::new(None))
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
        let log = ShardedLog::open_encrypted(
            dir.path(),
            1,
            &LogOptions::default(),
            &DiskBudget::new(None),
            Some(&ring),
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
            log.cipher(0).unwrap().decrypt(&stored.data).unwrap(),
            Bytes::from_static(b"top secret record")
        );
    }
}
