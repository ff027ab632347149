//! Running Hydrant: open every stream's log, start its delivery workers, serve the API, and
//! stop cleanly on SIGINT / SIGTERM.

use std::fs::File;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{self, AppState};
use crate::config::Config;
use crate::core::DiskBudget;
use crate::streams::{StartError, Streams};
use crate::telemetry::Metrics;

/// Errors that stop the server from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot use data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("data directory {path} is in use by another hydrant process (its lock file is held)")]
    Locked { path: String },
    #[error(transparent)]
    Stream(#[from] StartError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
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
    shutdown: watch::Sender<bool>,
    _lock: File,
}

impl Hydrant {
    /// Opens the data directory and every configured stream, and starts delivery.
    pub fn start(config: &Config) -> Result<Self, ServerError> {
        let dir = &config.data_dir;
        let data_dir_error =
            |source| ServerError::DataDir { path: dir.display().to_string(), source };
        std::fs::create_dir_all(dir).map_err(data_dir_error)?;
        let lock = File::create(dir.join("LOCK")).map_err(data_dir_error)?;
        if lock.try_lock().is_err() {
            return Err(ServerError::Locked { path: dir.display().to_string() });
        }
        let budget = DiskBudget::new(config.storage.max_bytes);
        let metrics = Metrics::global();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let streams = Streams::open(config, &budget, &metrics, &shutdown_rx)?;
        let verifier = api::Verifier::from_config(&config.auth, &config.region);
        let state = AppState::new(Arc::new(streams), metrics).with_auth(verifier);
        Ok(Self { state, shutdown, _lock: lock })
    }

    /// Stops delivery workers (an in-flight write finishes or is abandoned; either way the
    /// checkpoint tells the next start where to resume) and closes the logs.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let streams = self.state.streams.clone();
        drop(self.state);
        let _ = tokio::task::spawn_blocking(move || streams.join_workers()).await;
    }
}

/// Serves (HTTPS when `tls` is configured) until SIGINT or SIGTERM.
pub async fn run(config: Config) -> Result<(), ServerError> {
    // Load the certificate before opening anything, so a bad file fails fast.
    let tls = config.tls.as_ref().map(crate::tls::server_config).transpose()?;
    let hydrant = Hydrant::start(&config)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Listen { addr: config.listen, source })?;
    let addr = listener.local_addr().map_err(ServerError::Serve)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let auth = if hydrant.state.auth.is_some() { "sigv4" } else { "none" };
    tracing::info!(%addr, data_dir = %config.data_dir.display(), streams = hydrant.state.streams.names().len(),
        auth, "hydrant listening; Firehose endpoint is {scheme}://{addr}");
    let app = api::router(hydrant.state.clone());
    match tls {
        Some(tls) => {
            let listener =
                crate::tls::TlsListener::new(listener, tls).map_err(ServerError::Serve)?;
            axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await
        }
        None => axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await,
    }
    .map_err(ServerError::Serve)?;
    tracing::info!("shutting down: finishing deliveries in flight");
    hydrant.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
