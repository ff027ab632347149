//! HTTPS for the API: load the configured certificate and key (`tls: { cert, key }`) into a
//! rustls server configuration. The handshakes themselves run in [`crate::listener`], each in
//! its connection's task and within `http.header_timeout_seconds`, so a client that connects
//! and never finishes its handshake holds up nobody else.
//!
//! The crypto provider is aws-lc-rs (the one object_store and reqwest already use), chosen
//! explicitly so no process-wide default has to be installed. Only HTTP/1.1 is offered over
//! ALPN, because that is what the API serves.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use crate::config::TlsConfig;

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
