//! How a stream's delivery workers are asked to stop.

use futures::future::BoxFuture;
use tokio::runtime::Handle;
use tokio::sync::watch;

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
    pub(super) mode: watch::Receiver<StopMode>,
    pub(super) abandon: watch::Receiver<bool>,
}

impl StopReceiver {
    /// The same signals, with *abandon* also set once `lost` resolves (the worker's lease was
    /// lost: another owner goes on, so this worker gives up what it is doing).
    pub(super) fn or_lost(self, lost: BoxFuture<'static, ()>, runtime: &Handle) -> Self {
        let (abandon, receiver) = watch::channel(*self.abandon.borrow());
        let mut stream_abandon = self.abandon.clone();
        runtime.spawn(async move {
            tokio::select! {
                _ = stream_abandon.wait_for(|a| *a) => {}
                _ = lost => {}
                // Every receiver is gone: the worker ended.
                _ = abandon.closed() => return,
            }
            abandon.send_replace(true);
        });
        Self { mode: self.mode, abandon: receiver }
    }
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
