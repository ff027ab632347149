//! One delivery worker per shard: read from the checkpoint, cut a deterministic batch, name
//! it, write it, then move the checkpoint. The checkpoint moves only after the destination has
//! the object, so a crash at any point re-delivers the same batch under the same key.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hydrant_destinations::s3::{Object, S3Destination};
use hydrant_destinations::{Destination, RetryPolicy};
use tokio::runtime::Handle;
use tokio::sync::watch;

use super::batch::{BatchBuilder, BatchPolicy, SealedBatch};
use super::naming::{BatchIdentity, ObjectNamer};
use crate::clock::now_ms;
use crate::codec::Compression;
use crate::core::{Record, Shard, ShardReader};
use crate::telemetry::Metrics;

/// Name of the delivery consumer's checkpoint in each shard.
pub const CONSUMER: &str = "delivery";

/// What a worker shares with the metrics endpoint.
#[derive(Debug, Default)]
pub struct WorkerStatus {
    next_seq: AtomicU64,
    /// Arrival time of the oldest record not yet delivered, or `i64::MIN` when caught up.
    oldest_undelivered_ms: AtomicI64,
}

impl WorkerStatus {
    pub fn new() -> Self {
        Self { next_seq: AtomicU64::new(0), oldest_undelivered_ms: AtomicI64::new(i64::MIN) }
    }
    /// The first sequence number not yet delivered.
    pub fn next_seq(&self) -> u64 {
        self.next_seq.load(Ordering::Relaxed)
    }
    pub fn oldest_undelivered_ms(&self) -> Option<i64> {
        Some(self.oldest_undelivered_ms.load(Ordering::Relaxed)).filter(|&t| t != i64::MIN)
    }
}

/// Everything one shard's worker needs.
pub struct ShardWorker {
    pub stream: String,
    pub shard_index: u32,
    pub shard: Shard,
    pub version: u64,
    pub policy: BatchPolicy,
    pub compression: Arc<dyn Compression>,
    pub extension: String,
    pub namer: Arc<ObjectNamer>,
    pub destination: S3Destination,
    pub retry: RetryPolicy,
    pub metrics: Metrics,
    pub status: Arc<WorkerStatus>,
    pub shutdown: watch::Receiver<bool>,
    pub runtime: Handle,
}

enum Wake {
    Data,
    Shutdown,
}

impl ShardWorker {
    /// Runs until shutdown. Runs on its own thread: reading and compressing are blocking CPU
    /// and file work; the async parts (waiting, the PUT) are driven with `block_on`.
    pub fn run(mut self) {
        if let Err(e) = self.run_inner() {
            tracing::error!(stream = %self.stream, shard = self.shard_index, error = %e,
                "delivery worker stopped; records stay in the log and are delivered after a restart");
        }
    }

    fn run_inner(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        let start = self.shard.load_checkpoint(CONSUMER)?;
        self.status.next_seq.store(start, Ordering::Relaxed);
        let mut reader = self.shard.reader(start)?;
        let mut commits = self.shard.subscribe();
        let mut pending: Option<Record> = None;
        loop {
            let first = match pending.take() {
                Some(record) => record,
                None => match self.next_record(&mut reader, &mut commits)? {
                    Some(record) => record,
                    None => return Ok(()),
                },
            };
            self.status.oldest_undelivered_ms.store(first.arrival_ms, Ordering::Relaxed);
            let mut batch = BatchBuilder::start(self.policy, self.compression.writer(), &first)?;
            // Fill until a record falls outside the batch, or no record can still join it.
            loop {
                if batch.is_full() {
                    break;
                }
                // The watermark must be read before looking for data: every record committed
                // after this point arrives at or after it.
                let watermark = self.shard.watermark_ms();
                match reader.next()? {
                    Some(record) if batch.admits(&record) => batch.push(&record)?,
                    Some(record) => {
                        pending = Some(record);
                        break;
                    }
                    None if watermark >= batch.window_end() => break,
                    None => {
                        let wait = Duration::from_millis(
                            (batch.window_end() - now_ms()).clamp(0, 60_000) as u64 + 1,
                        );
                        if let Wake::Shutdown = self.wait(&mut commits, Some(wait)) {
                            return Ok(());
                        }
                    }
                }
            }
            let sealed = batch.seal()?;
            if !self.deliver(&sealed)? {
                return Ok(()); // shutdown while retrying; the batch is re-delivered after restart
            }
            self.shard.store_checkpoint(CONSUMER, sealed.last_seq + 1)?;
            self.status.next_seq.store(sealed.last_seq + 1, Ordering::Relaxed);
            let oldest = pending.as_ref().map_or(i64::MIN, |r| r.arrival_ms);
            self.status.oldest_undelivered_ms.store(oldest, Ordering::Relaxed);
        }
    }

    /// The next committed record, waiting for one; `None` on shutdown.
    fn next_record(
        &self,
        reader: &mut ShardReader,
        commits: &mut watch::Receiver<u64>,
    ) -> Result<Option<Record>, Box<dyn std::error::Error>> {
        loop {
            if let Some(record) = reader.next()? {
                return Ok(Some(record));
            }
            self.status.oldest_undelivered_ms.store(i64::MIN, Ordering::Relaxed);
            if let Wake::Shutdown = self.wait(commits, None) {
                return Ok(None);
            }
        }
    }

    fn wait(&self, commits: &mut watch::Receiver<u64>, timeout: Option<Duration>) -> Wake {
        let mut shutdown = self.shutdown.clone();
        if *shutdown.borrow() {
            return Wake::Shutdown;
        }
        self.runtime.block_on(async {
            let timer = async {
                match timeout {
                    Some(t) => tokio::time::sleep(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = commits.changed() => Wake::Data,
                _ = timer => Wake::Data,
                _ = shutdown.changed() => Wake::Shutdown,
            }
        })
    }

    /// Writes one batch, retrying with backoff until it succeeds. `Ok(false)` on shutdown.
    fn deliver(&self, sealed: &SealedBatch) -> Result<bool, Box<dyn std::error::Error>> {
        let identity = BatchIdentity {
            stream: &self.stream,
            shard: self.shard_index,
            first_seq: sealed.first_seq,
            last_seq: sealed.last_seq,
        };
        let key = self.namer.object_key(self.version, &identity, sealed.first_arrival_ms, None)?;
        let object = Object {
            key,
            body: sealed.body.clone(),
            content_encoding: self.compression.content_encoding(),
        };
        let mut backoff = self.retry.backoff();
        loop {
            let result = self.runtime.block_on(self.destination.deliver(&object));
            match result {
                Ok(()) => {
                    tracing::debug!(stream = %self.stream, shard = self.shard_index, key = %object.key,
                        records = sealed.records, bytes = sealed.bytes, object_bytes = object.body.len(),
                        "delivered object");
                    self.metrics.delivered(
                        &self.stream,
                        sealed.records,
                        sealed.bytes,
                        object.body.len() as u64,
                    );
                    return Ok(true);
                }
                Err(e) => {
                    self.metrics.delivery_failed(&self.stream, &e.code);
                    // S3 delivery has no retry deadline: records stay in the log until the
                    // store takes them, so only shutdown ends this loop.
                    let wait = backoff.next_wait().unwrap_or(self.retry.max);
                    tracing::warn!(stream = %self.stream, shard = self.shard_index, destination = "s3",
                        bucket = self.destination.bucket(), key = %object.key, attempt = backoff.attempts(),
                        retry_in_ms = wait.as_millis() as u64, error = %e, "delivery failed; will retry");
                    let mut shutdown = self.shutdown.clone();
                    let stopped = self.runtime.block_on(async {
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => false,
                            _ = shutdown.wait_for(|s| *s) => true,
                        }
                    });
                    if stopped {
                        return Ok(false);
                    }
                }
            }
        }
    }
}
