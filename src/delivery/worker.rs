//! One delivery worker per shard, in two threads joined by a one-slot queue:
//!
//! - the *cutter* reads the log from the checkpoint, cuts deterministic batches and
//!   compresses each as it reads (CPU);
//! - the *uploader* names each sealed batch, writes it with retries, then moves the checkpoint
//!   (I/O and waiting).
//!
//! So compression of the next batch overlaps the upload and fsyncs of the previous one. The
//! checkpoint moves only after the destination has the object, in batch order, so a crash at
//! any point re-delivers the same batch under the same key.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hydrant_destinations::s3::{Object, S3Destination};
use hydrant_destinations::{Destination, RetryPolicy};
use tokio::runtime::Handle;
use tokio::sync::watch;

use super::assembler::{Assembler, Stages, UnitKind};
use super::batch::{BatchBuilder, BatchPolicy, SealedBatch};
use super::naming::{BatchIdentity, ObjectNamer};
use crate::clock::now_ms;
use crate::codec::ObjectCodec;
use crate::core::{Record, Shard, ShardReader};
use crate::telemetry::Metrics;

/// Name of the delivery consumer's checkpoint in each shard.
pub const CONSUMER: &str = "delivery";

type WorkerResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// What a worker shares with the metrics endpoint.
#[derive(Debug, Default)]
pub struct WorkerStatus {
    next_seq: AtomicU64,
    /// First arrival time of every batch started but not yet delivered, oldest first.
    undelivered: Mutex<VecDeque<i64>>,
}

impl WorkerStatus {
    pub fn new() -> Self {
        Self::default()
    }
    /// The first sequence number not yet delivered.
    pub fn next_seq(&self) -> u64 {
        self.next_seq.load(Ordering::Relaxed)
    }
    /// Arrival time of the oldest record not yet delivered (for DataFreshness).
    pub fn oldest_undelivered_ms(&self) -> Option<i64> {
        self.undelivered.lock().expect("not poisoned").front().copied()
    }
    fn batch_started(&self, first_arrival_ms: i64) {
        self.undelivered.lock().expect("not poisoned").push_back(first_arrival_ms);
    }
    fn batch_delivered(&self, next_seq: u64) {
        self.undelivered.lock().expect("not poisoned").pop_front();
        self.next_seq.store(next_seq, Ordering::Relaxed);
    }
}

/// Everything one shard's worker needs.
pub struct ShardWorker {
    pub stream: String,
    pub shard_index: u32,
    pub shard: Shard,
    pub version: u64,
    pub policy: BatchPolicy,
    pub codec: ObjectCodec,
    /// Decrypts records when the log is encrypted at rest.
    pub cipher: Option<Arc<crate::core::at_rest::ShardCipher>>,
    /// Processing and partitioning, owned by the cutter thread once it starts.
    pub stages: Mutex<Option<Stages>>,
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
    /// Starts the worker's two threads; the handles finish after shutdown.
    pub fn spawn(self) -> std::io::Result<Vec<std::thread::JoinHandle<()>>> {
        let this = Arc::new(self);
        let (tx, rx) = sync_channel::<SealedBatch>(1);
        let name = format!("{}-{}", this.stream, this.shard_index);
        let cutter = this.clone();
        let uploader = this;
        Ok(vec![
            std::thread::Builder::new()
                .name(format!("cut-{name}"))
                .spawn(move || cutter.report(cutter.cut(tx), "cutter"))?,
            std::thread::Builder::new()
                .name(format!("upload-{name}"))
                .spawn(move || uploader.report(uploader.upload(rx), "uploader"))?,
        ])
    }

    fn report(&self, result: WorkerResult<()>, part: &str) {
        if let Err(e) = result {
            tracing::error!(stream = %self.stream, shard = self.shard_index, part, error = %e,
                "delivery worker stopped; records stay in the log and are delivered after a restart");
            self.metrics.worker_stopped(&self.stream, self.shard_index);
        }
    }

    /// The cutter: log -> sealed batches.
    fn cut(&self, out: SyncSender<SealedBatch>) -> WorkerResult<()> {
        let mut stages =
            self.stages.lock().expect("not poisoned").take().ok_or("the cutter runs once")?;
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
            self.status.batch_started(first.arrival_ms);
            let assembler = Assembler::new(&mut stages, &self.codec, self.shard_index);
            let mut batch = BatchBuilder::start(self.policy, assembler, &first)?;
            // Fill until a record falls outside the batch, or no record can still join it.
            while !batch.is_full() {
                let mut next = self.read(&mut reader)?;
                let mut complete = false;
                if next.is_none() {
                    // Read the watermark, then look again: every record committed after the
                    // watermark was read arrives at or after it, so if nothing is there now
                    // and the window ends before the watermark, nothing can still join.
                    let watermark = self.shard.watermark_ms();
                    next = self.read(&mut reader)?;
                    complete = watermark >= batch.window_end();
                }
                match next {
                    Some(record) if batch.admits(&record) => batch.push(&record)?,
                    Some(record) => {
                        pending = Some(record);
                        break;
                    }
                    None if complete => break,
                    None => {
                        let wait = (batch.window_end() - now_ms()).clamp(0, 60_000) as u64 + 1;
                        if let Wake::Shutdown =
                            self.wait(&mut commits, Some(Duration::from_millis(wait)))
                        {
                            return Ok(());
                        }
                    }
                }
            }
            if out.send(batch.seal()?).is_err() {
                return Ok(()); // the uploader stopped (shutdown or error, which it reports)
            }
        }
    }

    /// The uploader: sealed batches -> destination -> checkpoint, in order.
    fn upload(&self, batches: Receiver<SealedBatch>) -> WorkerResult<()> {
        while let Ok(sealed) = batches.recv() {
            if !self.deliver(&sealed)? {
                return Ok(()); // shutdown while retrying; the batch is re-delivered after restart
            }
            self.shard.store_checkpoint(CONSUMER, sealed.last_seq + 1)?;
            self.status.batch_delivered(sealed.last_seq + 1);
        }
        Ok(())
    }

    /// The next committed record, if any, decrypted when the log is encrypted at rest.
    fn read(&self, reader: &mut ShardReader) -> WorkerResult<Option<Record>> {
        let Some(mut record) = reader.next()? else { return Ok(None) };
        if let Some(cipher) = &self.cipher {
            record.data = cipher.decrypt(&record.data)?;
        }
        Ok(Some(record))
    }

    /// The next committed record, waiting for one; `None` on shutdown.
    fn next_record(
        &self,
        reader: &mut ShardReader,
        commits: &mut watch::Receiver<u64>,
    ) -> WorkerResult<Option<Record>> {
        loop {
            if let Some(record) = self.read(reader)? {
                return Ok(Some(record));
            }
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
                _ = shutdown.wait_for(|s| *s) => Wake::Shutdown,
            }
        })
    }

    /// Writes every object of one batch, each with retries. `Ok(false)` on shutdown.
    fn deliver(&self, sealed: &SealedBatch) -> WorkerResult<bool> {
        for unit in &sealed.units {
            let identity = BatchIdentity {
                stream: &self.stream,
                shard: self.shard_index,
                first_seq: sealed.first_seq,
                last_seq: sealed.last_seq,
                variant: unit.variant,
            };
            let (key, content_encoding) = match &unit.kind {
                UnitKind::Data { partition } => (
                    self.namer.object_key(
                        self.version,
                        &identity,
                        unit.oldest_arrival_ms,
                        partition.as_ref(),
                    )?,
                    self.codec.content_encoding(),
                ),
                UnitKind::Errors { output_type } => (
                    self.namer.error_key(
                        self.version,
                        &identity,
                        unit.oldest_arrival_ms,
                        output_type,
                    )?,
                    None,
                ),
            };
            let object = Object { key, body: unit.body.clone(), content_encoding };
            if !self.put_with_retry(&object)? {
                return Ok(false);
            }
            match &unit.kind {
                UnitKind::Data { .. } => {
                    tracing::debug!(stream = %self.stream, shard = self.shard_index, key = %object.key,
                        records = unit.records, bytes = unit.bytes, object_bytes = object.body.len(), "delivered object");
                    self.metrics.delivered(
                        &self.stream,
                        unit.records,
                        unit.bytes,
                        object.body.len() as u64,
                    );
                }
                UnitKind::Errors { output_type } => {
                    tracing::warn!(stream = %self.stream, shard = self.shard_index, key = %object.key,
                        records = unit.records, error_output_type = output_type,
                        "records could not be delivered as they are; written to the error output");
                    self.metrics.error_output(&self.stream, output_type, unit.records);
                }
            }
        }
        Ok(true)
    }

    /// Writes one object, retrying with backoff until it succeeds. `Ok(false)` on shutdown.
    fn put_with_retry(&self, object: &Object) -> WorkerResult<bool> {
        let mut backoff = self.retry.backoff();
        loop {
            // S3 takes whole objects: an `Ok` outcome never rejects part of one.
            let Err(e) = self.runtime.block_on(self.destination.deliver(object)) else {
                return Ok(true);
            };
            self.metrics.delivery_failed(&self.stream, &e.code);
            // S3 delivery has no retry deadline: records stay in the log until the store takes
            // them, so only shutdown ends this loop.
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
