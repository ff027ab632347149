//! The running delivery streams, by name: what the API looks streams up in, and what the
//! control plane adds streams to, replaces them in and removes them from while Hydrant serves.
//! A [`DeliveryStream`] is one running stream; its [`Definition`] is what changes.

mod error;
mod stream;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::config::DeliveryStreamConfig;
use crate::telemetry::StreamGauges;

pub use error::{NotFound, PutError};
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

/// Every stream, by name.
pub struct Registry {
    map: RwLock<BTreeMap<String, Arc<DeliveryStream>>>,
    account_id: String,
}

impl Registry {
    /// A registry without streams, for the account in their ARNs.
    pub(crate) fn new(account_id: &str) -> Self {
        Self { map: RwLock::new(BTreeMap::new()), account_id: account_id.to_string() }
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

    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// What `/metrics` shows of every stream, computed now: data freshness, backlog, log size
    /// and how long each shard has not moved.
    pub fn gauges(&self) -> Vec<StreamGauges> {
        let now = crate::clock::now_ms();
        self.all().iter().map(|stream| stream.gauges(now)).collect()
    }

    /// Why `name` cannot be looked up: it is not a stream here.
    pub fn not_found(&self, name: &str) -> NotFound {
        NotFound { stream: name.to_string(), account: self.account_id.clone(), known: self.names() }
    }
}
