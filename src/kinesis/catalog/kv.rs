//! [`KvCatalog`]: the Kinesis streams of a cluster in the JetStream key-value bucket
//! `<namespace>-kinesis`, replicated like the other buckets (docs/cluster.md):
//! - `s.<name>`: a stream, as [`StoredStream`]. Creates are `create` (only if the key is
//!   absent), changes are `update` on the revision that was read, so of two nodes changing a
//!   stream at once exactly one wins; every node watches the keys and follows.
//! - `lead`: the node that decides on-demand reshards now, renewed on every look (5 s). A node
//!   that sees the record unchanged for [`LEAD_EXPIRY`], measured on its own clock, takes it
//!   over with a compare-and-set; no clocks are compared across nodes (as leases,
//!   docs/cluster.md "Leases").
//!
//! `<name>` is the stream's name as one key token (`=XX` for bytes other than
//! `[A-Za-z0-9_-]`).

use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{Catalog, CatalogChange, CatalogError, StoredStream};
use crate::log::jetstream::{
    follow_keys, is_already_created, is_wrong_last_revision, key_name, key_token, open_bucket, Nats,
};

/// Key prefix of the streams.
const STREAM_PREFIX: &str = "s.";
/// The key of the on-demand scaler's lead.
const LEAD_KEY: &str = "lead";
/// How long the lead record may stay unchanged before another node takes it (three looks).
pub const LEAD_EXPIRY: Duration = Duration::from_secs(15);

/// The Kinesis streams of a cluster, in a key-value bucket all its nodes share.
pub struct KvCatalog {
    bucket: kv::Store,
    name: String,
    /// This process in the lead record: its node id and a random incarnation.
    me: Lead,
    /// The lead record last seen held by another node: its revision and since when (this
    /// node's clock).
    seen: tokio::sync::Mutex<Option<(u64, Instant)>>,
}

impl std::fmt::Debug for KvCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvCatalog").field("bucket", &self.name).field("me", &self.me).finish()
    }
}

/// `lead`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Lead {
    node: String,
    incarnation: String,
}

impl KvCatalog {
    /// Opens (making it, the first time any node does) the bucket `<namespace>-kinesis`, as
    /// node `node`.
    pub async fn open(
        nats: &Nats,
        namespace: &str,
        replicas: usize,
        node: &str,
    ) -> Result<Self, CatalogError> {
        let name = format!("{namespace}-kinesis");
        let bucket =
            (open_bucket(nats.jetstream(), &name, replicas, 10).await).map_err(|reason| {
                CatalogError::Unavailable { at: format!("nats key-value bucket {name}"), reason }
            })?;
        let me =
            Lead { node: node.to_string(), incarnation: uuid::Uuid::new_v4().simple().to_string() };
        Ok(Self { bucket, name, me, seen: tokio::sync::Mutex::new(None) })
    }

    fn unavailable(&self, key: &str, what: &str, e: impl std::fmt::Display) -> CatalogError {
        CatalogError::Unavailable {
            at: format!("nats key-value {}/{key}", self.name),
            reason: format!("{what}: {e}"),
        }
    }

    /// The value of `key` and its revision as the bucket's leader has it (a direct get may
    /// answer from a replica that is behind: a compare-and-set on what it answered would fail,
    /// and a stream just created elsewhere would look absent).
    async fn last(&self, key: &str) -> Result<Option<(u64, Bytes)>, CatalogError> {
        use async_nats::jetstream::stream::LastRawMessageErrorKind;
        let subject = format!("{}{key}", self.bucket.prefix);
        let message = match self.bucket.stream.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => message,
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => return Ok(None),
            Err(e) => return Err(self.unavailable(key, "reading", e)),
        };
        let removed = (message.headers.get("KV-Operation"))
            .is_some_and(|op| op.as_str() == "DEL" || op.as_str() == "PURGE");
        Ok((!removed).then_some((message.sequence, message.payload)))
    }

    /// The stream stored under `key`, with the key's revision.
    async fn entry(&self, key: &str) -> Result<Option<(u64, StoredStream)>, CatalogError> {
        let Some((revision, value)) = self.last(key).await? else { return Ok(None) };
        let stored = serde_json::from_slice(&value).map_err(|e| CatalogError::Damaged {
            at: format!("nats key-value {}/{key}", self.name),
            reason: e.to_string(),
        })?;
        Ok(Some((revision, stored)))
    }

    /// One look at the lead record; whether this process holds it after.
    async fn try_lead(&self) -> Result<bool, String> {
        let mine = Bytes::from(serde_json::to_vec(&self.me).expect("plain fields serialize"));
        let held = self.last(LEAD_KEY).await.map_err(|e| e.to_string())?;
        let Some((revision, held)) = held else {
            return match self.bucket.create(LEAD_KEY, mine).await {
                Ok(_) => Ok(true),
                Err(e) if is_already_created(&e) => Ok(false),
                Err(e) => Err(e.to_string()),
            };
        };
        let holder: Option<Lead> = serde_json::from_slice(&held).ok();
        if holder.as_ref() != Some(&self.me) {
            let mut seen = self.seen.lock().await;
            match *seen {
                Some((seen, since)) if seen == revision => {
                    if since.elapsed() < LEAD_EXPIRY {
                        return Ok(false);
                    }
                }
                _ => {
                    *seen = Some((revision, Instant::now()));
                    return Ok(false);
                }
            }
        }
        match self.bucket.update(LEAD_KEY, mine, revision).await {
            Ok(_) => {
                if holder.as_ref() != Some(&self.me) {
                    tracing::info!(node = %self.me.node, previous = ?holder.map(|h| h.node),
                        "this node decides the Kinesis streams' on-demand reshards now");
                }
                Ok(true)
            }
            Err(e) if is_wrong_last_revision(&e) => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    }
}

fn stream_key(name: &str) -> String {
    format!("{STREAM_PREFIX}{}", key_token(name))
}

fn value(stream: &StoredStream) -> Bytes {
    Bytes::from(serde_json::to_vec(stream).expect("plain fields serialize"))
}

#[async_trait]
impl Catalog for KvCatalog {
    fn shared(&self) -> bool {
        true
    }

    fn log_name(&self, name: &str) -> Option<String> {
        Some(format!("kinesis:{name}@{}", uuid::Uuid::new_v4().simple()))
    }

    async fn load(&self) -> Result<Vec<StoredStream>, CatalogError> {
        let listing = |e: &dyn std::fmt::Display| self.unavailable(STREAM_PREFIX, "listing", e);
        let mut keys: Vec<String> = match self.bucket.keys().await {
            Ok(keys) => keys.try_collect().await.map_err(|e| listing(&e))?,
            Err(e) => return Err(listing(&e)),
        };
        keys.retain(|k| k.starts_with(STREAM_PREFIX));
        keys.sort();
        let mut all = Vec::with_capacity(keys.len());
        for key in keys {
            all.extend(self.entry(&key).await?.map(|(_, stream)| stream));
        }
        Ok(all)
    }

    async fn find(&self, name: &str) -> Result<Option<StoredStream>, CatalogError> {
        Ok(self.entry(&stream_key(name)).await?.map(|(_, stream)| stream))
    }

    async fn create(&self, stream: &StoredStream) -> Result<(), CatalogError> {
        let key = stream_key(&stream.name);
        match self.bucket.create(&key, value(stream)).await {
            Ok(_) => Ok(()),
            Err(e) if is_already_created(&e) => Err(CatalogError::InUse(stream.name.clone())),
            Err(e) => Err(self.unavailable(&key, "creating", e)),
        }
    }

    async fn replace(
        &self,
        current: &StoredStream,
        next: &StoredStream,
    ) -> Result<(), CatalogError> {
        let key = stream_key(&current.name);
        let conflict = || CatalogError::Conflict(current.name.clone());
        let revision = match self.entry(&key).await? {
            Some((revision, stored)) if stored == *current => revision,
            other => {
                tracing::debug!(stream = %current.name, stored = ?other, expected = ?current,
                    "the stored stream is not the one changed");
                return Err(conflict());
            }
        };
        match self.bucket.update(&key, value(next), revision).await {
            Ok(_) => Ok(()),
            Err(e) if is_wrong_last_revision(&e) => {
                tracing::debug!(stream = %current.name, revision, "changed meanwhile");
                Err(conflict())
            }
            Err(e) => Err(self.unavailable(&key, "updating", e)),
        }
    }

    async fn remove(&self, stream: &StoredStream) -> Result<(), CatalogError> {
        let key = stream_key(&stream.name);
        let revision = match self.entry(&key).await? {
            Some((revision, stored)) if stored == *stream => revision,
            _ => return Ok(()),
        };
        match self.bucket.purge_expect_revision(&key, Some(revision)).await {
            Ok(()) => Ok(()),
            // Changed meanwhile (another node removed it first): not this entry any more.
            Err(_) if self.entry(&key).await?.is_none_or(|(r, _)| r != revision) => Ok(()),
            Err(e) => Err(self.unavailable(&key, "removing", e)),
        }
    }

    /// Every change, from the streams stored now on (removed streams meanwhile are found by
    /// the upkeep's look at the whole catalog).
    fn watch(&self) -> Option<mpsc::UnboundedReceiver<CatalogChange>> {
        let (runtime, bucket) = (tokio::runtime::Handle::current(), self.bucket.clone());
        let filter = format!("{STREAM_PREFIX}>");
        Some(follow_keys(&runtime, bucket, filter, "the Kinesis streams' catalog", change_of))
    }

    async fn lead(&self) -> bool {
        match self.try_lead().await {
            Ok(lead) => lead,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look at the on-demand scaler's lead record");
                false
            }
        }
    }
}

/// What a watched entry says; `None` (logged) for a value that is not a stream.
fn change_of(entry: &kv::Entry) -> Option<CatalogChange> {
    let token = entry.key.strip_prefix(STREAM_PREFIX)?;
    match entry.operation {
        kv::Operation::Put => match serde_json::from_slice::<StoredStream>(&entry.value) {
            Ok(stored) => Some(CatalogChange::Stored(stored)),
            Err(e) => {
                tracing::error!(key = %entry.key, error = %e,
                    "a Kinesis stream in the shared catalog is damaged; it is ignored");
                None
            }
        },
        kv::Operation::Delete | kv::Operation::Purge => {
            Some(CatalogChange::Removed(key_name(token)?))
        }
    }
}
