//! The handle on one stream's running delivery workers: how to stop them, and their statuses.

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::watch;

use super::{StopMode, WorkerSignals, WorkerStatus};

/// A stream's running delivery workers and how to stop them.
pub struct Workers {
    pub(crate) signals: WorkerSignals,
    pub(crate) threads: Vec<JoinHandle<()>>,
    pub(crate) statuses: Vec<Arc<WorkerStatus>>,
    /// The source-record backup workers' statuses (one per shard, when there is a backup).
    pub(crate) backup_statuses: Vec<Arc<WorkerStatus>>,
}

impl Workers {
    /// Asks the workers to stop in `mode` and waits for them. Past `deadline`, or once `abort`
    /// says so, uploads in flight are abandoned (what was not delivered stays in the log).
    /// `true` when they finished without being abandoned.
    pub async fn stop(
        self,
        mode: StopMode,
        deadline: tokio::time::Instant,
        mut abort: watch::Receiver<bool>,
    ) -> bool {
        self.signals.request(mode);
        let mut in_time = true;
        while !self.threads.iter().all(JoinHandle::is_finished) {
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
        let threads = self.threads;
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
        self.signals.abandon();
        for t in self.threads {
            let _ = t.join();
        }
    }
}
