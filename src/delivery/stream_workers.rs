//! The handle on one stream's running delivery workers: one per shard lease its consumers hold,
//! started as the log grants them, and how to stop them all.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::watch;

use super::{ShardWorker, StopMode, StopReceiver, WorkerSignals, WorkerStatus};
use crate::log::{Assignments, ShardId, ShardLease};

/// Makes the worker of a granted lease, with its status and stop signals.
pub type WorkerFactory =
    Arc<dyn Fn(Arc<dyn ShardLease>, Arc<WorkerStatus>, StopReceiver) -> ShardWorker + Send + Sync>;

/// A stream's running delivery workers and how to stop them.
pub struct Workers {
    signals: Arc<WorkerSignals>,
    running: Arc<Mutex<Running>>,
    /// Tasks that start workers for leases granted after the start.
    followers: Vec<tokio::task::JoinHandle<()>>,
}

#[derive(Default)]
struct Running {
    threads: Vec<JoinHandle<()>>,
    /// Per consumer and shard, the status of its latest worker.
    statuses: BTreeMap<(Arc<str>, ShardId), Arc<WorkerStatus>>,
    /// Set once the workers are asked to stop: no more are started.
    stopping: bool,
}

impl Default for Workers {
    fn default() -> Self {
        Self::new()
    }
}

impl Workers {
    /// No workers yet.
    pub fn new() -> Self {
        Self {
            signals: Arc::new(WorkerSignals::new()),
            running: Arc::default(),
            followers: Vec::new(),
        }
    }

    /// Starts a worker for every lease `consumer` was granted already, so that a failure to
    /// start shows now, then follows `assignments`: each lease granted later starts its
    /// worker as it comes.
    pub fn consume(
        &mut self,
        consumer: impl Into<Arc<str>>,
        mut assignments: Assignments,
        factory: WorkerFactory,
    ) -> std::io::Result<()> {
        let consumer: Arc<str> = consumer.into();
        while let Some(lease) = assignments.try_next() {
            start(&self.running, &self.signals, &consumer, lease, &factory)?;
        }
        let (running, signals) = (self.running.clone(), self.signals.clone());
        self.followers.push(tokio::spawn(async move {
            while let Some(lease) = assignments.next().await {
                let shard = lease.shard();
                if let Err(e) = start(&running, &signals, &consumer, lease, &factory) {
                    tracing::error!(consumer = %consumer, shard = shard.0, error = %e,
                        "cannot start the delivery worker of a granted shard");
                }
            }
        }));
        Ok(())
    }

    /// The status of each shard's worker of `consumer`, by shard.
    pub fn statuses(&self, consumer: &str) -> Vec<(ShardId, Arc<WorkerStatus>)> {
        let running = self.running.lock().expect("not poisoned");
        (running.statuses.iter())
            .filter(|((c, _), _)| &**c == consumer)
            .map(|((_, shard), status)| (*shard, status.clone()))
            .collect()
    }

    /// Asks the workers to stop in `mode` and waits for them. Past `deadline`, or once `abort`
    /// says so, uploads in flight are abandoned (what was not delivered stays in the log).
    /// `true` when they finished without being abandoned.
    pub async fn stop(
        self,
        mode: StopMode,
        deadline: tokio::time::Instant,
        mut abort: watch::Receiver<bool>,
    ) -> bool {
        let threads = self.halt();
        self.signals.request(mode);
        let mut in_time = true;
        while !threads.iter().all(JoinHandle::is_finished) {
            if tokio::time::Instant::now() >= deadline || *abort.borrow() {
                self.signals.abandon();
                in_time = false;
                break;
            }
            let tick = tokio::time::sleep(std::time::Duration::from_millis(20));
            tokio::select! {
                _ = tick => {}
                _ = abort.changed() => {}
            }
        }
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
        in_time
    }

    /// Stops the workers at once, without waiting (a stream that failed to register).
    pub(crate) fn abandon(self) {
        let threads = self.halt();
        self.signals.abandon();
        for t in threads {
            let _ = t.join();
        }
    }

    /// Starts no more workers; the threads of the ones running.
    fn halt(&self) -> Vec<JoinHandle<()>> {
        for follower in &self.followers {
            follower.abort();
        }
        let mut running = self.running.lock().expect("not poisoned");
        running.stopping = true;
        std::mem::take(&mut running.threads)
    }
}

/// Starts the worker of `lease`, unless the workers are stopping.
fn start(
    running: &Mutex<Running>,
    signals: &WorkerSignals,
    consumer: &Arc<str>,
    lease: Arc<dyn ShardLease>,
    factory: &WorkerFactory,
) -> std::io::Result<()> {
    let mut running = running.lock().expect("not poisoned");
    if running.stopping {
        return Ok(());
    }
    let shard = lease.shard();
    let status = Arc::new(WorkerStatus::new());
    let worker = factory(lease, status.clone(), signals.receiver());
    running.threads.extend(worker.spawn()?);
    running.statuses.insert((consumer.clone(), shard), status);
    Ok(())
}
