//! [`LogStore`] on the data directory: one directory per stream under `streams/` ([`layout`]),
//! shared limits (fsync policy, segment size, the disk budget) for all of them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

use super::budget::DiskBudget;
use super::stream_log::EmbeddedLog;
use super::{layout, topology, LogOptions};
use crate::log::{Cause, LogStore, OpenError, StoreError, StreamLog, StreamSpec};

/// Every stream's log under one data directory.
#[derive(Debug)]
pub struct EmbeddedStore {
    data_dir: PathBuf,
    options: LogOptions,
    budget: Arc<DiskBudget>,
}

impl EmbeddedStore {
    /// Logs under `data_dir/streams/`, written with `options`, within `budget`.
    pub fn new(data_dir: &Path, options: LogOptions, budget: Arc<DiskBudget>) -> Self {
        Self { data_dir: data_dir.to_path_buf(), options, budget }
    }

    /// Removes the logs of deleted streams that an interrupted delete left. Call it once every
    /// stream that exists was opened: a stream whose name starts with `.` may still be in the
    /// place an earlier version kept it, which looks like a deleted log until it is moved
    /// (see [`layout`]).
    pub fn remove_trash(&self) {
        layout::clean_trash(&self.data_dir);
    }

    /// Opens (recovering) the log of `stream`. Blocking.
    pub fn open_blocking(&self, stream: &str, spec: &StreamSpec) -> Result<EmbeddedLog, OpenError> {
        let unavailable = |e: std::io::Error| OpenError::Unavailable(Cause::new(e));
        let dir = layout::stream_dir_migrated(&self.data_dir, stream).map_err(unavailable)?;
        let existed = dir.exists();
        let opened = (|| {
            // A log that resharded has the shards its reshards left; others keep their count.
            let lineage = topology::load(&dir, |_| 0).ok().flatten();
            let on_disk = match &lineage {
                Some(lineage) if lineage.resharded() => spec.shards,
                Some(lineage) => lineage.shards().len() as u32,
                None => layout::shards_on_disk(&dir),
            };
            if on_disk != 0 && on_disk != spec.shards {
                return Err(OpenError::ShardCount { existing: on_disk, configured: spec.shards });
            }
            EmbeddedLog::open_encrypted(
                &dir,
                spec.shards,
                &self.options,
                &self.budget,
                spec.at_rest.ring.as_deref(),
                spec.at_rest.encrypt,
            )
        })();
        if opened.is_err() && !existed {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e,
                    "cannot remove the log directory of a stream that failed to open");
            }
        }
        opened
    }
}

#[async_trait]
impl LogStore for EmbeddedStore {
    async fn open(&self, stream: &str, spec: StreamSpec) -> Result<Arc<dyn StreamLog>, OpenError> {
        let this = Self::new(&self.data_dir, self.options.clone(), self.budget.clone());
        let stream = stream.to_string();
        let log = tokio::task::spawn_blocking(move || this.open_blocking(&stream, &spec))
            .await
            .map_err(|e| OpenError::Unavailable(Cause::new(e)))??;
        Ok(Arc::new(log))
    }

    /// Renames the stream's directory aside (durably), then removes it.
    async fn delete(&self, stream: &str) -> Result<(), StoreError> {
        let (data_dir, stream) = (self.data_dir.clone(), stream.to_string());
        let unavailable = |e: std::io::Error| StoreError::Unavailable(Cause::new(e));
        tokio::task::spawn_blocking(move || {
            let Some(trash) = layout::trash_log(&data_dir, &stream).map_err(unavailable)? else {
                return Ok(());
            };
            if let Err(e) = std::fs::remove_dir_all(&trash) {
                // The name is free already; the next start removes what is left.
                tracing::warn!(path = %trash.display(), error = %e,
                    "cannot remove the log of a deleted stream; it is removed at the next start");
            }
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Unavailable(Cause::new(e)))?
    }
}
