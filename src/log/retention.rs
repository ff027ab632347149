//! Time-based retention of a log: records older than a retention period are let go (a Kinesis
//! stream's `RetentionPeriodHours`, a delivery stream's `hydrant.retention_hours`).
//!
//! The log deletes what every registered consumer has passed, so retention is one more
//! consumer of each stream, [`RETENTION_CONSUMER`]: every [`EVERY`] it reads each shard from
//! where it stopped up to the first record that is still within the period and commits that
//! position. The log then deletes the segments below it (whole segments: a record may outlive
//! its period by up to a segment, as AWS keeps records "at least" the period). A shard read to
//! its end (closed, every record expired) lets retention go on to its children. A Firehose
//! delivery stream reading the stream is another consumer, and the log keeps what it has not
//! delivered whatever the period: nothing is dropped undelivered. In a cluster, the shards'
//! leases spread retention over the nodes: each lets go of records in the shards it holds,
//! and forgets a shard whose lease another node took.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::{
    Assignments, Entry, LeaseError, Progress, ReadError, ReadFrom, ReadLimit, ShardId, ShardLease,
    StreamLog,
};

/// The consumer name retention commits under in every shard of a Kinesis stream.
pub const RETENTION_CONSUMER: &str = "kinesis-retention";
/// The consumer name retention commits under in every shard of a delivery stream.
pub const DELIVERY_RETENTION_CONSUMER: &str = "retention";
/// How often retention looks at the streams.
pub const EVERY: Duration = Duration::from_secs(60);

/// Why retention could not advance in a shard (it tries again at the next look).
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error(transparent)]
    Lease(#[from] LeaseError),
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// Retention's hold on one stream's shards.
#[derive(Debug)]
pub struct Retention {
    assignments: Assignments,
    leases: BTreeMap<ShardId, Arc<dyn ShardLease>>,
}

impl Retention {
    /// Retention of a Kinesis stream's log ([`RETENTION_CONSUMER`]).
    pub fn new(log: &dyn StreamLog) -> Result<Self, LeaseError> {
        Self::for_consumer(log, RETENTION_CONSUMER)
    }

    /// Retention committing as `consumer`.
    pub fn for_consumer(log: &dyn StreamLog, consumer: &str) -> Result<Self, LeaseError> {
        Ok(Self { assignments: log.assignments(consumer)?, leases: BTreeMap::new() })
    }

    /// Registers retention in the shards granted since the last call, at their oldest record
    /// (a consumer is registered once it reads its state), so that the log keeps their records
    /// from now on; lets go of none. Cheap when nothing new was granted.
    pub async fn adopt(&mut self) -> Result<(), LeaseError> {
        let mut granted = Vec::new();
        while let Some(lease) = self.assignments.try_next() {
            granted.push(lease);
        }
        // All at once: registering can wait a few seconds in a shared log (for purges under
        // way to settle), and the log may delete delivered records of a shard not yet
        // registered meanwhile.
        let states = futures::future::join_all(granted.iter().map(|lease| lease.state())).await;
        for (lease, state) in granted.into_iter().zip(states) {
            match state {
                Ok(_) | Err(LeaseError::Lost { .. }) => {}
                Err(e) => return Err(e),
            }
            self.leases.insert(lease.shard(), lease);
        }
        Ok(())
    }

    /// Lets go of every record that arrived before `cutoff_ms`; returns how many it let go.
    pub async fn expire(
        &mut self,
        log: &dyn StreamLog,
        cutoff_ms: i64,
    ) -> Result<u64, RetentionError> {
        let mut expired = 0;
        // A shard finished here lets its children be granted: look again until none comes.
        loop {
            while let Some(lease) = self.assignments.try_next() {
                self.leases.insert(lease.shard(), lease);
            }
            let mut finished = Vec::new();
            for (shard, lease) in &self.leases {
                match expire_shard(log, lease.as_ref(), cutoff_ms).await {
                    Ok((count, ended)) => {
                        expired += count;
                        if ended {
                            finished.push(*shard);
                        }
                    }
                    // Another node holds the shard now (a cluster): its retention goes on.
                    Err(RetentionError::Lease(LeaseError::Lost { .. })) => finished.push(*shard),
                    Err(e) => return Err(e),
                }
            }
            for shard in &finished {
                self.leases.remove(shard);
            }
            if finished.is_empty() {
                return Ok(expired);
            }
            // Let the log grant the children of what was finished.
            tokio::task::yield_now().await;
        }
    }
}

/// Moves retention's checkpoint in one shard past every record older than `cutoff_ms`; how
/// many records it passed, and whether it reached the end of a closed shard.
async fn expire_shard(
    log: &dyn StreamLog,
    lease: &dyn ShardLease,
    cutoff_ms: i64,
) -> Result<(u64, bool), RetentionError> {
    let from = lease.state().await?.next_seq;
    let mut reader = match log.reader(lease.shard(), ReadFrom::Seq(from)).await {
        Err(ReadError::Trimmed { .. }) => log.reader(lease.shard(), ReadFrom::Oldest).await?,
        other => other?,
    };
    let (mut next, mut passed, mut ended) = (from, 0u64, false);
    'reading: loop {
        let mut batch_reader = reader;
        let (batch, back) = tokio::task::spawn_blocking(move || {
            let batch = batch_reader.read(ReadLimit::default());
            (batch, batch_reader)
        })
        .await
        .map_err(|e| ReadError::Unavailable(crate::log::Cause::new(e)))?;
        reader = back;
        let batch = batch?;
        if batch.entries.is_empty() {
            break;
        }
        for entry in batch.entries {
            match entry {
                Entry::Record(r) if r.arrival_ms >= cutoff_ms => break 'reading,
                Entry::Record(r) => {
                    next = r.seq + 1;
                    passed += 1;
                }
                Entry::Seal(seal) => next = seal.position + 1,
                Entry::End(end) => {
                    next = end.position;
                    ended = true;
                    break 'reading;
                }
            }
        }
        if batch.caught_up.is_some() {
            break;
        }
    }
    if next > from || ended {
        lease.commit(Progress { markers: None, next_seq: Some(next) }).await?;
    }
    Ok((passed, ended))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{Append, DiskBudget, EmbeddedLog, LogOptions, Reshard, Route};
    use bytes::Bytes;

    async fn put(log: &EmbeddedLog, n: usize, key: u128) {
        let records = (0..n)
            .map(|i| Append { data: Bytes::from(vec![i as u8; 512]), route: Route::HashKey(key) });
        assert!(log.append(records.collect()).await.iter().all(Result::is_ok));
    }

    #[tokio::test]
    async fn records_past_the_period_are_let_go_and_their_segments_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let options = LogOptions { segment_bytes: 4096, ..LogOptions::default() };
        let log = EmbeddedLog::open(dir.path(), 1, &options, &DiskBudget::new(None)).unwrap();
        put(&log, 100, 1).await;
        let mut retention = Retention::new(&log).unwrap();
        let before = log.shard(0).disk_bytes();
        assert_eq!(retention.expire(&log, 0).await.unwrap(), 0, "nothing is older than the epoch");
        assert_eq!(log.shard(0).first_seq(), 0);
        tokio::time::sleep(Duration::from_millis(5)).await;
        let cutoff = crate::clock::now_ms();
        tokio::time::sleep(Duration::from_millis(5)).await;
        put(&log, 3, 1).await;
        assert_eq!(retention.expire(&log, cutoff).await.unwrap(), 100);
        assert!(log.shard(0).disk_bytes() < before / 2, "the expired segments are deleted");
        let mut reader = log.reader(ShardId(0), ReadFrom::Oldest).await.unwrap();
        let left = reader.read(ReadLimit::default()).unwrap().entries.len();
        assert!((3..100).contains(&left), "{left} entries left");
        assert_eq!(retention.expire(&log, cutoff).await.unwrap(), 0, "once");
    }

    #[tokio::test]
    async fn a_closed_shard_expired_to_its_end_lets_retention_go_on_to_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(dir.path(), 1, &LogOptions::default(), &DiskBudget::new(None))
            .unwrap();
        put(&log, 5, 1).await;
        let mut retention = Retention::new(&log).unwrap();
        log.reshard(Reshard::Split { shard: ShardId(0), at: 1 << 100 }).await.unwrap();
        put(&log, 7, 1).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        let expired = retention.expire(&log, crate::clock::now_ms()).await.unwrap();
        assert_eq!(expired, 12, "the parent's 5 and the child's 7");
    }
}
