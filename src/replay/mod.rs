//! Replays: an operator re-delivers a time range of a stream's retained log, exactly once, to a
//! new prefix of the stream's own destination or to another stream's destination
//! (`hydrant replay`, the console, the `Hydrant_20261208.StartReplay` operation).
//!
//! A replay is a delivery pipeline like the stream's own (`pipeline::start_replay`) reading a
//! [`RangeView`](crate::log::range::RangeView) of the stream's log under a consumer of its own,
//! `replay-<id>`: the log keeps that consumer's checkpoints and retains what it has not read,
//! so a replay interrupted by a crash resumes where it was, and its objects are cut and named
//! from the log and the range alone, so delivering one again overwrites it. The id derives from
//! the request, so asking for the same replay twice finds the first one and writes nothing new.
//! What can be replayed is what the log still holds: `hydrant.retention_hours` keeps delivered
//! records (default 24 h; [`retention`]).

pub mod cli;
mod job;
mod retention;
mod run;
mod store;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

pub use job::{ReplayJob, ReplayRequest, ReplayState, ReplayStatus, ReplayTarget};
pub use retention::{keep_retention, Pressure};

use crate::clock::now_ms;
use crate::control::ControlPlane;
use crate::log::range::RangeProgress;
use crate::log::{Entry, ReadFrom, ReadLimit};
use store::JobStore;

/// Why a replay cannot start or be found.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("delivery stream {0} not found")]
    StreamNotFound(String),
    #[error("replay {0} not found")]
    NotFound(String),
    /// The request names something that cannot be replayed; `field` is the request's field.
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("cannot store replays in {path}: {source}", path = .0.display(), source = .1)]
    Store(PathBuf, #[source] std::io::Error),
    #[error("cannot read the stream's log: {0}")]
    Read(String),
}

/// This server's replays: started, listed, and resumed after a restart.
pub struct Replays {
    control: Arc<ControlPlane>,
    store: JobStore,
    jobs: Mutex<BTreeMap<String, Tracked>>,
    /// Held while a replay is checked and started, so that the same replay asked for twice at
    /// once starts once.
    starting: tokio::sync::Mutex<()>,
    /// Set when the server stops: running replays stop where they are (and resume at the next
    /// start).
    stop: watch::Sender<bool>,
}

struct Tracked {
    job: ReplayJob,
    /// The running replay's progress.
    progress: Option<Arc<RangeProgress>>,
}

impl std::fmt::Debug for Replays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replays").field("store", &self.store).finish_non_exhaustive()
    }
}

impl Replays {
    /// The replays stored under `dir`; [`resume`](Self::resume) runs the unfinished ones.
    pub fn open(control: Arc<ControlPlane>, dir: PathBuf) -> Result<Arc<Self>, ReplayError> {
        let store = JobStore::open(dir)?;
        let jobs = store.load()?;
        let jobs = jobs.into_iter().map(|job| (job.id.clone(), Tracked { job, progress: None }));
        Ok(Arc::new(Self {
            control,
            store,
            jobs: Mutex::new(jobs.collect()),
            starting: tokio::sync::Mutex::new(()),
            stop: watch::channel(false).0,
        }))
    }

    /// Runs again every replay a stop or a crash interrupted.
    pub fn resume(self: &Arc<Self>) {
        let running: Vec<String> = (self.jobs.lock().expect("not poisoned").values())
            .filter(|t| t.job.state == ReplayState::Running)
            .map(|t| t.job.id.clone())
            .collect();
        for id in running {
            tracing::info!(replay = %id, "resuming an unfinished replay");
            tokio::spawn(run::run(self.clone(), id));
        }
    }

    /// Stops the running replays where they are (they resume at the next start).
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Starts the replay `request` asks for, or finds it: a replay asked for again with the
    /// same stream, range and target is the same replay (a finished one writes nothing new; a
    /// failed one runs again).
    pub async fn start(
        self: &Arc<Self>,
        request: ReplayRequest,
    ) -> Result<ReplayStatus, ReplayError> {
        let id = request.id();
        let _starting = self.starting.lock().await;
        if let Some(status) = self.describe(&id).ok().filter(|s| s.job.state != ReplayState::Failed)
        {
            return Ok(status);
        }
        let version = run::check(&self.control, &request).await?;
        let job = ReplayJob {
            id: id.clone(),
            stream: request.stream,
            from_ms: request.from_ms,
            to_ms: request.to_ms,
            target: request.target,
            version,
            state: ReplayState::Running,
            started_ms: now_ms(),
            finished_ms: None,
            error: None,
            records: 0,
            bytes: 0,
            shards: 0,
        };
        self.save(job)?;
        tracing::info!(replay = %id, "replay started");
        tokio::spawn(run::run(self.clone(), id.clone()));
        self.describe(&id)
    }

    /// Every replay, newest first.
    pub fn list(&self) -> Vec<ReplayStatus> {
        let jobs = self.jobs.lock().expect("not poisoned");
        let mut all: Vec<ReplayStatus> = jobs.values().map(status_of).collect();
        all.sort_by_key(|s| std::cmp::Reverse(s.job.started_ms));
        all
    }

    pub fn describe(&self, id: &str) -> Result<ReplayStatus, ReplayError> {
        let jobs = self.jobs.lock().expect("not poisoned");
        jobs.get(id).map(status_of).ok_or_else(|| ReplayError::NotFound(id.to_string()))
    }

    /// The arrival time of the oldest record `stream`'s log still holds (what a replay can
    /// reach back to), or `None` when it holds none.
    pub async fn oldest_replayable_ms(&self, stream: &str) -> Result<Option<i64>, ReplayError> {
        let stream = (self.control.registry().get(stream))
            .ok_or_else(|| ReplayError::StreamNotFound(stream.to_string()))?;
        let mut oldest: Option<i64> = None;
        for shard in stream.log.shards() {
            let reader = stream.log.reader(shard.id, ReadFrom::Oldest).await;
            let mut reader = reader.map_err(|e| ReplayError::Read(e.to_string()))?;
            let first = tokio::task::spawn_blocking(move || {
                let batch = reader.read(ReadLimit { entries: 16, bytes: 1 << 20 })?;
                Ok::<_, crate::log::ReadError>(batch.entries.into_iter().find_map(|e| match e {
                    Entry::Record(r) => Some(r.arrival_ms),
                    _ => None,
                }))
            })
            .await
            .map_err(|e| ReplayError::Read(e.to_string()))?
            .map_err(|e| ReplayError::Read(e.to_string()))?;
            if let Some(t) = first {
                oldest = Some(oldest.map_or(t, |o| o.min(t)));
            }
        }
        Ok(oldest)
    }

    fn save(&self, job: ReplayJob) -> Result<(), ReplayError> {
        self.store.save(&job)?;
        let mut jobs = self.jobs.lock().expect("not poisoned");
        let progress = jobs.get(&job.id).and_then(|t| t.progress.clone());
        jobs.insert(job.id.clone(), Tracked { job, progress });
        Ok(())
    }

    fn job(&self, id: &str) -> Option<ReplayJob> {
        self.jobs.lock().expect("not poisoned").get(id).map(|t| t.job.clone())
    }

    fn track(&self, id: &str, progress: Arc<RangeProgress>) {
        if let Some(t) = self.jobs.lock().expect("not poisoned").get_mut(id) {
            t.progress = Some(progress);
        }
    }
}

fn status_of(tracked: &Tracked) -> ReplayStatus {
    let job = tracked.job.clone();
    match (&tracked.progress, job.state) {
        (Some(progress), ReplayState::Running) => {
            let s = progress.summary();
            ReplayStatus {
                records: s.records,
                bytes: s.bytes,
                shards_done: s.shards_done,
                shards_total: s.shards_total,
                progress: s.fraction,
                job,
            }
        }
        (_, state) => ReplayStatus {
            records: job.records,
            bytes: job.bytes,
            shards_done: if state == ReplayState::Done { job.shards } else { 0 },
            shards_total: job.shards,
            progress: if state == ReplayState::Done { 1.0 } else { 0.0 },
            job,
        },
    }
}
