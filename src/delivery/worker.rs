//! One delivery worker per shard, in two threads joined by a one-slot queue:
//!
//! - the *cutter* reads the log from the checkpoint, processes the records and fills one
//!   buffer per partition, compressing as it goes (CPU), and seals objects deterministically
//!   ([`super::buffers`]);
//! - the *uploader* names each sealed object, writes it with retries, records what it
//!   delivered ([`Markers`]) and moves the checkpoint (I/O and waiting).
//!
//! So compression of the next object overlaps the upload and fsyncs of the previous one. The
//! checkpoint moves only after the destination has the objects before it, in seal order, so a
//! crash at any point re-delivers the same objects under the same keys.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::watch;

use super::assembler::{Assembler, Stages};
use super::batch::BatchPolicy;
use super::buffers::{Markers, Progress, Unit};
use super::sinks::{Sink, SinkContext};
use crate::clock::now_ms;
use crate::codec::ObjectCodec;
use crate::core::{Record, Shard, ShardReader};
use crate::telemetry::Metrics;

/// Name of the delivery consumer's checkpoint in each shard.
pub const CONSUMER: &str = "delivery";
/// Name of the source-record backup consumer (`S3BackupMode: Enabled` and the like).
pub const BACKUP_CONSUMER: &str = "backup";

type WorkerResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// What a worker shares with the metrics endpoint.
#[derive(Debug)]
pub struct WorkerStatus {
    next_seq: AtomicU64,
    /// Oldest arrival time in the cutter's open buffers (`i64::MAX`: none).
    open_oldest: AtomicI64,
    /// Oldest arrival time of each sealed object not yet delivered, in delivery order.
    in_flight: Mutex<VecDeque<i64>>,
}

impl Default for WorkerStatus {
    fn default() -> Self {
        Self {
            next_seq: AtomicU64::new(0),
            open_oldest: AtomicI64::new(i64::MAX),
            in_flight: Mutex::new(VecDeque::new()),
        }
    }
}

impl WorkerStatus {
    pub fn new() -> Self {
        Self::default()
    }
    /// The checkpoint: the first sequence number a restart would read again.
    pub fn next_seq(&self) -> u64 {
        self.next_seq.load(Ordering::Relaxed)
    }
    /// Arrival time of the oldest record not yet delivered (for DataFreshness).
    pub fn oldest_undelivered_ms(&self) -> Option<i64> {
        let in_flight = self.in_flight.lock().expect("not poisoned").iter().copied().min();
        let open = Some(self.open_oldest.load(Ordering::Relaxed)).filter(|&t| t != i64::MAX);
        match (in_flight, open) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
    fn buffers_hold(&self, oldest_arrival_ms: Option<i64>) {
        self.open_oldest.store(oldest_arrival_ms.unwrap_or(i64::MAX), Ordering::Relaxed);
    }
    fn object_sealed(&self, oldest_arrival_ms: i64) {
        self.in_flight.lock().expect("not poisoned").push_back(oldest_arrival_ms);
    }
    fn object_delivered(&self, checkpoint: u64) {
        self.in_flight.lock().expect("not poisoned").pop_front();
        self.next_seq.store(checkpoint, Ordering::Relaxed);
    }
}

/// Everything one shard's worker needs.
pub struct ShardWorker {
    pub stream: String,
    /// Whose checkpoint and markers this worker keeps ([`CONSUMER`] or [`BACKUP_CONSUMER`]).
    pub consumer: &'static str,
    pub shard_index: u32,
    pub shard: Shard,
    pub version: u64,
    pub policy: BatchPolicy,
    pub codec: ObjectCodec,
    /// Decrypts records when the log is encrypted at rest.
    pub cipher: Option<Arc<crate::core::at_rest::ShardCipher>>,
    /// Processing and partitioning, owned by the cutter thread once it starts.
    pub stages: Mutex<Option<Stages>>,
    /// Where sealed buffers go.
    pub sink: Arc<dyn Sink>,
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
        let (tx, rx) = sync_channel::<Unit>(1);
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

    /// The cutter: log -> processed records -> buffers -> sealed objects.
    fn cut(&self, out: SyncSender<Unit>) -> WorkerResult<()> {
        let stages =
            self.stages.lock().expect("not poisoned").take().ok_or("the cutter runs once")?;
        let start = self.shard.load_checkpoint(self.consumer)?;
        self.status.next_seq.store(start, Ordering::Relaxed);
        let markers = Markers::load(self.shard.dir(), self.consumer)?;
        let mut assembler = Assembler::new(
            stages,
            &self.codec,
            self.shard_index,
            self.sink.layout(),
            self.policy,
            markers,
            start,
        );
        let mut reader = self.shard.reader(start)?;
        let mut commits = self.shard.subscribe();
        loop {
            if let Some(record) = self.read(&mut reader)? {
                assembler.push(&record)?;
                if !self.send(&mut assembler, &out) {
                    return Ok(());
                }
                continue;
            }
            // Read the watermark, then look again: every record committed after the watermark
            // was read arrives at or after it, so if nothing is there now, buffers whose window
            // ends before the watermark can take nothing more.
            let watermark = self.shard.watermark_ms();
            if let Some(record) = self.read(&mut reader)? {
                assembler.push(&record)?;
            } else {
                assembler.idle(watermark)?;
            }
            if !self.send(&mut assembler, &out) {
                return Ok(());
            }
            self.status.buffers_hold(assembler.oldest_pending_arrival());
            let wait = assembler
                .next_due()
                .map(|due| Duration::from_millis((due - now_ms()).clamp(0, 60_000) as u64 + 1));
            if let Wake::Shutdown = self.wait(&mut commits, wait) {
                return Ok(());
            }
        }
    }

    /// Hands the sealed objects to the uploader; `false` once it has stopped.
    fn send(&self, assembler: &mut Assembler<'_>, out: &SyncSender<Unit>) -> bool {
        let sealed = assembler.take_sealed();
        if sealed.is_empty() {
            return true;
        }
        self.status.buffers_hold(assembler.oldest_pending_arrival());
        for unit in sealed {
            self.status.object_sealed(unit.oldest_arrival_ms);
            if out.send(unit).is_err() {
                return false; // the uploader stopped (shutdown or error, which it reports)
            }
        }
        true
    }

    /// The uploader: sealed objects -> destination -> markers and checkpoint, in order.
    fn upload(&self, units: Receiver<Unit>) -> WorkerResult<()> {
        let mut progress = Progress::new(
            Markers::load(self.shard.dir(), self.consumer)?,
            self.shard.load_checkpoint(self.consumer)?,
        );
        while let Ok(unit) = units.recv() {
            if !self.deliver(&unit)? {
                return Ok(()); // shutdown while retrying; the object is re-delivered after restart
            }
            let step = progress.delivered(&unit);
            if let Some(markers) = step.markers {
                markers.store(self.shard.dir(), self.consumer)?; // before the checkpoint: see `Markers`
            }
            if let Some(checkpoint) = step.checkpoint {
                self.shard.store_checkpoint(self.consumer, checkpoint)?;
            }
            self.status.object_delivered(progress.checkpoint());
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

    /// Hands one sealed object to the sink. `Ok(false)` on shutdown.
    fn deliver(&self, unit: &Unit) -> WorkerResult<bool> {
        let ctx = SinkContext {
            stream: self.stream.clone(),
            shard: self.shard_index,
            version: self.version,
            metrics: self.metrics.clone(),
            runtime: self.runtime.clone(),
            shutdown: self.shutdown.clone(),
        };
        self.sink.deliver(unit, &ctx)
    }
}
