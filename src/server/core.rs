//! What a server keeps streams in, from `core:`: the embedded log and files under `data_dir`
//! (one server), or a NATS JetStream cluster that every node of a cluster shares (the logs,
//! the stream definitions of the control plane and the list of Kinesis streams;
//! docs/cluster.md).

use std::sync::Arc;
use std::time::Duration;

use super::ServerError;
use crate::config::{node_id, Config, CoreConfig, CoreType, FsyncSetting};
use crate::control::{DefinitionStore, FileDefinitions, KvDefinitions};
use crate::kinesis::catalog::{Catalog, FileCatalog, KvCatalog};
use crate::log::jetstream::{
    JetStreamOptions, JetStreamStore, LeaseTiming, NatsAuth, NatsOptions, NatsTls,
};
use crate::log::{DiskBudget, EmbeddedStore, FsyncPolicy, LogOptions, LogStore, StreamLog};
use crate::replay::Pressure;

/// Where a server's streams live.
pub(super) struct Core {
    pub store: Arc<dyn LogStore>,
    pub definitions: Arc<dyn DefinitionStore>,
    /// The list of Kinesis streams.
    pub kinesis: Arc<dyn Catalog>,
    /// The embedded log, which tidies its directory once every stream has opened.
    pub embedded: Option<Arc<EmbeddedStore>>,
    /// Whether a stream's log is close to its limit: delivered records kept for replays then
    /// give way (`replay::keep_retention`).
    pub pressure: Pressure,
}

/// Share of a limit from which a log counts as nearly full.
const NEARLY_FULL: f64 = 0.8;

impl Core {
    /// Opens the core `config` names. For a cluster, this connects (waiting while no NATS
    /// server answers) and needs the multi-thread runtime, which `hydrant serve` runs.
    pub fn open(config: &Config) -> Result<Self, ServerError> {
        match config.core.kind {
            CoreType::Embedded => Ok(Self::embedded(config)),
            CoreType::Jetstream => {
                let handle = tokio::runtime::Handle::current();
                if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
                    return Err(ServerError::Cluster(
                        "core.type: jetstream needs Tokio's multi-thread runtime".into(),
                    ));
                }
                tokio::task::block_in_place(|| handle.block_on(Self::cluster(config)))
            }
        }
    }

    fn embedded(config: &Config) -> Self {
        let options = LogOptions {
            fsync: match config.storage.fsync {
                FsyncSetting::Always => FsyncPolicy::Always,
                FsyncSetting::Interval { interval_ms } => {
                    FsyncPolicy::Interval(Duration::from_millis(interval_ms))
                }
            },
            segment_bytes: config.storage.segment_bytes,
            ..LogOptions::default()
        };
        let budget = DiskBudget::new(config.storage.max_bytes);
        let store = Arc::new(EmbeddedStore::new(&config.data_dir, options, budget.clone()));
        // One budget for every stream's log; a shard that refuses appends (a full disk, a
        // failed sync) counts too, as freeing delivered segments is what helps.
        let pressure: Pressure = Arc::new(move |log: &dyn StreamLog| {
            budget.max().is_some_and(|max| budget.used() as f64 >= max as f64 * NEARLY_FULL)
                || !log.problems().is_empty()
        });
        Self {
            pressure,
            store: store.clone(),
            definitions: Arc::new(FileDefinitions::new(&config.data_dir)),
            kinesis: Arc::new(FileCatalog::new(&config.data_dir)),
            embedded: Some(store),
        }
    }

    async fn cluster(config: &Config) -> Result<Self, ServerError> {
        let core = &config.core;
        let node = node_id(config);
        let nats = nats_options(core, &node)
            .connect_retrying()
            .await
            .map_err(|e| ServerError::Cluster(e.to_string()))?;
        let replicas = usize::from(core.replicas());
        let options = JetStreamOptions {
            namespace: core.namespace().to_string(),
            replicas,
            duplicate_window: Duration::from_secs(core.duplicate_window_seconds()),
            max_bytes_per_shard: core.max_bytes_per_shard,
            node_id: node.clone(),
            leases: LeaseTiming::lasting(Duration::from_secs(core.lease_seconds())),
            ..JetStreamOptions::default()
        };
        let definitions = KvDefinitions::open(&nats, core.namespace(), replicas)
            .await
            .map_err(|e| ServerError::Cluster(e.to_string()))?;
        let kinesis =
            KvCatalog::open(&nats, core.namespace(), replicas, &node).await.map_err(|e| {
                ServerError::Cluster(format!("core: the Kinesis streams' catalog: {e}"))
            })?;
        tracing::info!(node = %node, namespace = core.namespace(), replicas,
            "streams live on the nats jetstream cluster; definitions are shared by its nodes");
        let per_shard = core.max_bytes_per_shard;
        let pressure: Pressure = Arc::new(move |log: &dyn StreamLog| {
            per_shard.is_some_and(|max| {
                log.stats().iter().any(|s| s.bytes as f64 >= max as f64 * NEARLY_FULL)
            })
        });
        Ok(Self {
            pressure,
            store: Arc::new(JetStreamStore::new(nats, options)),
            definitions: Arc::new(definitions),
            kinesis: Arc::new(kinesis),
            embedded: None,
        })
    }
}

/// How to reach the cluster `core` names, as node `node`.
fn nats_options(core: &CoreConfig, node: &str) -> NatsOptions {
    let auth = if let Some(path) = &core.credentials_file {
        NatsAuth::CredentialsFile(path.clone())
    } else if let Some(path) = &core.nkey_seed_file {
        NatsAuth::NkeySeedFile(path.clone())
    } else if let Some(token) = &core.token {
        NatsAuth::Token(token.expose().to_string())
    } else if let (Some(user), Some(password)) = (&core.user, &core.password) {
        NatsAuth::UserPassword { user: user.clone(), password: password.expose().to_string() }
    } else {
        NatsAuth::None
    };
    let tls = core
        .tls
        .as_ref()
        .map(|tls| NatsTls { ca: tls.ca.clone(), client: tls.cert.clone().zip(tls.key.clone()) });
    let name = format!("hydrant {node}");
    NatsOptions { servers: core.servers.clone(), auth, tls, name, only_listed: false }
}
