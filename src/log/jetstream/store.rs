//! [`JetStreamStore`]: streams' logs on a NATS JetStream cluster (§1.1 of the design).
//!
//! The registry (bucket `<namespace>-logs`, key `log.<stream>`) maps a stream's name to its
//! log: a random id, a shard count and, once it split or merged, its lineage
//! (`topology.rs`). Each shard is the JetStream stream
//! `HYD_<log id>_<shard>` on subject `hyd.<log id>.<shard>`; progress records live in
//! `<namespace>-leases` and data keys of encryption at rest in `<namespace>-keys`. Every node
//! opens every log through the registry: the first to open a name creates it (key-value
//! `create`; a loser of the race reads the winner's id).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use tokio::sync::OnceCell;

use super::at_rest::AtRest;
use super::bucket::open_bucket;
use super::connect::Nats;
use super::errors::{cause, is_already_created, is_wrong_last_revision};
use super::names::{key_token, random_id, stream_name};
use super::node::{LeaseTiming, Node};
use super::stream_log::{JetStreamLog, LogShared};
use super::topology::{LogEntry, Registry};
use crate::log::{
    Cause, EncryptionError, LogStore, OpenError, ShardId, StoreError, StreamLog, StreamSpec,
};

/// How the store lays out its logs.
#[derive(Debug, Clone)]
pub struct JetStreamOptions {
    /// Prefix of the key-value buckets, so that several Hydrant clusters (or test runs) can
    /// share one NATS account. Default `hydrant`.
    pub namespace: String,
    /// Replicas of every shard stream and bucket (`core.replicas`).
    pub replicas: usize,
    /// How long the servers remember a message id (`core.duplicate_window_seconds`).
    pub duplicate_window: Duration,
    /// `max_bytes` of each shard stream: appends past it are refused (`AppendError::Full`).
    /// `None`: only the servers' own limits.
    pub max_bytes_per_shard: Option<u64>,
    /// How long an append may retry before its records are `Unavailable`.
    pub append_deadline: Duration,
    /// This node's id in lease records (`node_id`): unique per node. Default `node-` and
    /// random characters.
    pub node_id: String,
    /// How long leases last and how often they are renewed and taken.
    pub leases: LeaseTiming,
}

impl Default for JetStreamOptions {
    fn default() -> Self {
        Self {
            namespace: "hydrant".into(),
            replicas: 3,
            duplicate_window: Duration::from_secs(120),
            max_bytes_per_shard: None,
            append_deadline: Duration::from_secs(10),
            node_id: format!("node-{}", random_id()),
            leases: LeaseTiming::default(),
        }
    }
}

/// The buckets of a namespace.
#[derive(Debug)]
struct Buckets {
    logs: kv::Store,
    leases: kv::Store,
    keys: kv::Store,
    /// This node's lease machinery.
    node: Arc<Node>,
}

/// Streams' logs on a JetStream cluster. Each node has its own store over the same cluster.
pub struct JetStreamStore {
    nats: Nats,
    options: JetStreamOptions,
    buckets: OnceCell<Arc<Buckets>>,
}

impl std::fmt::Debug for JetStreamStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamStore")
            .field("nats", &self.nats)
            .field("namespace", &self.options.namespace)
            .finish()
    }
}

impl JetStreamStore {
    /// A store on the cluster `nats` is connected to. Its buckets are made on first use.
    pub fn new(nats: Nats, options: JetStreamOptions) -> Self {
        Self { nats, options, buckets: OnceCell::new() }
    }

    fn js(&self) -> &jetstream::Context {
        self.nats.jetstream()
    }

    async fn buckets(&self) -> Result<Arc<Buckets>, Cause> {
        self.buckets
            .get_or_try_init(|| async {
                let ns = &self.options.namespace;
                let leases = self.bucket(format!("{ns}-leases")).await?;
                let node = Node::start(&self.options.node_id, leases.clone(), self.options.leases);
                Ok(Arc::new(Buckets {
                    logs: self.bucket(format!("{ns}-logs")).await?,
                    leases,
                    keys: self.bucket(format!("{ns}-keys")).await?,
                    node,
                }))
            })
            .await
            .cloned()
    }

    async fn bucket(&self, name: String) -> Result<kv::Store, Cause> {
        (open_bucket(self.js(), &name, self.options.replicas, 1).await)
            .map_err(|e| cause(format!("creating the NATS bucket {name}"), e))
    }

    /// Where the registry entry of `stream`'s log (`entry`) is.
    fn registry(&self, buckets: &Buckets, stream: &str, entry: &LogEntry) -> Registry {
        Registry {
            js: self.js().clone(),
            logs: buckets.logs.clone(),
            key: format!("log.{}", key_token(stream)),
            stream: stream.to_string(),
            log_id: entry.log_id.clone(),
            options: self.options.clone(),
        }
    }

    /// The registry entry of `stream` and its revision, if it has one.
    async fn entry(&self, logs: &kv::Store, key: &str) -> Result<Option<(u64, LogEntry)>, Cause> {
        let entry = logs.entry(key).await.map_err(|e| cause("reading the log registry", e))?;
        match entry {
            Some(entry) if entry.operation == kv::Operation::Put => {
                let value = serde_json::from_slice(&entry.value)
                    .map_err(|e| cause(format!("the log registry's entry {key} is damaged"), e))?;
                Ok(Some((entry.revision, value)))
            }
            _ => Ok(None),
        }
    }

    /// Removes everything of the log `entry` names, then its registry entry (if it is still
    /// at `revision`).
    async fn finish_delete(
        &self,
        buckets: &Buckets,
        key: &str,
        revision: u64,
        entry: &LogEntry,
    ) -> Result<(), Cause> {
        for shard in entry.shard_ids() {
            let name = stream_name(&entry.log_id, shard);
            if let Err(e) = self.js().delete_stream(&name).await {
                if self.js().get_stream_no_info(&name).await.is_ok() {
                    return Err(cause(format!("deleting the NATS stream {name}"), e));
                }
            }
        }
        for bucket in [&buckets.leases, &buckets.keys] {
            let prefix = bucket.prefix.clone();
            let filter = format!("{prefix}*.{}.>", entry.log_id);
            let subjects: Vec<(String, usize)> = bucket
                .stream
                .info_with_subjects(&filter)
                .await
                .map_err(|e| cause("listing a log's records", e))?
                .try_collect()
                .await
                .map_err(|e| cause("listing a log's records", e))?;
            for (subject, _) in subjects {
                if let Some(key) = subject.strip_prefix(&prefix) {
                    bucket.purge(key).await.map_err(|e| cause("removing a record", e))?;
                }
            }
        }
        match buckets.logs.purge_expect_revision(key, Some(revision)).await {
            Ok(()) => Ok(()),
            // Someone else finished it first.
            Err(_) if self.entry(&buckets.logs, key).await?.is_none_or(|(r, _)| r != revision) => {
                Ok(())
            }
            Err(e) => Err(cause("removing a log from the registry", e)),
        }
    }

    /// Stops this node's lease machinery at once, as a crash or a pause would: no renewal, no
    /// release, no take (tests: the other nodes take its leases once they expire).
    #[doc(hidden)]
    pub async fn halt_leases(&self) {
        if let Ok(buckets) = self.buckets().await {
            buckets.node.halt();
        }
    }

    /// Takes `consumer`'s lease on `shard` of `stream`'s log from whoever holds it, for this
    /// node, and releases it again at once: what a take-over does to the holder (tests).
    #[doc(hidden)]
    pub async fn take_over(
        &self,
        stream: &str,
        shard: ShardId,
        consumer: &str,
    ) -> Result<(), crate::log::LeaseError> {
        use crate::log::LeaseError;
        let buckets = self.buckets().await.map_err(LeaseError::Unavailable)?;
        let key = format!("log.{}", key_token(stream));
        let Some((_, entry)) =
            self.entry(&buckets.logs, &key).await.map_err(LeaseError::Unavailable)?
        else {
            return Err(LeaseError::Unavailable(cause(stream, "no such log")));
        };
        let lease = super::lease::lease_key(&entry.log_id, shard, consumer);
        buckets.node.take_and_release(&lease).await
    }

    /// Stores `change` in the registry of `stream`'s log and stops there, without sealing the
    /// closed shards: what a node that crashed right after a reshard's commit point leaves
    /// (tests). Returns the new shards.
    #[doc(hidden)]
    pub async fn store_reshard_only(
        &self,
        stream: &str,
        change: crate::log::Reshard,
    ) -> Result<Vec<ShardId>, crate::log::ReshardError> {
        use crate::log::ReshardError;
        let buckets = self.buckets().await.map_err(ReshardError::Unavailable)?;
        let key = format!("log.{}", key_token(stream));
        let Some((_, entry)) =
            self.entry(&buckets.logs, &key).await.map_err(ReshardError::Unavailable)?
        else {
            return Err(ReshardError::Unavailable(cause(stream, "no such log")));
        };
        let registry = self.registry(&buckets, stream, &entry);
        Ok(registry.commit(change).await?.0)
    }

    /// Removes every log and bucket of this store's namespace (tests, or an operator leaving
    /// a namespace). Logs open elsewhere stop working.
    #[doc(hidden)]
    pub async fn remove_namespace(&self) -> Result<(), StoreError> {
        let buckets = self.buckets().await.map_err(StoreError::Unavailable)?;
        let keys: Vec<String> = match buckets.logs.keys().await {
            Ok(keys) => keys.try_collect().await.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        for key in keys.iter().filter(|k| k.starts_with("log.")) {
            if let Ok(Some((revision, entry))) = self.entry(&buckets.logs, key).await {
                self.finish_delete(&buckets, key, revision, &entry)
                    .await
                    .map_err(StoreError::Unavailable)?;
            }
        }
        let ns = &self.options.namespace;
        for bucket in ["logs", "leases", "keys"] {
            let _ = self.js().delete_key_value(format!("{ns}-{bucket}")).await;
        }
        Ok(())
    }
}

#[async_trait]
impl LogStore for JetStreamStore {
    fn cluster_nodes(&self) -> Vec<crate::log::ClusterNode> {
        self.buckets.get().map(|b| b.node.cluster_nodes()).unwrap_or_default()
    }

    async fn open(&self, stream: &str, spec: StreamSpec) -> Result<Arc<dyn StreamLog>, OpenError> {
        if spec.at_rest.encrypt && spec.at_rest.ring.is_none() {
            return Err(OpenError::Keys(cause("encryption at rest", "needs a key ring")));
        }
        let buckets = self.buckets().await.map_err(OpenError::Unavailable)?;
        let key = format!("log.{}", key_token(stream));
        let (revision, entry, created) = loop {
            match self.entry(&buckets.logs, &key).await.map_err(OpenError::Unavailable)? {
                Some((revision, entry)) if entry.deleting => self
                    .finish_delete(&buckets, &key, revision, &entry)
                    .await
                    .map_err(OpenError::Unavailable)?,
                // A log that resharded opens with the shards its reshards left.
                Some((_, entry)) if entry.lineage.is_none() && entry.shards != spec.shards => {
                    return Err(OpenError::ShardCount {
                        existing: entry.shards,
                        configured: spec.shards,
                    })
                }
                Some((revision, entry)) => break (revision, entry, false),
                None => {
                    let entry = LogEntry {
                        log_id: random_id(),
                        shards: spec.shards,
                        created_ms: crate::clock::now_ms(),
                        deleting: false,
                        lineage: None,
                    };
                    match buckets.logs.create(&key, entry.encode()).await {
                        Ok(revision) => break (revision, entry, true),
                        Err(e) if is_already_created(&e) => continue,
                        Err(e) => {
                            return Err(OpenError::Unavailable(cause(
                                "adding a log to the registry",
                                e,
                            )))
                        }
                    }
                }
            }
        };
        let registry = self.registry(&buckets, stream, &entry);
        let topology = match registry.topology(revision, &entry, &[]).await {
            Ok(topology) => topology,
            Err(e) => {
                if created {
                    // A failed open of a new log leaves nothing behind.
                    if let Ok(Some((revision, entry))) = self.entry(&buckets.logs, &key).await {
                        let _ = self.finish_delete(&buckets, &key, revision, &entry).await;
                    }
                }
                return Err(OpenError::Unavailable(e));
            }
        };
        let at_rest = AtRest::new(buckets.keys.clone(), &entry.log_id, spec.at_rest.ring.clone());
        let shared = LogShared::new(
            stream.to_string(),
            self.js().clone(),
            buckets.leases.clone(),
            registry,
            topology,
            at_rest,
            self.options.clone(),
            buckets.node.clone(),
        );
        shared.at_rest.switch(&spec.at_rest).await.map_err(|e| match e {
            EncryptionError::Keys(c) => OpenError::Keys(c),
            EncryptionError::Unavailable(c) => OpenError::Unavailable(c),
        })?;
        // Closed shards' ends (sealing any a crashed node left unsealed), before readers ask.
        shared.reload().await.map_err(OpenError::Unavailable)?;
        Ok(Arc::new(JetStreamLog::new(shared)))
    }

    /// Marks the log deleted in the registry (a later `open` makes a new, empty log, and
    /// finishes this deletion if it was cut short), then removes its streams and records.
    async fn delete(&self, stream: &str) -> Result<(), StoreError> {
        let buckets = self.buckets().await.map_err(StoreError::Unavailable)?;
        let key = format!("log.{}", key_token(stream));
        loop {
            let Some((revision, mut entry)) =
                self.entry(&buckets.logs, &key).await.map_err(StoreError::Unavailable)?
            else {
                return Ok(());
            };
            if !entry.deleting {
                entry.deleting = true;
                let value = Bytes::from(serde_json::to_vec(&entry).expect("serializable"));
                match buckets.logs.update(&key, value, revision).await {
                    Ok(marked) => {
                        return self
                            .finish_delete(&buckets, &key, marked, &entry)
                            .await
                            .map_err(StoreError::Unavailable)
                    }
                    Err(e) if is_wrong_last_revision(&e) => continue,
                    Err(e) => {
                        return Err(StoreError::Unavailable(cause("marking a log deleted", e)))
                    }
                }
            }
            return self
                .finish_delete(&buckets, &key, revision, &entry)
                .await
                .map_err(StoreError::Unavailable);
        }
    }
}
