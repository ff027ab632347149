//! HTTPS for the API: load the configured certificate and key (`tls: { cert, key }`) into a
//! rustls server configuration, and accept TLS connections for `axum::serve`.
//!
//! The crypto provider is aws-lc-rs (the one object_store and reqwest already use), chosen
//! explicitly so no process-wide default has to be installed. Only HTTP/1.1 is offered over
//! ALPN, because that is what the API serves.
//!
//! Handshakes run in their own tasks with a deadline, so a client that connects and never
//! finishes its handshake holds up nobody else. Dropping the [`TlsListener`] (which
//! `axum::serve` does when graceful shutdown begins) stops accepting new connections.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;

/// How long a client may take to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Completed handshakes waiting for the server to take them.
const ACCEPT_QUEUE: usize = 64;

/// Why the certificate or key cannot be used. Each message names the file and what to do;
/// [`TlsError::field`] is the config field it belongs to.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read { field: &'static str, path: PathBuf, source: io::Error },
    #[error(
        "{} holds no certificate; expected PEM with -----BEGIN CERTIFICATE----- (the server \
         certificate first, then any intermediates)", path.display()
    )]
    NoCertificate { path: PathBuf },
    #[error(
        "{} holds no private key; expected an unencrypted PEM key: BEGIN PRIVATE KEY (PKCS#8), \
         BEGIN RSA PRIVATE KEY or BEGIN EC PRIVATE KEY", path.display()
    )]
    NoKey { path: PathBuf },
    #[error("{} is not valid PEM: {reason}", path.display())]
    Pem { field: &'static str, path: PathBuf, reason: String },
    #[error(
        "the private key in {} cannot be used with the certificate in {}: {reason}; check that \
         tls.key is the key the certificate was issued for",
        key.display(), cert.display()
    )]
    Unusable { cert: PathBuf, key: PathBuf, reason: String },
}

impl TlsError {
    /// The config field at fault: `tls.cert` or `tls.key`.
    pub fn field(&self) -> &'static str {
        match self {
            TlsError::Read { field, .. } | TlsError::Pem { field, .. } => field,
            TlsError::NoCertificate { .. } => "tls.cert",
            TlsError::NoKey { .. } | TlsError::Unusable { .. } => "tls.key",
        }
    }
}

/// Loads the certificate chain and key, checks that they belong together, and builds the
/// server configuration.
pub fn server_config(tls: &TlsConfig) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = load_certs(&tls.cert)?;
    let key = load_key(&tls.key)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let unusable = |e: rustls::Error| TlsError::Unusable {
        cert: tls.cert.clone(),
        key: tls.key.clone(),
        reason: e.to_string(),
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(unusable)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(unusable)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Every problem with the configured files: each file on its own, then (when both load)
/// whether they belong together. Empty when [`server_config`] would succeed.
pub fn problems(tls: &TlsConfig) -> Vec<TlsError> {
    match (load_certs(&tls.cert), load_key(&tls.key)) {
        (Ok(_), Ok(_)) => server_config(tls).err().into_iter().collect(),
        (certs, key) => certs.err().into_iter().chain(key.err()).collect(),
    }
}

fn read(field: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { field, path: path.to_owned(), source })
}

fn pem_error(field: &'static str, path: &Path, e: pem::Error) -> TlsError {
    TlsError::Pem { field, path: path.to_owned(), reason: e.to_string() }
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let text = read("tls.cert", path)?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error("tls.cert", path, e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: path.to_owned() });
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let text = read("tls.key", path)?;
    match PrivateKeyDer::from_pem_slice(&text) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => Err(TlsError::NoKey { path: path.to_owned() }),
        Err(e) => Err(pem_error("tls.key", path, e)),
    }
}

/// A listener for `axum::serve` that hands out connections whose TLS handshake completed.
pub struct TlsListener {
    incoming: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp`. Must be called inside a Tokio runtime.
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> io::Result<Self> {
        let local_addr = tcp.local_addr()?;
        let (tx, incoming) = mpsc::channel(ACCEPT_QUEUE);
        tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), tx));
        Ok(Self { incoming, local_addr })
    }
}

/// Accepts TCP connections until the listener is dropped; each handshake runs in its own task.
async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let accepted = tokio::select! {
            _ = tx.closed() => return,
            accepted = tcp.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(connection) => connection,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors, most likely: give connections time to close.
                tracing::error!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "tls handshake failed"),
                Err(_) => tracing::debug!(%peer, "tls handshake timed out"),
            }
        });
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(connection) => connection,
            // The accept loop only ends once this listener is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = include_str!("testdata/tls/cert.pem");
    const KEY: &str = include_str!("testdata/tls/key.pem");
    const OTHER_KEY: &str = include_str!("testdata/tls/other-key.pem");

    fn files(cert: &str, key: &str) -> (tempfile::TempDir, TlsConfig) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
        std::fs::write(dir.path().join("key.pem"), key).unwrap();
        let config =
            TlsConfig { cert: dir.path().join("cert.pem"), key: dir.path().join("key.pem") };
        (dir, config)
    }

    fn error(cert: &str, key: &str) -> TlsError {
        let (_dir, config) = files(cert, key);
        server_config(&config).expect_err("should be rejected")
    }

    #[test]
    fn a_matching_certificate_and_key_load() {
        let (_dir, config) = files(CERT, KEY);
        let server = server_config(&config).unwrap();
        assert_eq!(server.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn a_missing_file_names_the_field_and_the_path() {
        let config =
            TlsConfig { cert: "/nonexistent/cert.pem".into(), key: "/nonexistent/k".into() };
        let e = server_config(&config).unwrap_err();
        assert_eq!(e.field(), "tls.cert");
        assert!(e.to_string().contains("cannot read /nonexistent/cert.pem"), "{e}");
        let (_dir, mut config) = files(CERT, KEY);
        config.key = "/nonexistent/k".into();
        let e = server_config(&config).unwrap_err();
        assert_eq!(e.field(), "tls.key");
    }

    #[test]
    fn problems_with_both_files_are_reported_together() {
        let config =
            TlsConfig { cert: "/nonexistent/cert.pem".into(), key: "/nonexistent/k".into() };
        let fields: Vec<_> = problems(&config).iter().map(TlsError::field).collect();
        assert_eq!(fields, ["tls.cert", "tls.key"]);
        let (_dir, config) = files(CERT, KEY);
        assert!(problems(&config).is_empty());
        let (_dir, config) = files(CERT, OTHER_KEY);
        assert_eq!(problems(&config).len(), 1);
    }

    #[test]
    fn a_cert_file_without_certificates_is_rejected_as_tls_cert() {
        for text in ["", "just text\n", KEY] {
            let e = error(text, KEY);
            assert_eq!(e.field(), "tls.cert");
            assert!(e.to_string().contains("holds no certificate"), "{e}");
        }
    }

    #[test]
    fn a_key_file_without_a_key_is_rejected_as_tls_key() {
        for text in ["", "just text\n", CERT] {
            let e = error(CERT, text);
            assert_eq!(e.field(), "tls.key");
            assert!(e.to_string().contains("holds no private key"), "{e}");
        }
    }

    #[test]
    fn broken_pem_is_rejected_with_the_field() {
        let truncated = &CERT[..CERT.len() - 30];
        let e = error(truncated, KEY);
        assert_eq!(e.field(), "tls.cert");
        assert!(e.to_string().contains("not valid PEM"), "{e}");
    }

    #[test]
    fn a_key_that_does_not_belong_to_the_certificate_is_rejected() {
        let e = error(CERT, OTHER_KEY);
        assert_eq!(e.field(), "tls.key");
        assert!(e.to_string().contains("cannot be used with the certificate"), "{e}");
    }

    #[test]
    fn a_garbage_key_inside_valid_pem_is_rejected() {
        let garbage = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let e = error(CERT, garbage);
        assert_eq!(e.field(), "tls.key");
    }
}
