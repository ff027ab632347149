//! [`KvDefinitions`]: the stream definitions of a cluster, in a JetStream key-value bucket that
//! every node shares (`core.type: jetstream`, docs/cluster.md "The shared control plane").
//!
//! Bucket `<namespace>-control` (replicated like the logs, history 10 for audit):
//! - `s.<name>`: a stream of the API, as [`StoredStream`] (the shape of `api-streams/` files).
//!   Writes are compare-and-set on the key's revision, so of two nodes changing one stream at
//!   once exactly one wins ([`Expect`]); every node watches the keys and follows the changes
//!   (`follow.rs`).
//! - `f.<name>`: the version of a config-file stream with the fingerprint of the definition it
//!   belongs to, and the one before, so that every node with the same file names objects with
//!   the same version. A node whose file is newer leads the change (the version goes up once,
//!   whichever node is first); a node whose file is the one before keeps the old version and
//!   says it is behind a rolling change.
//!
//! `<name>` is the stream's name as one key token (`=XX` for bytes other than
//! `[A-Za-z0-9_-]`). The values hold what `api-streams/` files hold, secrets included: the NATS
//! account is as private as the data directory.

use std::io;
use std::path::PathBuf;

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures::{Future, TryStreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::persist::{fingerprint, StoredStream};
use super::store::{DefinitionStore, Expect, SharedChange, StoreError, WriteError};
use crate::config::DeliveryStreamConfig;
use crate::log::jetstream::{
    follow_keys, is_already_created, is_wrong_last_revision, key_name, key_token, open_bucket, Nats,
};

/// Key prefix of the streams of the API.
const API_PREFIX: &str = "s.";
/// Key prefix of the config-file streams' versions.
const FILE_PREFIX: &str = "f.";
/// How many times a version of a config-file stream is re-read after losing a race.
const RACES: usize = 10;

/// Why the shared bucket cannot be used at start.
#[derive(Debug, thiserror::Error)]
#[error(
    "core: cannot open the NATS key-value bucket {bucket} of the shared control plane: {reason}"
)]
pub struct SharedStoreError {
    bucket: String,
    reason: String,
}

/// The stream definitions of a cluster, in a key-value bucket all its nodes share.
pub struct KvDefinitions {
    bucket: kv::Store,
    name: String,
    runtime: tokio::runtime::Handle,
}

/// `f.<name>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FileVersion {
    version: u64,
    fingerprint: String,
    /// The definition of `version - 1`, so a node still on it is known to be behind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous: Option<String>,
    /// The definition itself, so that a node whose file differs can name the members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    definition: Option<serde_json::Value>,
}

impl FileVersion {
    fn new(version: u64, config: &DeliveryStreamConfig, previous: Option<String>) -> Self {
        Self {
            version,
            fingerprint: fingerprint(config),
            previous,
            definition: serde_json::to_value(config).ok(),
        }
    }

    /// The members where `config` differs from this version's definition, for the operator
    /// (`ExtendedS3DestinationConfiguration.Prefix, hydrant.shards`).
    fn differing(&self, config: &DeliveryStreamConfig) -> String {
        let (Some(stored), Ok(mine)) = (&self.definition, serde_json::to_value(config)) else {
            return "unknown (stored by an older version)".into();
        };
        let mut paths = Vec::new();
        differing_paths(stored, &mine, "", &mut paths);
        if paths.len() > MAX_PATHS {
            let more = paths.len() - MAX_PATHS;
            paths.truncate(MAX_PATHS);
            paths.push(format!("and {more} more"));
        }
        paths.join(", ")
    }
}

/// Most members a conflict names.
const MAX_PATHS: usize = 8;

/// The paths (`a.b[2].c`) under `at` where `a` and `b` differ, appended to `out`.
fn differing_paths(a: &serde_json::Value, b: &serde_json::Value, at: &str, out: &mut Vec<String>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                let (p, q) =
                    (x.get(key).unwrap_or(&Value::Null), y.get(key).unwrap_or(&Value::Null));
                let path = if at.is_empty() { key.clone() } else { format!("{at}.{key}") };
                differing_paths(p, q, &path, out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                differing_paths(p, q, &format!("{at}[{i}]"), out);
            }
        }
        (x, y) if x != y => {
            out.push(if at.is_empty() { "(the whole definition)".into() } else { at.to_string() })
        }
        _ => {}
    }
}

impl KvDefinitions {
    /// Opens (making it, the first time any node does) the bucket `<namespace>-control`.
    pub async fn open(
        nats: &Nats,
        namespace: &str,
        replicas: usize,
    ) -> Result<Self, SharedStoreError> {
        let name = format!("{namespace}-control");
        let bucket = (open_bucket(nats.jetstream(), &name, replicas, 10).await)
            .map_err(|reason| SharedStoreError { bucket: name.clone(), reason })?;
        Ok(Self { bucket, name, runtime: tokio::runtime::Handle::current() })
    }

    /// Runs `work` to its end from blocking code (the trait is blocking, as file I/O is).
    fn wait<T>(&self, work: impl Future<Output = T>) -> T {
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            // On a runtime worker (the start-up): hand its other tasks to another thread.
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                tokio::task::block_in_place(|| self.runtime.block_on(work))
            }
            _ => self.runtime.block_on(work),
        }
    }

    /// Where `key` is kept, for messages.
    fn label(&self, key: &str) -> PathBuf {
        PathBuf::from(format!("nats key-value {}/{key}", self.name))
    }

    fn io(&self, key: &str, what: &str, e: impl std::fmt::Display) -> io::Error {
        io::Error::other(format!("{}: {what}: {e}", self.label(key).display()))
    }

    /// The stream of the API stored under `key`, with the key's revision.
    async fn stored(&self, key: &str) -> Result<Option<(u64, StoredStream)>, StoreError> {
        let entry = self.bucket.entry(key).await.map_err(|e| StoreError::Io {
            path: self.label(key),
            source: io::Error::other(e.to_string()),
        })?;
        match entry {
            Some(entry) if entry.operation == kv::Operation::Put => {
                let stored = serde_json::from_slice(&entry.value)
                    .map_err(|source| StoreError::Parse { path: self.label(key), source })?;
                Ok(Some((entry.revision, stored)))
            }
            _ => Ok(None),
        }
    }

    async fn file_version(&self, key: &str) -> io::Result<Option<(u64, FileVersion)>> {
        let entry = self.bucket.entry(key).await.map_err(|e| self.io(key, "reading", e))?;
        match entry {
            Some(entry) if entry.operation == kv::Operation::Put => {
                let value = serde_json::from_slice(&entry.value)
                    .map_err(|e| self.io(key, "not a stream version", e))?;
                Ok(Some((entry.revision, value)))
            }
            _ => Ok(None),
        }
    }

    async fn write_async(&self, stored: &StoredStream, expect: Expect) -> Result<(), WriteError> {
        let key = api_key(&stored.config.delivery_stream_name);
        let value = Bytes::from(serde_json::to_vec(stored).map_err(io::Error::other)?);
        let current = |found: Option<(u64, StoredStream)>| found.map(|(_, s)| s.version);
        match expect {
            Expect::Any => {
                self.bucket.put(&key, value).await.map_err(|e| self.io(&key, "writing", e))?;
            }
            Expect::Absent => match self.bucket.create(&key, value).await {
                Ok(_) => {}
                Err(e) if is_already_created(&e) => {
                    let found = self.stored(&key).await.map_err(to_io)?;
                    return Err(WriteError::Conflict { current: current(found) });
                }
                Err(e) => return Err(self.io(&key, "creating", e).into()),
            },
            Expect::Version(version) => {
                let found = self.stored(&key).await.map_err(to_io)?;
                let revision = match &found {
                    Some((revision, s)) if s.version == version && !s.deleting => *revision,
                    _ => return Err(WriteError::Conflict { current: current(found) }),
                };
                match self.bucket.update(&key, value, revision).await {
                    Ok(_) => {}
                    Err(e) if is_wrong_last_revision(&e) => {
                        let found = self.stored(&key).await.map_err(to_io)?;
                        return Err(WriteError::Conflict { current: current(found) });
                    }
                    Err(e) => return Err(self.io(&key, "updating", e).into()),
                }
            }
        }
        Ok(())
    }

    async fn file_stream_version_async(&self, config: &DeliveryStreamConfig) -> io::Result<u64> {
        let name = &config.delivery_stream_name;
        let key = file_key(name);
        let print = fingerprint(config);
        for _ in 0..RACES {
            let (revision, next) = match self.file_version(&key).await? {
                None => (None, FileVersion::new(1, config, None)),
                Some((_, found)) if found.fingerprint == print => return Ok(found.version),
                Some((_, found)) if found.previous.as_ref() == Some(&print) => {
                    tracing::warn!(stream = %name, cluster_version = found.version,
                        "this node's config file has the definition the cluster had before; \
                         it is behind a rolling change: reload it with the new file");
                    return Ok(found.version.saturating_sub(1).max(1));
                }
                Some((revision, found)) => {
                    let differs = found.differing(config);
                    tracing::warn!(stream = %name, version = found.version + 1, differs = %differs,
                        "this node's config file defines the stream differently from the cluster: \
                         it changes the stream for the whole cluster (objects get the next \
                         version); give every node the same file");
                    let next = FileVersion::new(found.version + 1, config, Some(found.fingerprint));
                    (Some(revision), next)
                }
            };
            let value = Bytes::from(serde_json::to_vec(&next).map_err(io::Error::other)?);
            let stored = match revision {
                None => self
                    .bucket
                    .create(&key, value)
                    .await
                    .map(|_| ())
                    .map_err(|e| (is_already_created(&e), e.to_string())),
                Some(revision) => self
                    .bucket
                    .update(&key, value, revision)
                    .await
                    .map(|_| ())
                    .map_err(|e| (is_wrong_last_revision(&e), e.to_string())),
            };
            match stored {
                Ok(()) => return Ok(next.version),
                // Another node stored a version first: read it again.
                Err((true, _)) => continue,
                Err((false, e)) => return Err(self.io(&key, "writing", e)),
            }
        }
        Err(self.io(&key, "writing", "other nodes kept changing the version"))
    }
}

fn to_io(e: StoreError) -> WriteError {
    WriteError::Io(io::Error::other(e.to_string()))
}

fn api_key(name: &str) -> String {
    format!("{API_PREFIX}{}", key_token(name))
}

fn file_key(name: &str) -> String {
    format!("{FILE_PREFIX}{}", key_token(name))
}

impl DefinitionStore for KvDefinitions {
    fn read_all(&self) -> Result<Vec<(PathBuf, StoredStream)>, StoreError> {
        self.wait(async {
            let listing = |e: &dyn std::fmt::Display| StoreError::Io {
                path: self.label(API_PREFIX),
                source: io::Error::other(format!("listing: {e}")),
            };
            let mut keys: Vec<String> = match self.bucket.keys().await {
                Ok(keys) => keys.try_collect().await.map_err(|e| listing(&e))?,
                Err(e) => return Err(listing(&e)),
            };
            keys.retain(|k| k.starts_with(API_PREFIX));
            keys.sort();
            let mut all = Vec::with_capacity(keys.len());
            for key in keys {
                if let Some((_, stored)) = self.stored(&key).await? {
                    all.push((self.label(&key), stored));
                }
            }
            all.sort_by(|a, b| {
                a.1.config.delivery_stream_name.cmp(&b.1.config.delivery_stream_name)
            });
            Ok(all)
        })
    }

    fn write(&self, stored: &StoredStream, expect: Expect) -> Result<(), WriteError> {
        self.wait(self.write_async(stored, expect))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let key = api_key(name);
        self.wait(self.bucket.purge(&key)).map_err(|e| self.io(&key, "removing", e))
    }

    fn file_stream_version(&self, config: &DeliveryStreamConfig) -> io::Result<u64> {
        self.wait(self.file_stream_version_async(config))
    }

    fn store_file_stream_version(
        &self,
        name: &str,
        version: u64,
        config: &DeliveryStreamConfig,
    ) -> io::Result<()> {
        let key = file_key(name);
        self.wait(async {
            let previous = self.file_version(&key).await?.map(|(_, found)| found.fingerprint);
            let previous = previous.filter(|p| *p != fingerprint(config));
            let value = FileVersion::new(version, config, previous);
            let value = Bytes::from(serde_json::to_vec(&value).map_err(io::Error::other)?);
            self.bucket.put(&key, value).await.map_err(|e| self.io(&key, "writing", e))?;
            Ok(())
        })
    }

    fn watch(&self) -> Option<mpsc::UnboundedReceiver<SharedChange>> {
        let filter = format!("{API_PREFIX}>");
        let what = "the shared stream definitions";
        Some(follow_keys(&self.runtime, self.bucket.clone(), filter, what, change_of))
    }
}

/// What a watched entry says; `None` (logged) for a value that is not a stream.
fn change_of(entry: &kv::Entry) -> Option<SharedChange> {
    let token = entry.key.strip_prefix(API_PREFIX)?;
    match entry.operation {
        kv::Operation::Put => match serde_json::from_slice::<StoredStream>(&entry.value) {
            Ok(stored) => Some(SharedChange::Stored(Box::new(stored))),
            Err(e) => {
                tracing::error!(key = %entry.key, error = %e,
                    "a shared stream definition is damaged; it is ignored");
                None
            }
        },
        kv::Operation::Delete | kv::Operation::Purge => {
            Some(SharedChange::Removed(key_name(token)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_conflict_names_the_members_that_differ() {
        let a = json!({"DeliveryStreamName": "s", "S3": {"Prefix": "a/", "Hints": [1, 2]}, "hydrant": {"shards": 2}});
        let b = json!({"DeliveryStreamName": "s", "S3": {"Prefix": "b/", "Hints": [1, 3]}, "hydrant": {"shards": 2, "x": 1}});
        let mut out = Vec::new();
        differing_paths(&a, &b, "", &mut out);
        assert_eq!(out, ["S3.Hints[1]", "S3.Prefix", "hydrant.x"]);
        let mut out = Vec::new();
        differing_paths(&json!([1]), &json!([1, 2]), "", &mut out);
        assert_eq!(out, ["(the whole definition)"]);
    }
}
