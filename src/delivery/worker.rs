//! One delivery worker per shard, in two threads joined by a one-slot queue:
//!
//! - the *cutter* reads the log from the checkpoint, processes the records and fills one
//!   buffer per partition, compressing as it goes (CPU), and seals objects deterministically
//!   ([`super::buffers`]): when a record arrives past a buffer's window, or, once it has read
//!   everything, at a seal it records in the log at the watermark, so that a replay cuts at
//!   the same place;
//! - the *uploader* names each sealed object, writes it with retries, and commits what it
//!   delivered ([`Markers`]) and the checkpoint through the worker's lease on the shard (I/O
//!   and waiting).
//!
//! So compression of the next object overlaps the upload and fsyncs of the previous one. The
//! checkpoint moves only after the destination has the objects before it, in seal order, so a
//! crash at any point re-delivers the same objects under the same keys.
//!
//! A worker is stopped through its [`WorkerSignals`]: *stop* (the cutter stops, the uploader
//! delivers what is already sealed), *drain* (the cutter reads the log to its end, records a
//! drain seal there, seals every open buffer early and the uploader delivers all of it) or
//! *abandon* (an upload in flight is given up; the checkpoint says where the next worker
//! resumes). Losing its lease abandons a worker too, and a shard that ends (it was split or
//! merged) finishes it: every buffer is sealed and the checkpoint moves to the end.
//!
//! A *supervisor* thread runs the two (the uploader on the supervisor's own thread, so a shard
//! costs two delivery threads): when either fails (a checkpoint write on a full disk, a
//! read error, a transform that cannot be instantiated, a panic), both end and the supervisor
//! starts them again from the checkpoint after a backoff (200 ms doubling to
//! [`MAX_RESTART_WAIT`]), exactly as a process restart would, so delivery resumes on its own
//! soon after the cause is gone. Restarts are counted
//! (`hydrant_delivery_worker_restarts_total`) and a worker that is down shows in its
//! [`DeliveryHealth`](super::health::DeliveryHealth) (metrics, logs, `/readyz`).

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;

use tokio::runtime::Handle;
use tokio::sync::watch;

use super::assembler::{Assembler, Stages};
use super::batch::BatchPolicy;
use super::buffers::{BufferKey, Markers, Progress, Unit};
use super::failure::{joined, Failure, WorkerError};
use super::signals::{StopMode, StopReceiver};
use super::sink::{Sink, SinkContext, SinkResult};
use super::status::WorkerStatus;
use crate::clock::now_ms;
use crate::codec::ObjectCodec;
use crate::log::{
    ConsumerState, Entry, LeaseError, Progress as LogProgress, ReadFrom, ReadLimit, Seal, SealKind,
    SealOutcome, SealProposal, ShardEnd, ShardLease, ShardReader, StreamLog,
};
use crate::telemetry::Metrics;

/// Name of the delivery consumer's checkpoint in each shard.
pub const CONSUMER: &str = "delivery";
/// Name of the source-record backup consumer (`S3BackupMode: Enabled` and the like).
pub const BACKUP_CONSUMER: &str = "backup";

type WorkerResult<T> = Result<T, WorkerError>;

/// First wait before a failed worker is started again.
pub const FIRST_RESTART_WAIT: Duration = Duration::from_millis(200);
/// Longest wait between two restarts of a failing worker: delivery resumes within about this
/// long once the cause (a full disk, say) is gone.
pub const MAX_RESTART_WAIT: Duration = Duration::from_secs(10);

/// Builds a worker's processing stages again for each restart (a transform instance, for one,
/// is not reused after a failure).
pub type StagesFactory = Arc<dyn Fn() -> Result<Stages, String> + Send + Sync>;

/// Everything one shard's worker needs.
pub struct ShardWorker {
    pub stream: String,
    /// The stream's log, which the worker reads.
    pub log: Arc<dyn StreamLog>,
    /// The worker's hold on its shard: whose checkpoint and markers it keeps ([`CONSUMER`] or
    /// [`BACKUP_CONSUMER`]).
    pub lease: Arc<dyn ShardLease>,
    /// The lease's shard, for metrics and logs.
    pub shard_index: u32,
    pub version: u64,
    pub policy: BatchPolicy,
    pub codec: ObjectCodec,
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

enum Wake {
    Data,
    Stop,
    Drain,
}

/// What became of one entry of the log.
enum Taken {
    Next,
    /// The uploader stopped.
    Stopped,
    /// The shard ends here.
    End(ShardEnd),
}

impl ShardWorker {
    /// Starts the worker's supervisor thread, which runs (and restarts) the cutter and the
    /// uploader; the handle finishes after shutdown.
    pub fn spawn(mut self) -> std::io::Result<Vec<std::thread::JoinHandle<()>>> {
        super::fault::arm();
        self.stop = self.stop.or_lost(self.lease.lost(), &self.runtime);
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
            self.status.health().worker_failed(
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
            Err(message) => {
                return (
                    Err(Failure { part: "stages", error: WorkerError::Stages(message) }),
                    false,
                )
            }
        };
        let state = match self.runtime.block_on(self.lease.state()) {
            Ok(state) => state,
            Err(LeaseError::Lost { .. }) => return (Ok(()), false),
            Err(e) => {
                return (Err(Failure { part: "cutter", error: WorkerError::State(e) }), false)
            }
        };
        let (tx, rx) = sync_channel::<Unit>(1);
        // Set when the uploader fails, so that an idle cutter ends too.
        let (halt_tx, halt_rx) = watch::channel(false);
        // Where the shard ended, once the cutter read its end.
        let ended = Arc::new(Mutex::new(None));
        let name = format!("{}-{}", self.stream, self.shard_index);
        let mut cutter = std::thread::Builder::new().name(format!("cut-{name}"));
        if self.evaluates_jq {
            cutter = cutter.stack_size(crate::processors::extract::EVALUATOR_THREAD_STACK_BYTES);
        }
        let this = self.clone();
        let evaluates_jq = self.evaluates_jq;
        let (cut_state, cut_ended) = (state.clone(), ended.clone());
        let cutter = cutter.spawn(move || {
            if evaluates_jq {
                crate::processors::extract::mark_evaluator_thread();
            }
            this.cut(stages, cut_state, tx, halt_rx, &cut_ended)
        });
        let cutter = match cutter {
            Ok(handle) => handle,
            Err(e) => {
                return (Err(Failure { part: "cutter", error: WorkerError::Thread(e) }), false)
            }
        };
        // The uploader runs on this (the supervisor's) thread: a shard costs one thread less,
        // and a panic in it is caught here like one of the cutter's.
        let upload = std::panic::AssertUnwindSafe(|| {
            let result = self.upload(state, rx, &ended);
            if result.is_err() {
                halt_tx.send_replace(true);
            }
            result
        });
        // The cutter ends once its queue has no receiver (`rx` is dropped with the uploader).
        let uploaded = joined(std::panic::catch_unwind(upload), "uploader");
        let cut = joined(cutter.join(), "cutter");
        let progressed = !self.status.health().is_down();
        (uploaded.and(cut), progressed)
    }
    /// The cutter: log -> processed records -> buffers -> sealed objects. Ends (`Ok`) when
    /// stopped, when `halt` says the uploader failed, or at the end of the shard (`ended`).
    fn cut(
        &self,
        stages: Stages,
        state: ConsumerState,
        out: SyncSender<Unit>,
        mut halt: watch::Receiver<bool>,
        ended: &Mutex<Option<u64>>,
    ) -> WorkerResult<()> {
        let start = state.next_seq;
        self.status.checkpointed(start);
        let mut assembler = Assembler::new(
            stages,
            &self.codec,
            self.shard_index,
            self.sink.layout(),
            self.policy,
            Markers::from_log(&state.markers),
            start,
        );
        let shard = self.lease.shard();
        let mut reader = self.runtime.block_on(self.log.reader(shard, ReadFrom::Seq(start)))?;
        loop {
            let batch = reader.read(ReadLimit::default())?;
            for entry in batch.entries {
                match self.take(entry, &mut assembler, &out)? {
                    Taken::Next => {}
                    Taken::Stopped => return Ok(()),
                    Taken::End(end) => return self.end_shard(&mut assembler, &out, end, ended),
                }
            }
            let Some(watermark) = batch.caught_up else {
                // A long backlog: look at the stop signal between reads (a drain keeps reading).
                if *halt.borrow() {
                    return Ok(());
                }
                if let Some(Wake::Stop) = self.stop_requested() {
                    return Ok(());
                }
                continue;
            };
            // Read to the end: nothing committed later arrives before the watermark, so buffers
            // whose window ends before it can take nothing more. The cut is recorded in the log
            // first, so that every replay makes it at the same record.
            if assembler.next_due().is_some_and(|due| due <= watermark) {
                let proposal = SealProposal { watermark_ms: watermark, kind: SealKind::Window };
                match self.runtime.block_on(reader.seal(proposal))? {
                    SealOutcome::Sealed(seal) => {
                        if let Taken::Stopped = self.apply(seal, &mut assembler, &out)? {
                            return Ok(());
                        }
                    }
                    // Records were committed meanwhile: they arrived at or after the watermark,
                    // so routing them seals the same buffers.
                    SealOutcome::Moved => continue,
                }
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
            match self.wait(reader.as_mut(), &mut halt, wait) {
                Wake::Data => {}
                Wake::Stop => return Ok(()),
                Wake::Drain => return self.drain(reader.as_mut(), &mut assembler, &out, ended),
            }
        }
    }

    /// Hands one entry of the log to the assembler, and what that sealed to the uploader.
    fn take(
        &self,
        entry: Entry,
        assembler: &mut Assembler<'_>,
        out: &SyncSender<Unit>,
    ) -> WorkerResult<Taken> {
        match entry {
            Entry::Record(record) => {
                assembler.push(&record)?;
                Ok(if self.send(assembler, out) { Taken::Next } else { Taken::Stopped })
            }
            Entry::Seal(seal) => self.apply(seal, assembler, out),
            Entry::End(end) => Ok(Taken::End(end)),
        }
    }

    /// Cuts where a seal says: the buffers whose window passed, or every buffer (a drain).
    fn apply(
        &self,
        seal: Seal,
        assembler: &mut Assembler<'_>,
        out: &SyncSender<Unit>,
    ) -> WorkerResult<Taken> {
        assembler.passed(seal.position);
        let sent = match seal.kind {
            SealKind::Window => {
                assembler.idle(seal.watermark_ms)?;
                self.send(assembler, out)
            }
            SealKind::Drain => {
                let units = assembler.finish()?;
                self.send_all(units, out)
            }
        };
        Ok(if sent { Taken::Next } else { Taken::Stopped })
    }

    /// Reads the log to its end, records a drain seal there, seals every open buffer and hands
    /// everything to the uploader; returning closes the queue, so the uploader exits once it has
    /// delivered it all.
    fn drain(
        &self,
        reader: &mut dyn ShardReader,
        assembler: &mut Assembler<'_>,
        out: &SyncSender<Unit>,
        ended: &Mutex<Option<u64>>,
    ) -> WorkerResult<()> {
        loop {
            let batch = reader.read(ReadLimit::default())?;
            for entry in batch.entries {
                match self.take(entry, assembler, out)? {
                    Taken::Next => {}
                    Taken::Stopped => return Ok(()),
                    Taken::End(end) => return self.end_shard(assembler, out, end, ended),
                }
                if *self.stop.abandon.borrow() {
                    return Ok(());
                }
            }
            let Some(watermark) = batch.caught_up else { continue };
            if assembler.oldest_pending_arrival().is_none() {
                return Ok(()); // nothing is open: nothing to cut early, so no seal to record
            }
            let proposal = SealProposal { watermark_ms: watermark, kind: SealKind::Drain };
            match self.runtime.block_on(reader.seal(proposal))? {
                SealOutcome::Sealed(seal) if seal.kind == SealKind::Drain => {
                    self.status.buffers_hold(None);
                    tracing::debug!(stream = %self.stream, shard = self.shard_index,
                        position = seal.position, "drain: sealing every open buffer");
                    self.apply(seal, assembler, out)?;
                    return Ok(());
                }
                // Another reader's cut holds here: make it, then propose the drain after it.
                SealOutcome::Sealed(seal) => {
                    if let Taken::Stopped = self.apply(seal, assembler, out)? {
                        return Ok(());
                    }
                }
                SealOutcome::Moved => {}
            }
        }
    }

    /// The shard ended (it was split or merged): seals every buffer, and has the uploader move
    /// the checkpoint to the end once it delivered them, which lets the shard's children start.
    fn end_shard(
        &self,
        assembler: &mut Assembler<'_>,
        out: &SyncSender<Unit>,
        end: ShardEnd,
        ended: &Mutex<Option<u64>>,
    ) -> WorkerResult<()> {
        let units = assembler.finish()?;
        self.status.buffers_hold(None);
        if self.send_all(units, out) {
            *ended.lock().expect("not poisoned") = Some(end.position);
            tracing::info!(stream = %self.stream, shard = self.shard_index, children = ?end.children,
                "the shard ended: its buffers are sealed; its children are read next");
        }
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
        self.send_all(sealed, out)
    }

    /// Hands `units` to the uploader, in order; `false` once it has stopped.
    fn send_all(&self, units: Vec<Unit>, out: &SyncSender<Unit>) -> bool {
        for unit in units {
            self.status.object_sealed(unit.oldest_arrival_ms);
            if out.send(unit).is_err() {
                return false; // the uploader stopped (shutdown or error, which it reports)
            }
        }
        true
    }

    /// The uploader: sealed objects -> destination -> markers and checkpoint, in order.
    fn upload(
        &self,
        state: ConsumerState,
        units: Receiver<Unit>,
        ended: &Mutex<Option<u64>>,
    ) -> WorkerResult<()> {
        let mut progress = Progress::new(Markers::from_log(&state.markers), state.next_seq);
        while let Ok(unit) = units.recv() {
            if !self.deliver(&unit)? {
                return Ok(()); // shutdown while retrying; the object is re-delivered after restart
            }
            super::fault::after_upload();
            let step = progress.delivered(&unit);
            // Markers before the checkpoint: see `Markers`.
            let commit = LogProgress {
                markers: step.markers.map(|markers| markers.to_log()),
                next_seq: step.checkpoint,
            };
            if !self.commit(commit)? {
                return Ok(());
            }
            self.status.object_delivered(progress.checkpoint());
            if self.status.health().is_down() {
                self.metrics.worker_down(&self.stream, self.shard_index, false);
            }
            self.status.health().delivered(&self.stream, self.shard_index);
        }
        let end = *ended.lock().expect("not poisoned");
        if let Some(end) = end.filter(|end| *end > progress.checkpoint()) {
            if self.commit(LogProgress { markers: None, next_seq: Some(end) })? {
                self.status.checkpointed(end);
            }
        }
        Ok(())
    }

    /// Stores what was delivered through the lease; `Ok(false)` once the lease is lost (another
    /// owner goes on from what was committed).
    fn commit(&self, progress: LogProgress) -> WorkerResult<bool> {
        if progress.markers.is_none() && progress.next_seq.is_none() {
            return Ok(true);
        }
        match self.runtime.block_on(self.lease.commit(progress)) {
            Ok(()) => Ok(true),
            Err(LeaseError::Lost { .. }) => {
                tracing::warn!(stream = %self.stream, shard = self.shard_index,
                    consumer = self.lease.consumer(), "the lease on the shard was lost; stopping");
                Ok(false)
            }
            Err(e) => Err(WorkerError::Commit(e)),
        }
    }

    fn caught_up(&self) {
        if self.status.health().is_down() {
            self.metrics.worker_down(&self.stream, self.shard_index, false);
        }
        self.status.health().caught_up();
    }

    fn wait(
        &self,
        reader: &mut dyn ShardReader,
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
                _ = reader.changed() => Wake::Data,
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
    fn deliver(&self, unit: &Unit) -> SinkResult<bool> {
        let ctx = SinkContext {
            stream: self.stream.clone(),
            shard: self.shard_index,
            version: self.version,
            metrics: self.metrics.clone(),
            runtime: self.runtime.clone(),
            shutdown: self.stop.abandon.clone(),
            health: self.status.health_handle(),
        };
        match unit.key {
            BufferKey::Errors(_) => self.sink.error_output().deliver_errors(unit, &ctx),
            BufferKey::Data(_) => self.sink.deliver(unit, &ctx),
        }
    }
}

/// The wait before the `failures`-th restart in a row: 200 ms doubling to
/// [`MAX_RESTART_WAIT`], shortened by up to 15 % at random so that the shards of one full disk
/// do not retry in step (never longer than the cap).
pub(super) fn restart_wait(failures: u32) -> Duration {
    let base =
        FIRST_RESTART_WAIT.as_secs_f64() * 2f64.powi(failures.saturating_sub(1).min(16) as i32);
    let capped = base.min(MAX_RESTART_WAIT.as_secs_f64());
    Duration::from_secs_f64(capped * rand::rng().random_range(0.85..=1.0))
}
