//! Delivery streams at run time: each configured stream's log, destination and workers, and
//! the registry the API looks streams up in.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use base64::Engine;
use bytes::Bytes;
use hydrant_destinations::http::HttpDestination;
use hydrant_destinations::s3::{KeyRules, S3Destination, ServerSideEncryption, StoreSpec};
use hydrant_destinations::search::SearchDestination;
use hydrant_destinations::warehouse::{CredentialsClause, PostgresLoader, RedshiftLoader, Target};
use hydrant_destinations::{DestinationError, RetryPolicy};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::api::{ApiError, ErrorType};
use crate::codec::encryption::KeyRing;
use crate::codec::{compression_for, ObjectCodec};
use crate::config::{
    CompressionFormat, Config, DeliveryStreamConfig, DestinationBlock, EncryptionConfig,
    FsyncSetting, ObjectStoreConfig, ServerSideEncryptionSetting,
};
use crate::delivery::assembler::{Partitioning, Stages, TransformStage};
use crate::delivery::sinks::{HttpSink, Loader, S3Output, S3Sink, SearchSink, Sink, WarehouseSink};
use crate::delivery::worker::{BACKUP_CONSUMER, CONSUMER};
use crate::delivery::{
    BatchPolicy, ShardWorker, StagesFactory, StopMode, WorkerSignals, WorkerStatus,
};
use crate::log::{
    AppendError, DiskBudget, EmbeddedLog, FsyncPolicy, LogOptions, OpenError, RecordLocation,
};
use crate::naming::{NamerError, ObjectNamer};
use crate::processors::Processors;
use crate::telemetry::Metrics;
use crate::wasm_host::{
    resolve_module, DefinedBy, SandboxLimits, Transform, TransformContext, TransformEngine,
    TransformModule,
};

/// Why a stream could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("delivery stream {stream}: cannot open its log: {source}")]
    Log { stream: String, source: OpenError },
    #[error("delivery stream {stream}: object store {store:?} is not defined in object_stores")]
    UnknownStore { stream: String, store: String },
    #[error("delivery stream {stream}: cannot open bucket {bucket}: {source}")]
    Destination { stream: String, bucket: String, source: DestinationError },
    #[error("delivery stream {stream}: processing: {message}")]
    Processing { stream: String, message: String },
    /// The module a `LambdaArn` names cannot be read, compiled or used. The message quotes
    /// the file (a compiler error shows its text), so it is for the operator's eyes only.
    #[error("delivery stream {stream}: processing: LambdaArn {lambda_arn}: {error}")]
    Transform { stream: String, lambda_arn: String, error: crate::wasm_host::LoadError },
    /// `hydrant.schema.file` cannot be read or parsed (a config-file stream).
    #[error("delivery stream {stream}: hydrant.schema: {error}")]
    Schema { stream: String, error: crate::codec::parquet::SchemaLoadError },
    #[error("delivery stream {stream}: destination: {message}")]
    Sink { stream: String, message: String },
    #[error("delivery stream {stream}: encryption keys: {message}")]
    Keys { stream: String, message: String },
    #[error("delivery stream {stream}: {source}")]
    Naming { stream: String, source: NamerError },
    #[error(
        "delivery stream {stream}: its log has {on_disk} shards but the configuration says {configured}; \
         changing the shard count of an existing stream is not supported yet: restore hydrant.shards: {on_disk}"
    )]
    ShardCount { stream: String, on_disk: u32, configured: u32 },
    #[error("delivery stream {stream}: cannot start its delivery threads: {source}")]
    Threads { stream: String, source: std::io::Error },
    #[error("delivery stream {stream}: cannot read or write its version file: {source}")]
    Version { stream: String, source: std::io::Error },
    #[error(
        "{path}: {message}; fix the stream (or remove the file to drop it, losing its undelivered \
         records) and start again"
    )]
    ApiStream { path: String, message: String },
}

/// Whether `name` is a valid DeliveryStreamName: `[a-zA-Z0-9_.-]{1,64}`.
pub fn is_valid_stream_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// The `RecordId` returned for a stored record: opaque to clients (as in Firehose), but
/// derived from where the record lives so support can find it: base64 of
/// `[1, shard u16, seq u64, arrival ms u64]`.
pub fn record_id(location: &RecordLocation) -> String {
    let mut raw = [0u8; 19];
    raw[0] = 1;
    raw[1..3].copy_from_slice(&(location.shard as u16).to_be_bytes());
    raw[3..11].copy_from_slice(&location.seq.to_be_bytes());
    raw[11..19].copy_from_slice(&location.arrival_ms.to_be_bytes());
    base64::engine::general_purpose::STANDARD.encode(raw)
}

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
}

/// A stream's running delivery workers and how to stop them.
pub struct Workers {
    signals: WorkerSignals,
    threads: Vec<JoinHandle<()>>,
    statuses: Vec<Arc<WorkerStatus>>,
    /// The source-record backup workers' statuses (one per shard, when there is a backup).
    backup_statuses: Vec<Arc<WorkerStatus>>,
}

impl Workers {
    /// Asks the workers to stop in `mode` and waits for them. Past `deadline`, or once `abort`
    /// says so, uploads in flight are abandoned (what was not delivered stays in the log).
    /// `true` when they finished without being abandoned.
    pub async fn stop(
        self,
        mode: StopMode,
        deadline: tokio::time::Instant,
        mut abort: watch::Receiver<bool>,
    ) -> bool {
        self.signals.request(mode);
        let mut in_time = true;
        while !self.threads.iter().all(JoinHandle::is_finished) {
            if tokio::time::Instant::now() >= deadline || *abort.borrow() {
                self.signals.abandon();
                in_time = false;
                break;
            }
            let tick = tokio::time::sleep(std::time::Duration::from_millis(20));
            tokio::select! {
                _ = tick => {}
                _ = abort.changed() => {}
            }
        }
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
        in_time
    }

    /// Stops the workers at once, without waiting (a stream that failed to register).
    fn abandon(self) {
        self.signals.abandon();
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// One running delivery stream.
pub struct DeliveryStream {
    pub name: String,
    pub arn: String,
    pub owner: Owner,
    pub created_at: f64,
    pub log: EmbeddedLog,
    definition: RwLock<Definition>,
    workers: Mutex<Option<Workers>>,
    /// Closed (false) once the stream is being deleted or removed: puts are refused. Puts hold
    /// it for reading while they append, so closing it waits for appends in flight.
    accepting: tokio::sync::RwLock<bool>,
    deleting: AtomicBool,
}

impl DeliveryStream {
    /// Appends records; one result per record, errors in the shape producers see. The whole
    /// call fails with ResourceNotFoundException once the stream is being deleted.
    pub async fn append(
        &self,
        records: Vec<Bytes>,
    ) -> Result<Vec<Result<RecordLocation, ApiError>>, ApiError> {
        let accepting = self.accepting.read().await;
        if !*accepting {
            return Err(ApiError::new(
                ErrorType::ResourceNotFound,
                format!(
                    "Firehose {} under account {} not found: it is being deleted and accepts no more records",
                    self.name,
                    self.account()
                ),
            ));
        }
        let results = self.log.append(records).await;
        drop(accepting);
        Ok(results.into_iter().map(|r| r.map_err(|e| append_error(&self.name, e))).collect())
    }

    /// The stream's current definition.
    pub fn definition(&self) -> Definition {
        self.definition.read().expect("not poisoned").clone()
    }

    /// The stream's current configuration.
    pub fn config(&self) -> Arc<DeliveryStreamConfig> {
        self.definition.read().expect("not poisoned").config.clone()
    }

    /// `VersionId`.
    pub fn version(&self) -> u64 {
        self.definition.read().expect("not poisoned").version
    }

    pub(crate) fn set_definition(&self, definition: Definition) {
        *self.definition.write().expect("not poisoned") = definition;
    }

    /// Whether the stream is being deleted (or removed from the config file).
    pub fn is_deleting(&self) -> bool {
        self.deleting.load(Ordering::Acquire)
    }

    /// Marks the stream as being deleted and refuses puts from now on; returns once the puts
    /// in flight have been stored.
    pub(crate) async fn close(&self) {
        self.deleting.store(true, Ordering::Release);
        *self.accepting.write().await = false;
    }

    /// Marks a stream that is not serving yet as being deleted (a deletion accepted before a
    /// restart).
    pub(crate) fn mark_deleting(&self) {
        self.deleting.store(true, Ordering::Release);
        if let Ok(mut accepting) = self.accepting.try_write() {
            *accepting = false;
        }
    }

    /// The delivery workers' progress (for metrics): one per shard while workers run.
    pub fn worker_statuses(&self) -> Vec<Arc<WorkerStatus>> {
        self.workers
            .lock()
            .expect("not poisoned")
            .as_ref()
            .map(|w| w.statuses.clone())
            .unwrap_or_default()
    }

    /// What holds each shard's delivery back, if anything: (consumer, shard, problem), the
    /// delivery workers first, then the source-record backup.
    pub fn delivery_problems(&self) -> Vec<(&'static str, u32, crate::delivery::health::Problem)> {
        let workers = self.workers.lock().expect("not poisoned");
        let Some(workers) = workers.as_ref() else { return Vec::new() };
        let consumers =
            [(CONSUMER, &workers.statuses), (BACKUP_CONSUMER, &workers.backup_statuses)];
        consumers
            .into_iter()
            .flat_map(|(consumer, statuses)| {
                statuses.iter().enumerate().filter_map(move |(shard, status)| {
                    status.health().problem().map(|p| (consumer, shard as u32, p))
                })
            })
            .collect()
    }

    /// Takes the running workers out (to stop them).
    pub(crate) fn take_workers(&self) -> Option<Workers> {
        self.workers.lock().expect("not poisoned").take()
    }

    pub(crate) fn put_workers(&self, workers: Workers) {
        let old = self.workers.lock().expect("not poisoned").replace(workers);
        if let Some(old) = old {
            // Never happens: callers take the old workers out first.
            old.abandon();
        }
    }

    /// `DeliveryStreamDescription`, with Firehose's defaults filled in (FIREHOSE.md 1.8).
    pub fn describe(&self) -> Value {
        let definition = self.definition();
        let config = &definition.config;
        let s3 = config.s3();
        let hints = json!({
            "SizeInMBs": s3.buffer_size_bytes() >> 20,
            "IntervalInSeconds": s3.buffer_interval().as_secs(),
        });
        let encryption = match &s3.encryption_configuration {
            Some(e) => serde_json::to_value(e)
                .unwrap_or_else(|_| json!({"NoEncryptionConfig": "NoEncryption"})),
            None => json!({"NoEncryptionConfig": "NoEncryption"}),
        };
        let role = s3
            .role_arn
            .clone()
            .unwrap_or_else(|| format!("arn:aws:iam::{}:role/hydrant", self.account()));
        let logging = s3
            .cloud_watch_logging_options
            .as_ref()
            .and_then(|o| serde_json::to_value(o).ok())
            .unwrap_or_else(|| json!({"Enabled": false}));
        let mut extended = json!({
            "RoleARN": role,
            "BucketARN": s3.bucket_arn,
            "Prefix": s3.prefix.clone().unwrap_or_default(),
            "BufferingHints": hints,
            "CompressionFormat": s3.compression_format.as_firehose_str(),
            "EncryptionConfiguration": encryption,
            "CloudWatchLoggingOptions": logging,
            "S3BackupMode": "Disabled",
            "DataFormatConversionConfiguration": {"Enabled": false},
        });
        let mut reduced = json!({
            "RoleARN": extended["RoleARN"],
            "BucketARN": s3.bucket_arn,
            "Prefix": extended["Prefix"],
            "BufferingHints": extended["BufferingHints"],
            "CompressionFormat": extended["CompressionFormat"],
            "EncryptionConfiguration": extended["EncryptionConfiguration"],
            "CloudWatchLoggingOptions": extended["CloudWatchLoggingOptions"],
        });
        if let Some(error_prefix) = &s3.error_output_prefix {
            extended["ErrorOutputPrefix"] = json!(error_prefix);
            reduced["ErrorOutputPrefix"] = json!(error_prefix);
        }
        for (key, value) in
            [("FileExtension", &s3.file_extension), ("CustomTimeZone", &s3.custom_time_zone)]
        {
            if let Some(v) = value {
                extended[key] = json!(v);
            }
        }
        // The processing, partitioning and conversion blocks as configured.
        let configured = [
            ("ProcessingConfiguration", serde_json::to_value(&s3.processing_configuration)),
            (
                "DynamicPartitioningConfiguration",
                serde_json::to_value(&s3.dynamic_partitioning_configuration),
            ),
            (
                "DataFormatConversionConfiguration",
                serde_json::to_value(&s3.data_format_conversion_configuration),
            ),
        ];
        for (key, value) in configured {
            if let Some(v) = value.ok().filter(|v| !v.is_null()) {
                extended[key] = v;
            }
        }
        let destination = destination_description(config, extended, reduced);
        let mut description = json!({
            "DeliveryStreamName": self.name,
            "DeliveryStreamARN": self.arn,
            "DeliveryStreamStatus": if self.is_deleting() { "DELETING" } else { "ACTIVE" },
            "DeliveryStreamType": "DirectPut",
            "DeliveryStreamEncryptionConfiguration": encryption_description(config),
            "VersionId": definition.version.to_string(),
            "CreateTimestamp": self.created_at,
            "Source": {"DirectPutSourceDescription": {}},
            "Destinations": [destination],
            "HasMoreDestinations": false,
        });
        if let Some(updated) = definition.last_update {
            description["LastUpdateTimestamp"] = json!(updated);
        }
        description
    }

    fn account(&self) -> &str {
        self.arn.split(':').nth(4).unwrap_or("000000000000")
    }
}

/// The id of a stream's one destination (AWS's and moto's spelling).
pub const DESTINATION_ID: &str = "destinationId-000000000001";

/// `Destinations[0]`: the S3 descriptions, and for other destinations their own block as
/// configured (with Firehose's `...Description` names, secrets left out).
fn destination_description(
    config: &DeliveryStreamConfig,
    extended: Value,
    reduced: Value,
) -> Value {
    let (key, mut block) = match config.destination() {
        DestinationBlock::S3 => {
            return json!({
                "DestinationId": DESTINATION_ID,
                "ExtendedS3DestinationDescription": extended,
                "S3DestinationDescription": reduced,
            });
        }
        DestinationBlock::Redshift(r) => {
            ("RedshiftDestinationDescription", serde_json::to_value(r).unwrap_or_default())
        }
        DestinationBlock::Search { config, elasticsearch } => (
            if elasticsearch {
                "ElasticsearchDestinationDescription"
            } else {
                "AmazonopensearchserviceDestinationDescription"
            },
            serde_json::to_value(config).unwrap_or_default(),
        ),
        DestinationBlock::Http(h) => {
            ("HttpEndpointDestinationDescription", serde_json::to_value(h).unwrap_or_default())
        }
    };
    if let Some(map) = block.as_object_mut() {
        // Firehose never echoes secrets.
        map.remove("Password");
        if let Some(endpoint) = map.get_mut("EndpointConfiguration").and_then(Value::as_object_mut)
        {
            endpoint.remove("AccessKey");
        }
        map.remove("S3Configuration");
        map.insert("S3DestinationDescription".into(), reduced.clone());
    }
    json!({
        "DestinationId": DESTINATION_ID,
        key: block,
        "S3DestinationDescription": reduced,
    })
}

fn encryption_description(config: &DeliveryStreamConfig) -> Value {
    match &config.delivery_stream_encryption_configuration_input {
        None => json!({"Status": "DISABLED"}),
        Some(input) => {
            let mut d = json!({
                "Status": "ENABLED",
                "KeyType": crate::config::key_type_of(input),
            });
            if let Some(arn) = &input.key_arn {
                d["KeyARN"] = json!(arn);
            }
            d
        }
    }
}

fn append_error(stream: &str, e: AppendError) -> ApiError {
    match e {
        AppendError::BudgetExceeded { .. } | AppendError::DiskFull => ApiError::new(
            ErrorType::ServiceUnavailable,
            format!("Slow down. Delivery stream {stream} cannot store more records now ({e}); retry with backoff"),
        ),
        other => ApiError::new(
            ErrorType::ServiceUnavailable,
            format!("delivery stream {stream} could not store the records ({other}); retry later"),
        ),
    }
}

/// Every stream, by name, and what opening more of them needs.
pub struct Streams {
    map: RwLock<BTreeMap<String, Arc<DeliveryStream>>>,
    /// The server settings streams are opened with (object stores, functions, ...) and the
    /// config file's streams, as last applied.
    config: RwLock<Arc<Config>>,
    pub(crate) options: LogOptions,
    pub(crate) budget: Arc<DiskBudget>,
    pub(crate) metrics: Metrics,
    account_id: String,
    /// Serialises changes: create, delete, update, tags, reload and shutdown.
    pub(crate) control: tokio::sync::Mutex<()>,
    /// Fired at the shutdown deadline: every stop in progress abandons its uploads.
    pub(crate) abort: watch::Sender<bool>,
    /// Deletions and removals draining in the background.
    pub(crate) tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Streams {
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
        let mut map = BTreeMap::new();
        for stream_config in &config.delivery_streams {
            let name = &stream_config.delivery_stream_name;
            let version = crate::control::persist::stream_dir_migrated(&config.data_dir, name)
                .and_then(|dir| crate::control::persist::file_stream_version(&dir, stream_config))
                .map_err(|source| StartError::Version { stream: name.clone(), source })?;
            let opening = Opening {
                config,
                stream: stream_config,
                owner: Owner::ConfigFile,
                version,
                created_at,
                last_update: None,
            };
            let stream = open_stream(opening, &options, budget, metrics)?;
            map.insert(stream.name.clone(), Arc::new(stream));
        }
        let streams = Self {
            map: RwLock::new(map),
            config: RwLock::new(Arc::new(config.clone())),
            options,
            budget: budget.clone(),
            metrics: metrics.clone(),
            account_id: config.account_id.clone(),
            control: tokio::sync::Mutex::new(()),
            abort: watch::channel(false).0,
            tasks: Mutex::new(Vec::new()),
        };
        streams.open_api_streams()?;
        // After every stream found its directory (see `persist::path_name`).
        crate::control::persist::clean_trash(&config.data_dir);
        Ok(streams)
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

fn store_spec(config: &Config, name: &str) -> Option<StoreSpec> {
    match config.object_stores.get(name) {
        Some(ObjectStoreConfig::Local { root }) => Some(StoreSpec::Local { root: root.clone() }),
        Some(ObjectStoreConfig::S3 {
            endpoint,
            region,
            access_key_id,
            secret_access_key,
            allow_http,
            virtual_hosted_style,
        }) => Some(StoreSpec::S3 {
            endpoint: endpoint.clone(),
            region: region.clone().unwrap_or_else(|| config.region.clone()),
            access_key_id: access_key_id.clone(),
            secret_access_key: secret_access_key.clone(),
            allow_http: *allow_http,
            virtual_hosted_style: *virtual_hosted_style,
        }),
        None if name == "default" => {
            Some(StoreSpec::Local { root: config.data_dir.join("buckets") })
        }
        None => None,
    }
}

fn shards_on_disk(dir: &Path) -> u32 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("shard-"))
                .count() as u32
        })
        .unwrap_or(0)
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
    key_rules: KeyRules,
    /// Source-record backup, when the stream asks for one.
    backup: Option<Backup>,
}

/// The backup consumer's own object format, naming, buffering and bucket.
struct Backup {
    codec: ObjectCodec,
    policy: BatchPolicy,
    sink: Arc<dyn Sink>,
}

impl Backup {
    /// Source records, before any processing, under their own checkpoint ("backup"): the log
    /// keeps a record until both consumers have it.
    fn prepare(
        stream: &DeliveryStreamConfig,
        spec: &StoreSpec,
        sse: Option<&ServerSideEncryption>,
        ring: Option<&Arc<KeyRing>>,
    ) -> Result<Option<Self>, StartError> {
        let Some(backup) = stream.backup_target() else { return Ok(None) };
        let name = &stream.delivery_stream_name;
        let destination =
            S3Destination::open_with(spec, backup.bucket(), sse).map_err(|source| {
                StartError::Destination {
                    stream: name.clone(),
                    bucket: backup.bucket().to_string(),
                    source,
                }
            })?;
        let mut codec = ObjectCodec::concatenated(
            Arc::from(compression_for(backup.compression_format)),
            backup.compression_format.extension(),
        );
        if let Some(ring) = ring {
            codec = codec.with_encryption(ring.clone());
        }
        let namer = Arc::new(
            ObjectNamer::new(
                name,
                backup.prefix.as_deref(),
                backup.error_output_prefix.as_deref(),
                codec.extension(),
                stream.s3().time_zone(),
            )
            .map_err(|source| StartError::Naming { stream: name.clone(), source })?,
        );
        let hints = backup.buffering_hints.unwrap_or_default();
        let policy = BatchPolicy {
            max_bytes: u64::from(hints.size_in_mbs.unwrap_or(crate::config::BUFFER_SIZE_MBS)) << 20,
            interval_ms: i64::from(
                hints.interval_in_seconds.unwrap_or(crate::config::BUFFER_INTERVAL_SECONDS),
            ) * 1000,
        };
        let output =
            S3Output { destination, namer, codec: codec.clone(), retry: RetryPolicy::default() };
        Ok(Some(Backup { codec, policy, sink: Arc::new(S3Sink { output, backup: true }) }))
    }
}

impl Pipeline {
    /// Builds the destination, object format, naming and processing of `stream_config`.
    pub(crate) fn prepare(
        config: &Config,
        stream_config: &DeliveryStreamConfig,
        owner: Owner,
    ) -> Result<Self, StartError> {
        let name = stream_config.delivery_stream_name.clone();
        let s3 = stream_config.s3();
        let store_name = &stream_config.hydrant.object_store;
        let spec = store_spec(config, store_name).ok_or_else(|| StartError::UnknownStore {
            stream: name.clone(),
            store: store_name.clone(),
        })?;
        let sse = match (&s3.encryption_configuration, stream_config.hydrant.server_side_encryption)
        {
            (Some(EncryptionConfig { kms_encryption_config: Some(kms), .. }), _) => {
                Some(ServerSideEncryption::Kms { key_id: kms.awskms_key_arn.clone() })
            }
            (_, Some(ServerSideEncryptionSetting::AES256)) => Some(ServerSideEncryption::S3Managed),
            _ => None,
        };
        let destination =
            S3Destination::open_with(&spec, s3.bucket(), sse.as_ref()).map_err(|source| {
                StartError::Destination {
                    stream: name.clone(),
                    bucket: s3.bucket().to_string(),
                    source,
                }
            })?;
        let key_rules = destination.key_rules();
        let ring = match &stream_config.hydrant.encryption {
            None => None,
            Some(encryption) => {
                Some(Arc::new(encryption.key_ring(Path::new("/")).map_err(|e| {
                    StartError::Keys { stream: name.clone(), message: e.to_string() }
                })?))
            }
        };
        let mut codec = ObjectCodec::concatenated(
            Arc::from(compression_for(s3.compression_format)),
            s3.object_extension(),
        );
        if let Some(conversion) =
            s3.data_format_conversion_configuration.as_ref().filter(|c| c.is_enabled())
        {
            let columns = stream_config
                .hydrant
                .schema
                .as_ref()
                .ok_or_else(|| StartError::Processing {
                    stream: name.clone(),
                    message: "hydrant.schema is missing".into(),
                })?
                .load(None)
                .map_err(|error| StartError::Schema { stream: name.clone(), error })?;
            let extension = s3
                .file_extension
                .clone()
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| ".parquet".into());
            codec = ObjectCodec::parquet(conversion.clone(), columns, extension).map_err(|e| {
                StartError::Processing { stream: name.clone(), message: e.to_string() }
            })?;
        }
        if let Some(ring) = &ring {
            codec = codec.with_encryption(ring.clone());
        }
        let extension = codec.extension().to_string();
        let namer = Arc::new(
            ObjectNamer::new(
                &name,
                s3.prefix.as_deref(),
                s3.error_output_prefix.as_deref(),
                &extension,
                s3.time_zone(),
            )
            // Error objects are plain JSON lines whatever the delivery format.
            .and_then(|namer| namer.with_error_extension(""))
            .map_err(|source| StartError::Naming { stream: name.clone(), source })?,
        );
        let policy = BatchPolicy {
            // Per buffer: with dynamic partitioning, every partition has its own.
            max_bytes: s3.buffer_size_bytes(),
            interval_ms: s3.buffer_interval().as_millis() as i64,
        };
        let defined_by = match owner {
            Owner::ConfigFile => DefinedBy::ConfigFile,
            Owner::Api => DefinedBy::Api,
        };
        let build =
            Arc::new(StageBuilder::new(config, stream_config, &arn_of(config, &name), defined_by)?);
        let output = S3Output {
            destination,
            namer: namer.clone(),
            codec: codec.clone(),
            retry: RetryPolicy::default(),
        };
        let sink = build_sink(config, stream_config, output)
            .map_err(|message| StartError::Sink { stream: name.clone(), message })?;
        let backup = Backup::prepare(stream_config, &spec, sse.as_ref(), ring.as_ref())?;
        Ok(Self { codec, namer, policy, build, sink, key_rules, backup })
    }

    /// Starts one worker per shard of `log`, naming objects with `version`.
    pub(crate) fn start(
        &self,
        name: &str,
        log: &EmbeddedLog,
        version: u64,
        metrics: &Metrics,
    ) -> Result<Workers, StartError> {
        let runtime = tokio::runtime::Handle::current();
        let signals = WorkerSignals::new();
        let mut statuses = Vec::new();
        let mut threads = Vec::new();
        let mut stages = Vec::new();
        for _ in log.shards() {
            stages.push(
                self.build.stages(&self.namer, self.key_rules, version).map_err(|message| {
                    StartError::Processing { stream: name.to_string(), message }
                })?,
            );
        }
        let restart_stages: StagesFactory = {
            let (build, namer, rules) = (self.build.clone(), self.namer.clone(), self.key_rules);
            Arc::new(move || build.stages(&namer, rules, version))
        };
        let evaluates_jq =
            self.build.processors.as_ref().is_some_and(|p| p.metadata_extractor().is_some());
        let mut workers = Vec::new();
        for (i, (shard, stages)) in log.shards().iter().zip(stages).enumerate() {
            let status = Arc::new(WorkerStatus::new());
            statuses.push(status.clone());
            workers.push(ShardWorker {
                restart_stages: restart_stages.clone(),
                evaluates_jq,
                stream: name.to_string(),
                consumer: CONSUMER,
                shard_index: i as u32,
                shard: shard.clone(),
                version,
                policy: self.policy,
                codec: self.codec.clone(),
                stages: std::sync::Mutex::new(Some(stages)),
                at_rest: log.at_rest(i),
                sink: self.sink.clone(),
                metrics: metrics.clone(),
                status,
                stop: signals.receiver(),
                runtime: runtime.clone(),
            });
        }
        let mut backup_statuses = Vec::new();
        if let Some(backup) = &self.backup {
            for (i, shard) in log.shards().iter().enumerate() {
                let status = Arc::new(WorkerStatus::new());
                backup_statuses.push(status.clone());
                workers.push(ShardWorker {
                    stream: name.to_string(),
                    consumer: BACKUP_CONSUMER,
                    shard_index: i as u32,
                    shard: shard.clone(),
                    version,
                    policy: backup.policy,
                    codec: backup.codec.clone(),
                    stages: std::sync::Mutex::new(Some(Stages::plain())),
                    restart_stages: Arc::new(|| Ok(Stages::plain())),
                    evaluates_jq: false,
                    at_rest: log.at_rest(i),
                    sink: backup.sink.clone(),
                    metrics: metrics.clone(),
                    // Freshness and backlog metrics follow the destination, not the backup.
                    status,
                    stop: signals.receiver(),
                    runtime: runtime.clone(),
                });
            }
        }
        for worker in workers {
            match worker.spawn() {
                Ok(handles) => threads.extend(handles),
                Err(source) => {
                    Workers { signals, threads, statuses, backup_statuses }.abandon();
                    return Err(StartError::Threads { stream: name.to_string(), source });
                }
            }
        }
        Ok(Workers { signals, threads, statuses, backup_statuses })
    }
}

/// How a stream comes to be opened.
pub(crate) struct Opening<'a> {
    pub config: &'a Config,
    pub stream: &'a DeliveryStreamConfig,
    pub owner: Owner,
    pub version: u64,
    pub created_at: f64,
    pub last_update: Option<f64>,
}

/// Opens a stream's log (recovering it) and starts its workers. Blocking.
pub(crate) fn open_stream(
    opening: Opening<'_>,
    options: &LogOptions,
    budget: &Arc<DiskBudget>,
    metrics: &Metrics,
) -> Result<DeliveryStream, StartError> {
    let Opening { config, stream: stream_config, owner, version, created_at, last_update } =
        opening;
    let pipeline = Pipeline::prepare(config, stream_config, owner)?;
    let name = stream_config.delivery_stream_name.clone();
    let s3 = stream_config.s3();
    let log_keys = config
        .log_keys(
            stream_config,
            stream_config.delivery_stream_encryption_configuration_input.as_ref(),
        )
        .map_err(|e| StartError::Keys { stream: name.clone(), message: e.to_string() })?;
    let dir = crate::control::persist::stream_dir_migrated(&config.data_dir, &name).map_err(
        |source| StartError::Log {
            stream: name.clone(),
            source: OpenError::Io {
                path: crate::control::persist::stream_dir(&config.data_dir, &name),
                source,
            },
        },
    )?;
    let configured = stream_config.hydrant.shards;
    let on_disk = shards_on_disk(&dir);
    if on_disk != 0 && on_disk != configured {
        return Err(StartError::ShardCount { stream: name, on_disk, configured });
    }
    let log = EmbeddedLog::open_encrypted(
        &dir,
        configured,
        options,
        budget,
        log_keys.ring.as_ref(),
        log_keys.encrypt,
    )
    .map_err(|source| StartError::Log { stream: name.clone(), source })?;
    // Before any worker runs or record is appended: markers never name records past the
    // recovered end of the log (see `Markers::lower_to_log_end`).
    for shard in log.shards() {
        for consumer in [CONSUMER, BACKUP_CONSUMER] {
            crate::delivery::buffers::Markers::lower_to_log_end(
                shard.dir(),
                consumer,
                shard.next_seq(),
            )
            .map_err(|source| StartError::Log {
                stream: name.clone(),
                source: OpenError::Io { path: shard.dir().to_path_buf(), source },
            })?;
        }
    }
    let workers = pipeline.start(&name, &log, version, metrics)?;
    tracing::info!(stream = %name, shards = configured, bucket = s3.bucket(),
        store = %stream_config.hydrant.object_store, version,
        prefix = s3.prefix.as_deref().unwrap_or(""), compression = s3.compression_format.as_firehose_str(),
        owner = ?owner, "delivery stream ready");
    Ok(DeliveryStream {
        arn: arn_of(config, &name),
        name,
        owner,
        created_at,
        log,
        definition: RwLock::new(Definition {
            config: Arc::new(stream_config.clone()),
            version,
            last_update,
        }),
        workers: Mutex::new(Some(workers)),
        accepting: tokio::sync::RwLock::new(true),
        deleting: AtomicBool::new(false),
    })
}

/// The stream's destination as a delivery sink; `output` is its S3 side (the destination
/// itself, the intermediate bucket, or where failed records go).
fn build_sink(
    config: &Config,
    stream: &DeliveryStreamConfig,
    output: S3Output,
) -> Result<Arc<dyn Sink>, String> {
    fn fields<F: std::fmt::Display>(errors: Vec<(F, String)>) -> String {
        errors.into_iter().map(|(f, m)| format!("{f}: {m}")).collect::<Vec<_>>().join("; ")
    }
    Ok(match stream.destination() {
        DestinationBlock::S3 => Arc::new(S3Sink { output, backup: false }),
        DestinationBlock::Redshift(r) => {
            let settings = r.settings().map_err(fields)?;
            let loader = match &settings.target {
                Target::Postgres(options) => {
                    let options = options.clone();
                    let loader = PostgresLoader::new(settings).map_err(|e| e.to_string())?;
                    Loader::Postgres { loader, options }
                }
                Target::Redshift { .. } => {
                    let role = r.role_arn.as_deref().unwrap_or_default();
                    let credentials = CredentialsClause::iam_role(role)?;
                    let store = output.destination.store().clone();
                    let bucket = output.destination.bucket().to_string();
                    Loader::Redshift(RedshiftLoader::new(settings, credentials, store, bucket))
                }
            };
            Arc::new(WarehouseSink {
                gzip: r.s3_configuration.compression_format == CompressionFormat::Gzip,
                prefix: r.s3_configuration.prefix.clone().unwrap_or_default(),
                staging: output,
                loader,
            })
        }
        DestinationBlock::Search { config: c, elasticsearch } => {
            let settings =
                c.settings(elasticsearch, stream.hydrant.basic_auth.as_ref()).map_err(fields)?;
            let destination =
                SearchDestination::new(settings.clone()).map_err(|e| e.to_string())?;
            Arc::new(SearchSink { destination, settings, errors: output })
        }
        DestinationBlock::Http(h) => {
            let arn = arn_of(config, &stream.delivery_stream_name);
            let settings = h.settings(&arn).map_err(fields)?;
            let destination = HttpDestination::new(&settings).map_err(|e| e.to_string())?;
            Arc::new(HttpSink { destination, source_arn: arn, errors: output })
        }
    })
}

fn arn_of(config: &Config, name: &str) -> String {
    format!("arn:aws:firehose:{}:{}:deliverystream/{name}", config.region, config.account_id)
}

/// What every shard's [`Stages`] share: validated processors and the compiled transform.
struct StageBuilder {
    stream: String,
    processors: Option<Arc<Processors>>,
    transform:
        Option<(TransformModule, TransformContext, SandboxLimits, crate::processors::LambdaSpec)>,
    partitioned: bool,
    max_partitions: usize,
    catalog: Value,
}

impl StageBuilder {
    /// `defined_by` decides what a `LambdaArn` may name ([`resolve_module`]).
    fn new(
        config: &Config,
        stream: &DeliveryStreamConfig,
        arn: &str,
        defined_by: DefinedBy,
    ) -> Result<Self, StartError> {
        let name = &stream.delivery_stream_name;
        let processing = |message: String| StartError::Processing { stream: name.clone(), message };
        let s3 = stream.s3();
        let enabled = s3.processing_configuration.as_ref().and_then(|p| p.enabled).unwrap_or(false);
        let processors = match s3.processing_configuration.as_ref().filter(|_| enabled) {
            None => None,
            Some(p) => Some(Arc::new(Processors::from_config(p).map_err(|issues| {
                processing(
                    issues
                        .into_iter()
                        .map(|(path, message)| format!("{path}: {message}"))
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            })?)),
        };
        let transform = match processors.as_ref().and_then(|p| p.lambda()) {
            None => None,
            Some(spec) => {
                let path = resolve_module(
                    &spec.lambda_arn,
                    &config.functions,
                    &config.base_dir,
                    defined_by,
                )
                .map_err(processing)?;
                let limits =
                    stream.hydrant.transform.unwrap_or_default().apply(SandboxLimits::default());
                let module = transform_engine().map_err(processing)?.load(&path, &limits).map_err(
                    |error| StartError::Transform {
                        stream: name.clone(),
                        lambda_arn: spec.lambda_arn.clone(),
                        error,
                    },
                )?;
                let context = TransformContext {
                    delivery_stream_arn: arn.to_string(),
                    region: config.region.clone(),
                };
                Some((module, context, limits, spec.clone()))
            }
        };
        let catalog = match &s3.data_format_conversion_configuration {
            Some(c) => serde_json::to_value(&c.schema_configuration).unwrap_or(Value::Null),
            None => Value::Null,
        };
        Ok(Self {
            stream: stream.delivery_stream_name.clone(),
            processors,
            transform,
            partitioned: s3.dynamic_partitioning_enabled(),
            max_partitions: stream.hydrant.max_partitions,
            catalog,
        })
    }

    /// One shard's stages (each gets its own transform instance).
    fn stages(
        &self,
        namer: &Arc<ObjectNamer>,
        rules: KeyRules,
        version: u64,
    ) -> Result<Stages, String> {
        Ok(Stages {
            processors: self.processors.clone(),
            transform: self.transform.as_ref().map(|(module, context, limits, spec)| {
                TransformStage {
                    stream: self.stream.clone(),
                    transform: Transform::new(module, context.clone(), *limits),
                    lambda_arn: spec.lambda_arn.clone(),
                    retries: spec.number_of_retries,
                    chunk_bytes: spec.buffer_size_bytes(),
                    chunk_interval_ms: i64::from(spec.buffer_interval_seconds) * 1000,
                }
            }),
            partitioning: self.partitioned.then(|| {
                Partitioning::for_prefix(namer.clone(), self.max_partitions, rules, version)
            }),
            catalog: self.catalog.clone(),
        })
    }
}

/// The process-wide WebAssembly engine (compiled modules are cached in it).
fn transform_engine() -> Result<&'static TransformEngine, String> {
    static ENGINE: std::sync::OnceLock<Result<TransformEngine, String>> =
        std::sync::OnceLock::new();
    ENGINE.get_or_init(TransformEngine::new).as_ref().map_err(Clone::clone)
}
