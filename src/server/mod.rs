//! Running Hydrant: open every stream's log, start its delivery workers, serve the API,
//! re-read the config file on SIGHUP, and stop gracefully on SIGINT / SIGTERM.
//!
//! Graceful stop: the listeners close (no new connections), requests in flight finish, every
//! stream drains (its open buffers are sealed early and delivered) and checkpoints are stored;
//! all within `shutdown_timeout_seconds` from the signal. Past the deadline, uploads still in
//! flight are abandoned and their records stay in the log for the next start. A second signal
//! abandons them at once.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

mod core;

use self::core::Core;
use crate::api::{self, AppState};
use crate::control::{ControlPlane, StartupError};
use crate::listener::{self, Listener};
use crate::pipeline::BuildContext;
use crate::plan::ServerPlan;
use crate::telemetry::Metrics;

/// Errors that stop the server from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot use data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("data directory {path} is in use by another hydrant process (its lock file is held)")]
    Locked { path: String },
    #[error(transparent)]
    Stream(#[from] StartupError),
    #[error("cannot run transforms: {0}")]
    Engine(#[from] crate::wasm_host::EngineError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("cannot install the {signal} handler: {source}")]
    Signal { signal: &'static str, source: std::io::Error },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    /// `core.type: jetstream`: the cluster cannot be used (the text names the field).
    #[error("{0}")]
    Cluster(String),
    #[error("cannot open the Kinesis streams: {0}")]
    Kinesis(#[from] crate::kinesis::KinesisError),
    #[error("storage.encryption: {0}")]
    KinesisKeys(String),
    #[error("cannot open the replays: {0}")]
    Replays(#[from] crate::replay::ReplayError),
    #[error("{}: {source}", source.field())]
    Tls {
        #[from]
        source: crate::tls::TlsError,
    },
}

/// A started Hydrant: streams open, workers running. Dropping it without `shutdown` is what a
/// crash looks like to the log: nothing acknowledged is lost either way.
pub struct Hydrant {
    pub state: AppState,
    /// Stops retention's upkeep.
    retention: tokio::sync::watch::Sender<bool>,
    shutdown_timeout: Duration,
    _lock: File,
}

impl Hydrant {
    /// Opens the data directory and every stream (the config file's, from their plans, and
    /// the API's), and starts delivery. Call it inside a Tokio runtime.
    pub fn start(server: &ServerPlan) -> Result<Self, ServerError> {
        let config = server.config();
        let dir = &config.data_dir;
        let data_dir_error =
            |source| ServerError::DataDir { path: dir.display().to_string(), source };
        crate::log::embedded::dirs::create_dir_all(dir).map_err(data_dir_error)?;
        let lock = File::create(dir.join("LOCK")).map_err(data_dir_error)?;
        if lock.try_lock().is_err() {
            return Err(ServerError::Locked { path: dir.display().to_string() });
        }
        let core = Core::open(config)?;
        let metrics = Metrics::global();
        // One WebAssembly engine per server: every stream's transforms are compiled in it.
        let build = BuildContext::new(crate::wasm_host::TransformEngine::new()?);
        let (store, definitions, pressure) = (core.store, core.definitions, core.pressure);
        // The Kinesis Data Streams API, on the embedded core and on a cluster alike.
        let kinesis = Arc::new(blocking(|| open_kinesis(config, store.clone(), core.kinesis))?);
        let reshards = metrics.clone();
        kinesis.start_upkeep(Arc::new(move |stream, decision| {
            reshards.kinesis_reshard(stream, decision.reason);
        }));
        kinesis.start_following();
        let sources: Arc<dyn crate::pipeline::SourceLogs> =
            Arc::new(KinesisSources(kinesis.clone()));
        let sources = Some(sources);
        let logs = crate::pipeline::Logs { store, sources };
        let open = || ControlPlane::open(server, logs, definitions, &metrics, build);
        let control = Arc::new(blocking(open)?);
        if let Some(embedded) = &core.embedded {
            // After every stream found its directory (a name starting with `.` may have moved).
            embedded.remove_trash();
        }
        control.resume_deletions(control.pending_deletions());
        control.follow_shared_changes();
        let replays = crate::replay::Replays::open(control.clone(), dir.join("replays"))?;
        replays.resume();
        let retention = tokio::sync::watch::channel(false).0;
        tokio::spawn(crate::replay::keep_retention(
            control.clone(),
            pressure,
            retention.subscribe(),
        ));
        let verifier = api::Verifier::from_config(&config.auth, &config.region);
        let state = (AppState::new(control, metrics).with_auth(verifier).with_http(&config.http))
            .with_kinesis(kinesis)
            .with_replays(replays);
        Ok(Self {
            state,
            retention,
            shutdown_timeout: Duration::from_secs(config.shutdown_timeout_seconds),
            _lock: lock,
        })
    }

    /// Drains every stream (delivering what is buffered) within `shutdown_timeout_seconds`,
    /// then stops; what is not delivered by then stays in the log.
    pub async fn shutdown(self) {
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        self.shutdown_by(deadline).await;
    }

    async fn shutdown_by(self, deadline: tokio::time::Instant) {
        let control = self.state.control.clone();
        let kinesis = self.state.kinesis.clone();
        // Replays stop where they are and resume at the next start.
        if let Some(replays) = &self.state.replays {
            replays.stop();
        }
        self.retention.send_replace(true);
        drop(self.state);
        control.shutdown(deadline).await;
        if let Some(kinesis) = kinesis {
            kinesis.close().await;
        }
    }
}

/// Runs `open`, which blocks (files, or the cluster): on a multi-thread runtime's worker, its
/// other tasks (a cluster connection's among them) go to another thread meanwhile.
fn blocking<T>(open: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(open),
        _ => open(),
    }
}

/// The server's Kinesis streams as the logs `KinesisStreamAsSource` delivery streams read.
#[derive(Debug)]
struct KinesisSources(Arc<crate::kinesis::KinesisStreams>);

impl crate::pipeline::SourceLogs for KinesisSources {
    fn kinesis(
        &self,
        delivery: &str,
        stream: &str,
    ) -> Result<Arc<dyn crate::log::StreamLog>, String> {
        // A stream created through another node of a cluster moments ago is looked up.
        let kinesis = futures::executor::block_on(self.0.get(stream)).map_err(|e| {
            format!("{e}: create it with the Kinesis API (CreateStream) before the delivery stream")
        })?;
        Ok(Arc::new(kinesis.reader(delivery)))
    }
}

/// The Kinesis streams `catalog` lists, bounded by `limits:`.
fn open_kinesis(
    config: &crate::config::Config,
    store: Arc<dyn crate::log::LogStore>,
    catalog: Arc<dyn crate::kinesis::catalog::Catalog>,
) -> Result<crate::kinesis::KinesisStreams, ServerError> {
    let limits = crate::kinesis::KinesisLimits {
        max_streams: config.limits.max_streams,
        max_shards_per_stream: config.limits.max_shards_per_stream,
        max_shards: config.limits.max_shards,
    };
    let keys = (config.storage.encryption.as_ref())
        .map(|c| c.key_ring(std::path::Path::new("/")))
        .transpose()
        .map_err(|e| ServerError::KinesisKeys(e.to_string()))?
        .map(Arc::new);
    let open = crate::kinesis::KinesisStreams::open(catalog, store, limits, keys);
    Ok(futures::executor::block_on(open)?)
}

/// Where SIGHUP re-reads the configuration from.
#[derive(Debug, Clone)]
pub struct ReloadSource {
    /// The config file.
    pub path: PathBuf,
    /// `--listen`, which overrides the file's `listen`.
    pub listen: Option<std::net::SocketAddr>,
    /// `--watch-config`: also reload when the file's content changes.
    pub watch: bool,
}

/// How often `--watch-config` reads the file. Content, not mtime, is compared: an edit within
/// the same second, or a file replaced by a rename, is seen too.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// Serves (HTTPS when `tls` is configured) until SIGINT or SIGTERM; SIGHUP reloads
/// `reload`'s file (ignored without one).
pub async fn run(server: ServerPlan, reload: Option<ReloadSource>) -> Result<(), ServerError> {
    let config = server.config().clone();
    // Load the certificate before opening anything, so a bad file fails fast.
    let tls = config.tls.as_ref().map(crate::tls::server_config).transpose()?;
    let installer = |kind: SignalKind, name: &'static str| {
        signal(kind).map_err(|source| ServerError::Signal { signal: name, source })
    };
    let mut hangup = installer(SignalKind::hangup(), "SIGHUP")?;
    let mut terminate = installer(SignalKind::terminate(), "SIGTERM")?;
    let mut interrupt = installer(SignalKind::interrupt(), "SIGINT")?;

    // Starting may wait for the NATS cluster (cluster mode): a signal meanwhile ends the
    // process instead of waiting with it. The start runs off the runtime's workers, as it blocks.
    let starting = tokio::task::spawn_blocking(move || Hydrant::start(&server));
    let hydrant = tokio::select! {
        started = starting => started.map_err(|e| ServerError::Serve(std::io::Error::other(e)))??,
        _ = terminate.recv() => {
            tracing::info!(signal = "SIGTERM", "stopped while starting");
            return Ok(());
        }
        _ = interrupt.recv() => {
            tracing::info!(signal = "SIGINT", "stopped while starting");
            return Ok(());
        }
    };
    let bind = |addr: std::net::SocketAddr| async move {
        TcpListener::bind(addr).await.map_err(|source| ServerError::Listen { addr, source })
    };
    let tcp = bind(config.listen).await?;
    let addr = tcp.local_addr().map_err(ServerError::Serve)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let auth = if hydrant.state.auth.is_some() { "sigv4" } else { "none" };
    let mut listeners = Vec::new();
    let console = crate::console::placement(&config, addr);
    let with_console = |router: axum::Router, here: crate::console::Placement| {
        if console == here {
            router.merge(crate::console::router(hydrant.state.clone()))
        } else {
            router
        }
    };
    match config.admin_listen {
        Some(admin) => {
            let admin_tcp = bind(admin).await?;
            let admin = admin_tcp.local_addr().map_err(ServerError::Serve)?;
            let router = api::admin_router(hydrant.state.clone());
            let router = with_console(router, crate::console::Placement::Admin);
            listeners.push(Listener::new("admin", admin_tcp, None, router, &config.http));
            tracing::info!(%admin, "admin listener: /metrics and /readyz are served on http://{admin}");
            if console == crate::console::Placement::Admin {
                tracing::info!(%admin, "console: http://{admin}/console/");
            }
            let router = api::api_router(hydrant.state.clone());
            listeners.push(Listener::new("api", tcp, tls, router, &config.http));
        }
        None => {
            let router = if addr.ip().is_loopback() {
                api::router(hydrant.state.clone())
            } else {
                tracing::info!(%addr, "/metrics and /readyz are served on the API port, /readyz \
                    without its detail lines (/metrics names every stream); set admin_listen \
                    (e.g. 127.0.0.1:4574) to serve them whole on a port of their own");
                api::shared_router(hydrant.state.clone())
            };
            let router = with_console(router, crate::console::Placement::Listen);
            match console {
                crate::console::Placement::Listen => {
                    tracing::info!(%addr, "console: {scheme}://{addr}/console/")
                }
                _ if config.console.enabled => tracing::info!(%addr,
                    "the console is not served: {addr} is reachable from other machines; set \
                     admin_listen (e.g. 127.0.0.1:4574) to serve it there, or \
                     console.on_shared_listen: true"),
                _ => {}
            }
            listeners.push(Listener::new("api", tcp, tls, router, &config.http));
        }
    }
    tracing::info!(%addr, data_dir = %config.data_dir.display(), streams = hydrant.state.registry.names().len(),
        auth, "hydrant listening; Firehose endpoint is {scheme}://{addr}");
    if hydrant.state.auth.is_none() && !addr.ip().is_loopback() {
        tracing::warn!(%addr,
            "auth mode is none on an address other machines can reach: anyone who can connect may \
             put records, and create, change and delete delivery streams; set auth: {{ mode: sigv4 }} \
             with credentials, or listen on 127.0.0.1");
    }
    let control = hydrant.state.control.clone();
    let (stop, stopped) = watch::channel(false);
    let graceful = async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|s| *s).await;
    };
    let metrics = hydrant.state.metrics.clone();
    let mut server = tokio::spawn(listener::serve(listeners, metrics, graceful));

    let reloads = Arc::new(tokio::sync::Mutex::new(()));
    let watcher = reload.clone().filter(|source| source.watch).map(|source| {
        tracing::info!(path = %source.path.display(), interval_seconds = WATCH_INTERVAL.as_secs(),
            "watching the configuration file; a change reloads it like SIGHUP");
        tokio::spawn(watch_config(control.clone(), source, reloads.clone()))
    });
    let signal_name = loop {
        tokio::select! {
            _ = hangup.recv() => {
                match &reload {
                    Some(source) => {
                        let (control, source, reloads) = (control.clone(), source.clone(), reloads.clone());
                        tokio::spawn(async move {
                            let _one_at_a_time = reloads.lock().await;
                            reload_config(&control, &source, "SIGHUP").await;
                        });
                    }
                    None => tracing::warn!("SIGHUP ignored: hydrant was started without --config, there is no file to reload"),
                }
            }
            _ = terminate.recv() => break "SIGTERM",
            _ = interrupt.recv() => break "SIGINT",
            result = &mut server => {
                // The server stopped by itself (it only does on a failure).
                let error = match result {
                    Ok(Ok(())) => std::io::Error::other("the listener closed"),
                    Ok(Err(e)) => e,
                    Err(e) => std::io::Error::other(e),
                };
                hydrant.shutdown().await;
                return Err(ServerError::Serve(error));
            }
        }
    };

    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(config.shutdown_timeout_seconds);
    tracing::info!(
        signal = signal_name,
        timeout_seconds = config.shutdown_timeout_seconds,
        "shutting down: finishing requests in flight, then delivering every buffered record"
    );
    let _ = stop.send(true);
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    // A second signal: stop waiting, abandon uploads in flight.
    let second = {
        let control = control.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            tracing::warn!(
                "second signal: abandoning deliveries in flight (records stay in the log)"
            );
            control.abort();
        })
    };
    match tokio::time::timeout_at(deadline, &mut server).await {
        Ok(_) => {}
        Err(_) => {
            tracing::warn!(
                "requests still in flight at shutdown_timeout_seconds; closing their connections"
            );
            server.abort();
        }
    }
    hydrant.shutdown_by(deadline).await;
    second.abort();
    tracing::info!("stopped");
    Ok(())
}

/// `--watch-config`: reloads whenever the file's content differs from what was last seen. An
/// unreadable file (mid-replace) is skipped until the next look.
async fn watch_config(
    control: Arc<ControlPlane>,
    source: ReloadSource,
    reloads: Arc<tokio::sync::Mutex<()>>,
) {
    let mut seen = tokio::fs::read(&source.path).await.ok();
    loop {
        tokio::time::sleep(WATCH_INTERVAL).await;
        let Ok(now) = tokio::fs::read(&source.path).await else { continue };
        if seen.as_ref() != Some(&now) {
            seen = Some(now);
            let _one_at_a_time = reloads.lock().await;
            reload_config(&control, &source, "the file changed").await;
        }
    }
}

/// SIGHUP or a watched change: loads and validates the file like `hydrant validate`; on
/// success applies it.
async fn reload_config(control: &Arc<ControlPlane>, source: &ReloadSource, trigger: &str) {
    let path = source.path.display().to_string();
    tracing::info!(path = %path, "{trigger}: reloading the configuration");
    let file = source.path.clone();
    let loaded = tokio::task::spawn_blocking(move || crate::plan::load(&file)).await;
    let mut loaded = match loaded {
        Ok(Ok(loaded)) => loaded,
        Ok(Err(e)) => {
            tracing::error!(path = %path, "{path}: invalid configuration; the running configuration stays");
            for line in e.to_string().lines() {
                tracing::error!(path = %path, "{line}");
            }
            return;
        }
        Err(e) => {
            tracing::error!(path = %path, error = %e, "reloading failed; the running configuration stays");
            return;
        }
    };
    if let Some(listen) = source.listen {
        loaded = loaded.with_listen(listen);
    }
    match control.reload(loaded).await {
        Ok(changes) if changes.is_empty() => {
            tracing::info!(path = %path, "configuration reloaded: nothing changed")
        }
        Ok(changes) => {
            for change in changes {
                match change {
                    crate::control::reload::Change::Failed { .. } => {
                        tracing::error!(path = %path, "{change}")
                    }
                    crate::control::reload::Change::NeedsRestart { .. } => {
                        tracing::warn!(path = %path, "{change}")
                    }
                    _ => tracing::info!(path = %path, "{change}"),
                }
            }
        }
        Err(crate::control::ReloadError::Conflicts(issues)) => {
            tracing::error!(path = %path, "{path}: the configuration conflicts with streams created through the API; the running configuration stays");
            for issue in issues {
                tracing::error!(path = %path, "{issue}");
            }
        }
    }
}
