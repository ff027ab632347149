//! The running delivery streams, by name: what the API looks streams up in, and what the
//! control plane adds streams to, replaces them in and removes them from while Hydrant serves.
//! A [`DeliveryStream`] is one running stream; its [`Definition`] is what changes.

mod stream;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::watch;

use crate::api::{ApiError, ErrorType};
use crate::config::{Config, DeliveryStreamConfig};
use crate::log::LogStore;
use crate::telemetry::Metrics;

pub use stream::DeliveryStream;

/// Who owns a stream's definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// `delivery_streams` of the YAML file: changed by editing the file (SIGHUP or restart).
    ConfigFile,
    /// Created with CreateDeliveryStream; kept in `<data_dir>/api-streams/<name>.json`.
    Api,
}

/// The parts of a stream that UpdateDestination, tagging and reloads change.
#[derive(Debug, Clone)]
pub struct Definition {
    pub config: Arc<DeliveryStreamConfig>,
    /// `VersionId`: 1 at creation, +1 on every change of the destination. Part of object names.
    pub version: u64,
    /// `LastUpdateTimestamp` (seconds), once the stream was changed.
    pub last_update: Option<f64>,
    /// The destination's name in metrics (`hydrant_delivery_to_<metric>_*`), from its
    /// descriptor: the registry knows no destination.
    pub metric: &'static str,
}

/// Every stream, by name, and what opening more of them needs.
pub struct Registry {
    map: RwLock<BTreeMap<String, Arc<DeliveryStream>>>,
    /// The server settings streams are opened with (object stores, functions, ...) and the
    /// config file's streams, as last applied.
    config: RwLock<Arc<Config>>,
    /// Where the streams' logs are.
    pub(crate) store: Arc<dyn LogStore>,
    pub(crate) metrics: Metrics,
    account_id: String,
    /// Serialises changes: create, delete, update, tags, reload and shutdown.
    pub(crate) control: tokio::sync::Mutex<()>,
    /// Fired at the shutdown deadline: every stop in progress abandons its uploads.
    pub(crate) abort: watch::Sender<bool>,
    /// Deletions and removals draining in the background.
    pub(crate) tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Registry {
    /// A registry without streams, for the server settings of `config`; streams' logs are
    /// opened in `store`.
    pub(crate) fn new(config: &Config, store: Arc<dyn LogStore>, metrics: &Metrics) -> Self {
        Self {
            map: RwLock::new(BTreeMap::new()),
            config: RwLock::new(Arc::new(config.clone())),
            store,
            metrics: metrics.clone(),
            account_id: config.account_id.clone(),
            control: tokio::sync::Mutex::new(()),
            abort: watch::channel(false).0,
            tasks: Mutex::new(Vec::new()),
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<DeliveryStream>> {
        self.map.read().expect("not poisoned").get(name).cloned()
    }

    /// Stream names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.map.read().expect("not poisoned").keys().cloned().collect()
    }

    /// Every stream, sorted by name.
    pub fn all(&self) -> Vec<Arc<DeliveryStream>> {
        self.map.read().expect("not poisoned").values().cloned().collect()
    }

    pub(crate) fn insert(&self, stream: Arc<DeliveryStream>) {
        self.map.write().expect("not poisoned").insert(stream.name.clone(), stream);
    }

    pub(crate) fn remove(&self, name: &str) -> Option<Arc<DeliveryStream>> {
        self.map.write().expect("not poisoned").remove(name)
    }

    /// The server settings and config-file streams as last applied.
    pub fn config(&self) -> Arc<Config> {
        self.config.read().expect("not poisoned").clone()
    }

    pub(crate) fn set_config(&self, config: Config) {
        *self.config.write().expect("not poisoned") = Arc::new(config);
    }

    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// Firehose's answer for an unknown stream.
    pub fn not_found(&self, name: &str) -> ApiError {
        let names = self.names();
        ApiError::new(
            ErrorType::ResourceNotFound,
            format!(
                "Firehose {name} under account {} not found. Known delivery streams: {}",
                self.account_id,
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            ),
        )
    }
}
