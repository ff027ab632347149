//! Start-up: opening every stream of the config file and of `api-streams/`.

use std::sync::Arc;

use super::persist;
use crate::config::{Config, FsyncSetting};
use crate::log::{DiskBudget, FsyncPolicy, LogOptions};
use crate::pipeline::{open_stream, Opening, StartError};
use crate::registry::{Owner, Registry};
use crate::telemetry::Metrics;

impl Registry {
    /// Opens every stream of the config file and every stream created through the API (kept
    /// in `<data_dir>/api-streams/`), and starts their delivery workers. Blocking.
    pub fn open(
        config: &Config,
        budget: &Arc<DiskBudget>,
        metrics: &Metrics,
    ) -> Result<Self, StartError> {
        let options = LogOptions {
            fsync: match config.storage.fsync {
                FsyncSetting::Always => FsyncPolicy::Always,
                FsyncSetting::Interval { interval_ms } => {
                    FsyncPolicy::Interval(std::time::Duration::from_millis(interval_ms))
                }
            },
            segment_bytes: config.storage.segment_bytes,
            ..LogOptions::default()
        };
        let created_at = crate::clock::now_ms() as f64 / 1000.0;
        let streams = Self::new(config, options, budget, metrics);
        for stream_config in &config.delivery_streams {
            let name = &stream_config.delivery_stream_name;
            let version = persist::stream_dir_migrated(&config.data_dir, name)
                .and_then(|dir| persist::file_stream_version(&dir, stream_config))
                .map_err(|source| StartError::Version { stream: name.clone(), source })?;
            let opening = Opening {
                config,
                stream: stream_config,
                owner: Owner::ConfigFile,
                version,
                created_at,
                last_update: None,
            };
            let stream = open_stream(opening, &streams.options, budget, metrics)?;
            streams.insert(Arc::new(stream));
        }
        streams.open_api_streams()?;
        // After every stream found its directory (see `persist::path_name`).
        persist::clean_trash(&config.data_dir);
        Ok(streams)
    }
}
