//! Where the list of Kinesis streams and their settings is kept: a [`Catalog`]. One server
//! keeps it in a file of its data directory ([`FileCatalog`]); the nodes of a cluster share
//! one in a JetStream key-value bucket ([`KvCatalog`]), follow each other's changes through
//! [`Catalog::watch`], and take turns deciding what only one node should decide
//! ([`Catalog::lead`]).
//!
//! Every write is a compare-and-set: a stream is created only if its name is free
//! ([`CatalogError::InUse`] otherwise) and replaced only if it is still what the writer read
//! ([`CatalogError::Conflict`] otherwise), so of two servers changing one stream at once
//! exactly one wins.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::streams::StreamMode;

mod file;
mod kv;

pub use file::FileCatalog;
pub use kv::KvCatalog;

/// One stream as a catalog keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredStream {
    pub name: String,
    /// Shards it was created with (its log keeps the shards its reshards left).
    pub shards: u32,
    pub created_ms: i64,
    pub retention_hours: u32,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub mode: StreamMode,
    /// The key its records are encrypted at rest with, when encryption is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<String>,
    /// The name of its log in the `LogStore`, when it is not `kinesis:<name>` (a cluster
    /// gives each stream's log a name of its own: [`Catalog::log_name`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// Set first when the stream is deleted: its log goes next, then this entry.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleting: bool,
}

impl StoredStream {
    /// The name of its log.
    pub fn log_name(&self) -> String {
        self.log.clone().unwrap_or_else(|| format!("kinesis:{}", self.name))
    }

    /// Whether `other` is the same stream (not one created again under its name).
    pub fn same_stream(&self, other: &StoredStream) -> bool {
        self.name == other.name && self.created_ms == other.created_ms && self.log == other.log
    }
}

/// A change another server made, as [`Catalog::watch`] tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogChange {
    /// A stream was created or changed (or marked `deleting`).
    Stored(StoredStream),
    /// A stream's entry is gone.
    Removed(String),
}

/// Why a catalog did not store or read.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A stream of this name is stored already.
    #[error("stream {0} already exists")]
    InUse(String),
    /// The stream is no longer what the writer read: another server changed it first.
    #[error("stream {0} was changed meanwhile")]
    Conflict(String),
    /// The file or bucket cannot be read or written; `at` names it.
    #[error("cannot use {at}: {reason}")]
    Unavailable { at: String, reason: String },
    /// What is stored is not a list of streams.
    #[error("{at} is damaged: {reason}")]
    Damaged { at: String, reason: String },
}

/// The list of Kinesis streams, with their settings.
#[async_trait]
pub trait Catalog: Send + Sync + fmt::Debug + 'static {
    /// Whether other servers use it too (a cluster): they change streams and
    /// [`watch`](Self::watch) tells this one.
    fn shared(&self) -> bool;

    /// The log name for a new stream `name`. A shared catalog gives every stream a log of
    /// its own, so that a node that deletes the log of a deleted stream never deletes the log
    /// of one created again under its name.
    fn log_name(&self, name: &str) -> Option<String>;

    /// Every stream stored now, `deleting` ones included.
    async fn load(&self) -> Result<Vec<StoredStream>, CatalogError>;

    /// The stream `name` as stored now (read from the store, not from what was watched).
    async fn find(&self, name: &str) -> Result<Option<StoredStream>, CatalogError>;

    /// Stores a new stream; [`CatalogError::InUse`] if its name is taken.
    async fn create(&self, stream: &StoredStream) -> Result<(), CatalogError>;

    /// Replaces `current` by `next` (the same name); [`CatalogError::Conflict`] unless what is
    /// stored is still `current`.
    async fn replace(
        &self,
        current: &StoredStream,
        next: &StoredStream,
    ) -> Result<(), CatalogError>;

    /// Removes the stream if what is stored is still `stream` (otherwise does nothing).
    async fn remove(&self, stream: &StoredStream) -> Result<(), CatalogError>;

    /// The changes from now on, starting with every stream stored now; `None` for a catalog
    /// no other server changes. A broken watch starts again (with every stream stored then).
    fn watch(&self) -> Option<mpsc::UnboundedReceiver<CatalogChange>>;

    /// Whether this server decides the streams' on-demand reshards now: always for a
    /// catalog of one server; in a cluster, one node at a time (see [`KvCatalog`]). Called
    /// on every look, which keeps the lead.
    async fn lead(&self) -> bool;
}
