//! Building a delivery stream's pipeline: from its configuration, the destination, object
//! format, naming and processing its workers use (`Pipeline::prepare`, checked before
//! anything runs), then one delivery worker per shard of its log (`Pipeline::start`);
//! `open_stream` opens a stream's log and does both.

mod backup;
mod error;
mod replay;
mod stages;
#[cfg(test)]
mod tests;

pub use error::StartError;
pub use replay::{start_replay, ReplayOpening};

use std::sync::Arc;

use hydrant_destinations::s3::S3Destination;

use backup::Backup;
use stages::StageBuilder;

use crate::codec::{compression_for, ObjectCodec};
use crate::config::{Config, DeliveryStreamConfig};
use crate::delivery::assembler::{Stages, StoreKeys};
use crate::delivery::sink::Sink;
use crate::delivery::stream_workers::WorkerFactory;
use crate::delivery::worker::{BACKUP_CONSUMER, CONSUMER};
use crate::delivery::{BatchPolicy, ShardWorker, StagesFactory, Workers};
use crate::destination::S3Output;
use crate::log::{
    AtRestKeys, LogStore, OpenError, ReshardError, ShardState, StreamLog, StreamSpec,
};
use crate::names::arn_of;
use crate::naming::ObjectNamer;
use crate::plan::StreamPlan;
use crate::registry::{Definition, DeliveryStream, Owner};
use crate::telemetry::Metrics;
use crate::wasm_host::{DefinedBy, TransformEngine};

/// What building any stream's pipeline shares, one per server (the composition root creates
/// it): the WebAssembly engine, which caches compiled transform modules.
#[derive(Clone)]
pub struct BuildContext {
    engine: TransformEngine,
}

impl BuildContext {
    pub fn new(engine: TransformEngine) -> Self {
        Self { engine }
    }

    /// A context of its own, for unit tests that build streams (what a server shares does
    /// not matter there).
    #[cfg(test)]
    pub(crate) fn for_tests() -> Self {
        Self::new(TransformEngine::new().expect("a WebAssembly engine"))
    }
}

/// Everything a stream's workers are built from, prepared (and checked) before anything runs:
/// a configuration change prepares the new pipeline while the old workers still deliver.
pub(crate) struct Pipeline {
    codec: ObjectCodec,
    namer: Arc<ObjectNamer>,
    policy: BatchPolicy,
    build: Arc<StageBuilder>,
    sink: Arc<dyn Sink>,
    /// Which object keys the destination bucket's store takes.
    key_rules: Arc<dyn StoreKeys>,
    /// Source-record backup, when the stream asks for one.
    backup: Option<Backup>,
}

impl Pipeline {
    /// Builds the destination, object format, naming and processing of `stream_config` from
    /// its checked `plan` (`crate::plan::ServerPlan`, `check_stream`): the destination's
    /// sink, the object store and its server-side encryption, the stream's key ring, the
    /// parsed prefixes, the Parquet schema, the backup and the compiled processors come from
    /// there, so nothing is parsed, resolved or read from a file a second time.
    pub(crate) fn prepare(
        config: &Config,
        stream_config: &DeliveryStreamConfig,
        plan: &StreamPlan,
        owner: Owner,
        build: &BuildContext,
    ) -> Result<Self, StartError> {
        let name = stream_config.delivery_stream_name.clone();
        let s3 = stream_config.s3();
        let destination = S3Destination::open_with(&plan.store, s3.bucket(), plan.sse.as_ref())
            .map_err(|source| StartError::Destination {
                stream: name.clone(),
                bucket: s3.bucket().to_string(),
                source,
            })?;
        let key_rules: Arc<dyn StoreKeys> = Arc::new(destination.key_rules());
        let ring = plan.object_keys.as_ref();
        let mut codec = ObjectCodec::concatenated(
            Arc::from(compression_for(s3.compression_format)),
            s3.object_extension(),
        );
        let conversion = s3.data_format_conversion_configuration.as_ref();
        if let Some((conversion, columns)) = conversion.zip(plan.schema.clone()) {
            let extension = s3
                .file_extension
                .clone()
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| ".parquet".into());
            codec = ObjectCodec::parquet(conversion.clone(), columns, extension).map_err(|e| {
                StartError::Processing { stream: name.clone(), message: e.to_string() }
            })?;
        }
        if let Some(ring) = ring {
            codec = codec.with_encryption(ring.clone());
        }
        let extension = codec.extension().to_string();
        let namer = Arc::new(
            ObjectNamer::from_prefixes(&name, plan.prefixes.clone(), &extension, s3.time_zone())
                // Error objects are plain JSON lines whatever the delivery format.
                .and_then(|namer| namer.with_error_extension(""))
                .map_err(|source| StartError::Naming { stream: name.clone(), source })?,
        );
        for (field, key) in namer.sample_keys(1) {
            let refused = match key {
                Ok(key) => key_rules.check(&key).err(),
                Err(e) => Some(e.to_string()),
            };
            if let Some(message) = refused {
                return Err(StartError::UnwritableKeys { stream: name.clone(), field, message });
            }
        }
        let policy = BatchPolicy {
            // Per buffer: with dynamic partitioning, every partition has its own.
            max_bytes: s3.buffer_size_bytes(),
            interval_ms: s3.buffer_interval().as_millis() as i64,
        };
        let defined_by = match owner {
            Owner::ConfigFile => DefinedBy::ConfigFile,
            Owner::Api => DefinedBy::Api,
        };
        let build = Arc::new(StageBuilder::new(
            config,
            stream_config,
            plan.processors.clone(),
            &arn_of(&config.region, &config.account_id, &name),
            defined_by,
            &build.engine,
        )?);
        let output = S3Output { destination, namer: namer.clone(), codec: codec.clone() };
        let sink = (plan.destination)
            .build(output)
            .map_err(|source| StartError::Sink { stream: name.clone(), source })?;
        let backup = match &plan.backup {
            None => None,
            Some(backup) => Some(Backup::prepare(stream_config, backup, plan)?),
        };
        Ok(Self { codec, namer, policy, build, sink, key_rules, backup })
    }

    /// Processing stages for the first workers of a stream with `shards` shards, naming
    /// objects with `version`: built before anything starts, so that their errors show then.
    pub(crate) fn first_stages(
        &self,
        name: &str,
        shards: usize,
        version: u64,
    ) -> Result<Vec<Stages>, StartError> {
        (0..shards)
            .map(|_| {
                self.build
                    .stages(&self.namer, &self.key_rules, version)
                    .map_err(|message| StartError::Processing { stream: name.to_string(), message })
            })
            .collect()
    }

    /// Starts one worker per shard of `log` the consumers are granted, now and later, naming
    /// objects with `version`. `stages` serve the first delivery workers (built by
    /// [`first_stages`](Self::first_stages), or here when `None`).
    pub(crate) fn start(
        &self,
        name: &str,
        log: &Arc<dyn StreamLog>,
        version: u64,
        metrics: &Metrics,
        stages: Option<Vec<Stages>>,
    ) -> Result<Workers, StartError> {
        let stages = match stages {
            Some(stages) => stages,
            None => {
                let open = log.shards().iter().filter(|s| s.state == ShardState::Open).count();
                self.first_stages(name, open, version)?
            }
        };
        let consume = |consumer| {
            log.assignments(consumer)
                .map_err(|source| StartError::Consume { stream: name.to_string(), source })
        };
        let threads = |source| StartError::Threads { stream: name.to_string(), source };
        let runtime = tokio::runtime::Handle::current();
        let mut workers = Workers::new();
        let delivery = self.delivery_factory(name, log, version, metrics, stages);
        let started = workers.consume(CONSUMER, consume(CONSUMER)?, delivery);
        if let Err(source) = started {
            workers.abandon();
            return Err(threads(source));
        }
        if let Some(backup) = &self.backup {
            let factory: WorkerFactory = {
                let (name, log, metrics) = (name.to_string(), log.clone(), metrics.clone());
                let (policy, codec, sink) =
                    (backup.policy, backup.codec.clone(), backup.sink.clone());
                Arc::new(move |lease, status, stop| ShardWorker {
                    stream: name.clone(),
                    log: log.clone(),
                    shard_index: lease.shard().0,
                    lease,
                    version,
                    policy,
                    codec: codec.clone(),
                    stages: std::sync::Mutex::new(Some(Stages::plain())),
                    restart_stages: Arc::new(|| Ok(Stages::plain())),
                    evaluates_jq: false,
                    sink: sink.clone(),
                    metrics: metrics.clone(),
                    // Freshness and backlog metrics follow the destination, not the backup.
                    status,
                    stop,
                    runtime: runtime.clone(),
                })
            };
            let started = consume(BACKUP_CONSUMER).and_then(|leases| {
                workers.consume(BACKUP_CONSUMER, leases, factory).map_err(threads)
            });
            if let Err(e) = started {
                workers.abandon();
                return Err(e);
            }
        }
        Ok(workers)
    }

    /// Makes the delivery worker of each lease granted on `log`: it names objects as stream
    /// `identity` (whose name the object ids derive from) with `version`; the first workers take
    /// `stages`, later ones build theirs.
    fn delivery_factory(
        &self,
        identity: &str,
        log: &Arc<dyn StreamLog>,
        version: u64,
        metrics: &Metrics,
        stages: Vec<Stages>,
    ) -> WorkerFactory {
        let first = Arc::new(std::sync::Mutex::new(stages));
        let restart_stages: StagesFactory = {
            let (build, namer, rules) =
                (self.build.clone(), self.namer.clone(), self.key_rules.clone());
            Arc::new(move || build.stages(&namer, &rules, version))
        };
        let evaluates_jq =
            self.build.processors.as_ref().is_some_and(|p| p.metadata_extractor().is_some());
        let (name, log, metrics) = (identity.to_string(), log.clone(), metrics.clone());
        let runtime = tokio::runtime::Handle::current();
        let (policy, codec, sink) = (self.policy, self.codec.clone(), self.sink.clone());
        Arc::new(move |lease, status, stop| ShardWorker {
            restart_stages: restart_stages.clone(),
            evaluates_jq,
            stream: name.clone(),
            log: log.clone(),
            shard_index: lease.shard().0,
            lease,
            version,
            policy,
            codec: codec.clone(),
            // The first workers take the stages built at the start; later ones build theirs.
            stages: std::sync::Mutex::new(first.lock().expect("not poisoned").pop()),
            sink: sink.clone(),
            metrics: metrics.clone(),
            status,
            stop,
            runtime: runtime.clone(),
        })
    }
}

/// How a stream comes to be opened.
pub(crate) struct Opening<'a> {
    pub config: &'a Config,
    /// The stream's checked plan.
    pub plan: &'a StreamPlan,
    pub build: &'a BuildContext,
    pub stream: &'a DeliveryStreamConfig,
    pub owner: Owner,
    pub version: u64,
    pub created_at: f64,
    pub last_update: Option<f64>,
}

/// Opens a stream's log in `store` (recovering it) and starts its workers. Blocking: call it
/// where blocking is allowed (start-up, `spawn_blocking`).
/// Where delivery streams' logs come from: their own logs in `store`, or, for a stream that
/// reads a Kinesis stream (`KinesisStreamAsSource`), that stream's log from `sources`.
#[derive(Debug, Clone)]
pub struct Logs {
    pub store: Arc<dyn LogStore>,
    /// `None` where the Kinesis API is not served (cluster mode).
    pub sources: Option<Arc<dyn SourceLogs>>,
}

/// The logs of other streams a delivery stream can read instead of its own: the server's
/// Kinesis streams.
pub trait SourceLogs: Send + Sync + std::fmt::Debug {
    /// The log of Kinesis stream `stream` as delivery stream `delivery` reads it (its records'
    /// data, its consumers named after `delivery`); why not, when it cannot.
    fn kinesis(&self, delivery: &str, stream: &str) -> Result<Arc<dyn StreamLog>, String>;
}

/// Opens the log of `name`; a log with other shards than `spec.shards` is rescaled to them
/// (splits and merges: its records stay, and delivery finishes each closed shard before its
/// children), or refused when the log cannot reshard.
async fn open_with_shards(
    store: &dyn LogStore,
    name: &str,
    spec: StreamSpec,
) -> Result<Arc<dyn StreamLog>, StartError> {
    let configured = spec.shards;
    let log_error = |source| StartError::Log { stream: name.to_string(), source };
    let log = match store.open(name, spec.clone()).await {
        Err(OpenError::ShardCount { existing, .. }) => {
            store.open(name, StreamSpec { shards: existing, ..spec }).await.map_err(log_error)?
        }
        other => other.map_err(log_error)?,
    };
    rescale(log.as_ref(), name, configured).await?;
    Ok(log)
}

/// Takes `log` to `shards` open shards of equal ranges if it has others.
pub(crate) async fn rescale(
    log: &dyn StreamLog,
    name: &str,
    shards: u32,
) -> Result<(), StartError> {
    let open = log.shards().iter().filter(|s| s.state == ShardState::Open).count() as u32;
    match crate::log::scale(log, shards).await {
        Ok(0) => Ok(()),
        Ok(changes) => {
            tracing::info!(stream = %name, from = open, to = shards, changes,
                "resharded the stream's log to hydrant.shards");
            Ok(())
        }
        Err(ReshardError::Unsupported) => Err(StartError::ShardCount {
            stream: name.to_string(),
            on_disk: open,
            configured: shards,
        }),
        Err(e) => Err(StartError::Reshard { stream: name.to_string(), source: Box::new(e) }),
    }
}

pub(crate) fn open_stream(
    opening: Opening<'_>,
    logs: &Logs,
    metrics: &Metrics,
) -> Result<DeliveryStream, StartError> {
    let Opening {
        config,
        plan,
        build,
        stream: stream_config,
        owner,
        version,
        created_at,
        last_update,
    } = opening;
    let pipeline = Pipeline::prepare(config, stream_config, plan, owner, build)?;
    let name = stream_config.delivery_stream_name.clone();
    let s3 = stream_config.s3();
    let log_keys = config
        .log_keys(
            stream_config,
            stream_config.delivery_stream_encryption_configuration_input.as_ref(),
        )
        .map_err(|e| StartError::Keys { stream: name.clone(), message: e.to_string() })?;
    let stages = pipeline.first_stages(&name, stream_config.hydrant.shards as usize, version)?;
    let spec = StreamSpec {
        shards: stream_config.hydrant.shards,
        at_rest: AtRestKeys { ring: log_keys.ring.map(Arc::new), encrypt: log_keys.encrypt },
    };
    let configured = spec.shards;
    let source = stream_config.kinesis_stream_source_configuration.as_ref();
    let log = match source.and_then(|s| s.stream_name()) {
        Some(kinesis) => {
            let source_error = |message: String| StartError::Source {
                stream: name.clone(),
                kinesis: kinesis.to_string(),
                message,
            };
            let sources = logs.sources.as_ref().ok_or_else(|| {
                source_error("this server does not serve the Kinesis API (cluster mode)".into())
            })?;
            sources.kinesis(&name, kinesis).map_err(source_error)?
        }
        None => futures::executor::block_on(open_with_shards(logs.store.as_ref(), &name, spec))?,
    };
    let workers = pipeline.start(&name, &log, version, metrics, Some(stages))?;
    tracing::info!(stream = %name, shards = configured, bucket = s3.bucket(),
        store = %stream_config.hydrant.object_store, version,
        prefix = s3.prefix.as_deref().unwrap_or(""), compression = s3.compression_format.as_firehose_str(),
        owner = ?owner, "delivery stream ready");
    let definition = Definition {
        metric: crate::destination::descriptor(stream_config.destination().kind()).metric,
        config: Arc::new(stream_config.clone()),
        version,
        last_update,
    };
    let arn = arn_of(&config.region, &config.account_id, &name);
    Ok(DeliveryStream::new(name, arn, owner, created_at, log, definition, workers))
}
