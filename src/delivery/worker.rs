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
//!
//! A worker is stopped through its [`WorkerSignals`]: *stop* (the cutter stops, the uploader
//! delivers what is already sealed), *drain* (the cutter reads the log to its end, seals every
//! open buffer early and the uploader delivers all of it) or *abandon* (an upload in flight is
//! given up; the checkpoint says where the next worker resumes).
//!
//! A *supervisor* thread runs the two (the uploader on the supervisor's own thread, so a shard
//! costs two delivery threads): when either fails (a checkpoint write on a full disk, a
//! read error, a transform that cannot be instantiated, a panic), both end and the supervisor
//! starts them again from the checkpoint after a backoff (200 ms doubling to
//! [`MAX_RESTART_WAIT`]), exactly as a process restart would, so delivery resumes on its own
//! soon after the cause is gone. Restarts are counted
//! (`hydrant_delivery_worker_restarts_total`) and a worker that is down shows in its
//! [`DeliveryHealth`] (metrics, logs, `/readyz`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;

use tokio::runtime::Handle;
use tokio::sync::watch;

use super::assembler::{Assembler, Stages};
use super::batch::BatchPolicy;
use super::buffers::{BufferKey, Markers, Progress, Unit};
use super::health::DeliveryHealth;
use super::sink::{Sink, SinkContext};
use crate::clock::now_ms;
use crate::codec::ObjectCodec;
use crate::log::{Record, Shard, ShardReader};
use crate::telemetry::Metrics;

/// Name of the delivery consumer's checkpoint in each shard.
pub const CONSUMER: &str = "delivery";
/// Name of the source-record backup consumer (`S3BackupMode: Enabled` and the like).
pub const BACKUP_CONSUMER: &str = "backup";

type WorkerResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// First wait before a failed worker is started again.
pub const FIRST_RESTART_WAIT: Duration = Duration::from_millis(200);
/// Longest wait between two restarts of a failing worker: delivery resumes within about this
/// long once the cause (a full disk, say) is gone.
pub const MAX_RESTART_WAIT: Duration = Duration::from_secs(10);

/// Builds a worker's processing stages again for each restart (a transform instance, for one,
/// is not reused after a failure).
pub type StagesFactory = Arc<dyn Fn() -> Result<Stages, String> + Send + Sync>;

/// What a worker shares with the metrics endpoint.
#[derive(Debug)]
pub struct WorkerStatus {
    next_seq: AtomicU64,
    /// Oldest arrival time in the cutter's open buffers (`i64::MAX`: none).
    open_oldest: AtomicI64,
    /// Oldest arrival time of each sealed object not yet delivered, in delivery order.
    in_flight: Mutex<VecDeque<i64>>,
    /// Whether delivery moves.
    health: Arc<DeliveryHealth>,
}

impl Default for WorkerStatus {
    fn default() -> Self {
        Self {
            next_seq: AtomicU64::new(0),
            open_oldest: AtomicI64::new(i64::MAX),
            in_flight: Mutex::new(VecDeque::new()),
            health: Arc::new(DeliveryHealth::new()),
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
    /// Whether the shard's delivery moves (and if not, why).
    pub fn health(&self) -> &DeliveryHealth {
        &self.health
    }
    /// A new run of the worker starts from the checkpoint: nothing is open or in flight.
    fn restart(&self) {
        self.open_oldest.store(i64::MAX, Ordering::Relaxed);
        self.in_flight.lock().expect("not poisoned").clear();
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
    /// Opens the records that were encrypted at rest.
    pub at_rest: Arc<crate::log::embedded::at_rest::ShardAtRest>,
    /// Processing and partitioning for the first run (built when the stream starts, so that
    /// errors show then), owned by the cutter thread once it starts.
    pub stages: Mutex<Option<Stages>>,
    /// Stages for every later run (after a failure).
    pub restart_stages: StagesFactory,
    /// Whether the stages evaluate jq queries: the cutter then runs on a large stack
    /// ([`crate::processors::extract::EVALUATOR_THREAD_STACK_BYTES`]).
    pub evaluates_jq: bool,
    /// Where sealed buffers go.
    pub sink: Arc<dyn Sink>,
    pub metrics: Metrics,
    pub status: Arc<WorkerStatus>,
    /// How the worker is asked to stop (see [`WorkerSignals`]).
    pub stop: StopReceiver,
    pub runtime: Handle,
}

/// How a stream's workers are asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Keep delivering.
    Run,
    /// Stop cutting; the uploader delivers the objects already sealed, then exits. Used when a
    /// stream's configuration changes: the next workers resume from the checkpoint, cutting
    /// exactly as these would have.
    Stop,
    /// Read the log to its end, seal every open buffer (early: before its size or interval is
    /// reached), deliver everything, then exit. Used by delete, removal and shutdown.
    Drain,
}

/// The receiving side of [`WorkerSignals`], one per worker.
#[derive(Clone)]
pub struct StopReceiver {
    mode: watch::Receiver<StopMode>,
    abandon: watch::Receiver<bool>,
}

/// Stops a stream's workers: [`StopMode`] for the cutters, and *abandon* for uploads in
/// flight (their retry loops give up; nothing is checkpointed, so it is delivered again).
pub struct WorkerSignals {
    mode: watch::Sender<StopMode>,
    abandon: watch::Sender<bool>,
}

impl Default for WorkerSignals {
    fn default() -> Self {
        Self::new()
    }
}

impl WorkerSignals {
    pub fn new() -> Self {
        Self { mode: watch::channel(StopMode::Run).0, abandon: watch::channel(false).0 }
    }

    /// A receiver for one more worker.
    pub fn receiver(&self) -> StopReceiver {
        StopReceiver { mode: self.mode.subscribe(), abandon: self.abandon.subscribe() }
    }

    /// Asks the workers to stop (`Stop`) or drain (`Drain`). A drain is never downgraded to
    /// a stop.
    pub fn request(&self, mode: StopMode) {
        self.mode.send_if_modified(|current| {
            let next = match (*current, mode) {
                (StopMode::Drain, _) => StopMode::Drain,
                (_, next) => next,
            };
            let changed = *current != next;
            *current = next;
            changed
        });
    }

    /// Gives up uploads in flight and stops every part of the workers.
    pub fn abandon(&self) {
        self.abandon.send_replace(true);
    }
}

enum Wake {
    Data,
    Stop,
    Drain,
}

/// Why one run of a worker ended early.
struct Failure {
    part: &'static str,
    error: Box<dyn std::error::Error + Send + Sync>,
}

impl ShardWorker {
    /// Starts the worker's supervisor thread, which runs (and restarts) the cutter and the
    /// uploader; the handle finishes after shutdown.
    pub fn spawn(self) -> std::io::Result<Vec<std::thread::JoinHandle<()>>> {
        let this = Arc::new(self);
        let name = format!("{}-{}", this.stream, this.shard_index);
        Ok(vec![std::thread::Builder::new()
            .name(format!("deliver-{name}"))
            .spawn(move || this.supervise())?])
    }

    /// Runs the worker until it is stopped, restarting it after each failure.
    fn supervise(self: Arc<Self>) {
        let mut failures = 0u32;
        loop {
            let (result, progressed) = self.run_once();
            let Err(failure) = result else { return };
            if progressed {
                failures = 0;
            }
            if self.stopping() {
                // Asked to stop anyway: the next workers resume from the checkpoint.
                tracing::warn!(stream = %self.stream, shard = self.shard_index, part = failure.part,
                    error = %failure.error, "delivery worker failed while stopping");
                return;
            }
            failures += 1;
            let wait = restart_wait(failures);
            self.metrics.worker_restarted(&self.stream, self.shard_index);
            self.status.health.worker_failed(
                &self.stream,
                self.shard_index,
                failure.part,
                &failure.error,
                wait,
            );
            self.metrics.worker_down(&self.stream, self.shard_index, true);
            if !self.sleep(wait) {
                return;
            }
        }
    }

    /// Whether the worker is asked to stop for good (stop, abandon, or the stream is gone); a
    /// drain still wants everything delivered, so a failing worker keeps trying.
    fn stopping(&self) -> bool {
        *self.stop.abandon.borrow()
            || *self.stop.mode.borrow() == StopMode::Stop
            || self.stop.mode.has_changed().is_err()
    }

    /// Waits `wait`, or less if the worker is asked to stop; `false` when it is.
    fn sleep(&self, wait: Duration) -> bool {
        let mut mode = self.stop.mode.clone();
        let mut abandon = self.stop.abandon.clone();
        self.runtime.block_on(async {
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => return true,
                    changed = mode.changed() => if changed.is_err() { return false },
                    _ = abandon.wait_for(|a| *a) => return false,
                }
                if self.stopping() {
                    return false;
                }
            }
        })
    }

    /// One run: the cutter and the uploader from the checkpoint until both end. The error of
    /// whichever failed, and whether the run delivered anything (or caught up).
    fn run_once(self: &Arc<Self>) -> (Result<(), Failure>, bool) {
        self.status.restart();
        let first = self.stages.lock().expect("not poisoned").take();
        let stages = match first.map_or_else(|| (self.restart_stages)(), Ok) {
            Ok(stages) => stages,
            Err(message) => return (Err(Failure { part: "stages", error: message.into() }), false),
        };
        let (tx, rx) = sync_channel::<Unit>(1);
        // Set when the uploader fails, so that an idle cutter ends too.
        let (halt_tx, halt_rx) = watch::channel(false);
        let name = format!("{}-{}", self.stream, self.shard_index);
        let mut cutter = std::thread::Builder::new().name(format!("cut-{name}"));
        if self.evaluates_jq {
            cutter = cutter.stack_size(crate::processors::extract::EVALUATOR_THREAD_STACK_BYTES);
        }
        let this = self.clone();
        let evaluates_jq = self.evaluates_jq;
        let cutter = cutter.spawn(move || {
            if evaluates_jq {
                crate::processors::extract::mark_evaluator_thread();
            }
            this.cut(stages, tx, halt_rx)
        });
        let cutter = match cutter {
            Ok(handle) => handle,
            Err(e) => return (Err(Failure { part: "cutter", error: e.into() }), false),
        };
        // The uploader runs on this (the supervisor's) thread: a shard costs one thread less,
        // and a panic in it is caught here like one of the cutter's.
        let upload = std::panic::AssertUnwindSafe(|| {
            let result = self.upload(rx);
            if result.is_err() {
                halt_tx.send_replace(true);
            }
            result
        });
        // The cutter ends once its queue has no receiver (`rx` is dropped with the uploader).
        let uploaded = joined(std::panic::catch_unwind(upload), "uploader");
        let cut = joined(cutter.join(), "cutter");
        let progressed = !self.status.health.is_down();
        (uploaded.and(cut), progressed)
    }
    /// The cutter: log -> processed records -> buffers -> sealed objects. Ends (`Ok`) when
    /// stopped or when `halt` says the uploader failed.
    fn cut(
        &self,
        stages: Stages,
        out: SyncSender<Unit>,
        mut halt: watch::Receiver<bool>,
    ) -> WorkerResult<()> {
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
        let mut since_check = 0u32;
        loop {
            if let Some(record) = self.read(&mut reader)? {
                assembler.push(&record)?;
                if !self.send(&mut assembler, &out) {
                    return Ok(());
                }
                // A long backlog: look at the stop signal now and then (a drain keeps reading).
                since_check += 1;
                if since_check >= 1024 {
                    since_check = 0;
                    if *halt.borrow() {
                        return Ok(());
                    }
                    if let Some(Wake::Stop) = self.stop_requested() {
                        return Ok(());
                    }
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
            if self.status.oldest_undelivered_ms().is_none() {
                // Read to the end with nothing open or in flight: whatever held the shard back
                // is over.
                self.caught_up();
            }
            let wait = assembler
                .next_due()
                .map(|due| Duration::from_millis((due - now_ms()).clamp(0, 60_000) as u64 + 1));
            match self.wait(&mut commits, &mut halt, wait) {
                Wake::Data => {}
                Wake::Stop => return Ok(()),
                Wake::Drain => return self.drain(&mut reader, &mut assembler, &out),
            }
        }
    }

    /// Reads the log to its end, seals every open buffer and hands everything to the uploader;
    /// returning closes the queue, so the uploader exits once it has delivered it all.
    fn drain(
        &self,
        reader: &mut ShardReader,
        assembler: &mut Assembler<'_>,
        out: &SyncSender<Unit>,
    ) -> WorkerResult<()> {
        while let Some(record) = self.read(reader)? {
            assembler.push(&record)?;
            if !self.send(assembler, out) || *self.stop.abandon.borrow() {
                return Ok(());
            }
        }
        let units = assembler.finish()?;
        self.status.buffers_hold(None);
        let (objects, records) = (units.len(), units.iter().map(|u| u.records).sum::<u64>());
        for unit in units {
            self.status.object_sealed(unit.oldest_arrival_ms);
            if out.send(unit).is_err() {
                return Ok(());
            }
        }
        tracing::debug!(stream = %self.stream, shard = self.shard_index, objects, records,
            "drain: sealed every open buffer");
        Ok(())
    }

    /// What the stop signal asks for now, if anything.
    fn stop_requested(&self) -> Option<Wake> {
        if *self.stop.abandon.borrow() {
            return Some(Wake::Stop);
        }
        match *self.stop.mode.borrow() {
            StopMode::Run => None,
            StopMode::Stop => Some(Wake::Stop),
            StopMode::Drain => Some(Wake::Drain),
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
                // Before the checkpoint: see `Markers`.
                markers
                    .store(self.shard.dir(), self.consumer)
                    .map_err(|e| format!("storing the delivery markers: {e}"))?;
            }
            if let Some(checkpoint) = step.checkpoint {
                self.shard
                    .store_checkpoint(self.consumer, checkpoint)
                    .map_err(|e| format!("storing the checkpoint: {e}"))?;
            }
            self.status.object_delivered(progress.checkpoint());
            if self.status.health.is_down() {
                self.metrics.worker_down(&self.stream, self.shard_index, false);
            }
            self.status.health.delivered(&self.stream, self.shard_index);
        }
        Ok(())
    }

    fn caught_up(&self) {
        if self.status.health.is_down() {
            self.metrics.worker_down(&self.stream, self.shard_index, false);
        }
        self.status.health.caught_up();
    }

    /// The next committed record, if any, decrypted when the log is encrypted at rest.
    fn read(&self, reader: &mut ShardReader) -> WorkerResult<Option<Record>> {
        let Some(mut record) = reader.next()? else { return Ok(None) };
        record.data = self.at_rest.open_record(record.seq, record.data)?;
        Ok(Some(record))
    }

    fn wait(
        &self,
        commits: &mut watch::Receiver<u64>,
        halt: &mut watch::Receiver<bool>,
        timeout: Option<Duration>,
    ) -> Wake {
        if *halt.borrow() {
            return Wake::Stop;
        }
        if let Some(wake) = self.stop_requested() {
            return wake;
        }
        let mut mode = self.stop.mode.clone();
        let mut abandon = self.stop.abandon.clone();
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
                changed = mode.changed() => match changed {
                    // The signals are gone: the stream was dropped.
                    Err(_) => Wake::Stop,
                    Ok(()) => self.stop_requested().unwrap_or(Wake::Data),
                },
                _ = abandon.wait_for(|a| *a) => Wake::Stop,
                _ = halt.wait_for(|h| *h) => Wake::Stop,
            }
        })
    }

    /// Hands one sealed object to the sink, or error documents to its error output.
    /// `Ok(false)` on shutdown.
    fn deliver(&self, unit: &Unit) -> WorkerResult<bool> {
        let ctx = SinkContext {
            stream: self.stream.clone(),
            shard: self.shard_index,
            version: self.version,
            metrics: self.metrics.clone(),
            runtime: self.runtime.clone(),
            shutdown: self.stop.abandon.clone(),
            health: self.status.health.clone(),
        };
        match unit.key {
            BufferKey::Errors(_) => self.sink.error_output().deliver_errors(unit, &ctx),
            BufferKey::Data(_) => self.sink.deliver(unit, &ctx),
        }
    }
}

/// The outcome of a joined thread: its error, or its panic as an error.
fn joined(
    outcome: std::thread::Result<WorkerResult<()>>,
    part: &'static str,
) -> Result<(), Failure> {
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(Failure { part, error }),
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(Failure { part, error: format!("panicked: {message}").into() })
        }
    }
}

/// The wait before the `failures`-th restart in a row: 200 ms doubling to
/// [`MAX_RESTART_WAIT`], shortened by up to 15 % at random so that the shards of one full disk
/// do not retry in step (never longer than the cap).
fn restart_wait(failures: u32) -> Duration {
    let base =
        FIRST_RESTART_WAIT.as_secs_f64() * 2f64.powi(failures.saturating_sub(1).min(16) as i32);
    let capped = base.min(MAX_RESTART_WAIT.as_secs_f64());
    Duration::from_secs_f64(capped * rand::rng().random_range(0.85..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_waits_double_from_200_ms_and_never_pass_ten_seconds() {
        let waits: Vec<Duration> = (1..=12).map(restart_wait).collect();
        assert!(waits[0] <= FIRST_RESTART_WAIT && waits[0] >= FIRST_RESTART_WAIT * 85 / 100);
        assert!(waits[3] >= Duration::from_millis(1360) && waits[3] <= Duration::from_millis(1600));
        assert!(waits.iter().all(|w| *w <= MAX_RESTART_WAIT), "{waits:?}");
        assert!(waits[11] >= MAX_RESTART_WAIT * 85 / 100, "{waits:?}");
        assert!(restart_wait(u32::MAX) <= MAX_RESTART_WAIT);
    }
}
