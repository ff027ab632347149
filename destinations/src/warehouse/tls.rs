//! TLS to the warehouse, with PostgreSQL's `sslmode` semantics (libpq and pgJDBC):
//!
//! | `sslmode` | encrypts | verifies the certificate chain | verifies the host name |
//! |---|---|---|---|
//! | `disable` | no | - | - |
//! | `allow`, `prefer` | if the server offers TLS | no | no |
//! | `require` | yes | only when `sslrootcert` is given (then as `verify-ca`) | no |
//! | `verify-ca` | yes | yes | no |
//! | `verify-full` | yes | yes | yes |
//!
//! The chain is checked against `sslrootcert` (a PEM file of CA certificates) when given, or
//! else against the system's roots. Every handshake signature is checked in every mode.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode;

/// `sslmode`, as PostgreSQL spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    #[default]
    Disable,
    /// `allow` and `prefer`: TLS when the server offers it, without checks.
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl TlsMode {
    /// Parses an `sslmode` value.
    pub fn parse(value: &str) -> Result<Self, String> {
        Ok(match value.to_ascii_lowercase().as_str() {
            "disable" => Self::Disable,
            "allow" | "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => {
                return Err(format!(
                    "sslmode={value:?} is not one of disable, allow, prefer, require, verify-ca, \
                     verify-full"
                ))
            }
        })
    }

    /// What tokio-postgres negotiates.
    pub fn ssl_mode(self) -> SslMode {
        match self {
            Self::Disable => SslMode::Disable,
            Self::Prefer => SslMode::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => SslMode::Require,
        }
    }
}

/// A warehouse connection's TLS settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsSettings {
    pub mode: TlsMode,
    /// `sslrootcert`: CA certificates (PEM) to check the server's chain against.
    pub root_cert: Option<PathBuf>,
}

/// Why TLS to the warehouse cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("sslrootcert {path}: {message}")]
    RootCert { path: String, message: String },
    #[error("cannot set up TLS: {0}")]
    Setup(String),
}

impl TlsSettings {
    /// The connector for tokio-postgres.
    pub fn connector(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match (self.mode, &self.root_cert) {
            (TlsMode::Disable | TlsMode::Prefer, _) | (TlsMode::Require, None) => {
                Arc::new(Unverified(provider.clone()))
            }
            (TlsMode::Require | TlsMode::VerifyCa, root) => {
                Arc::new(ChainOnly(self.webpki(root.as_deref(), &provider)?))
            }
            (TlsMode::VerifyFull, root) => self.webpki(root.as_deref(), &provider)?,
        };
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }

    fn webpki(
        &self,
        root: Option<&Path>,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
        let mut roots = RootCertStore::empty();
        match root {
            Some(path) => {
                let error = |message: String| TlsError::RootCert {
                    path: path.display().to_string(),
                    message,
                };
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| error(e.to_string()))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| error(e.to_string()))?;
                if certs.is_empty() {
                    return Err(error("holds no PEM certificate".into()));
                }
                for cert in certs {
                    roots.add(cert).map_err(|e| error(e.to_string()))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(TlsError::Setup(
                        "no system CA certificates were found; give sslrootcert=<CA file>".into(),
                    ));
                }
            }
        }
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| TlsError::Setup(e.to_string()))
    }
}

/// `verify-ca`: the chain must lead to a trusted root; the name in it is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        // The name is checked after the chain: a name error means the chain was good.
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(Error::InvalidCertificate(CertificateError::NotValidForName))
            | Err(Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `require` without `sslrootcert` (and `prefer`): encrypted, the certificate not checked,
/// as libpq does; the handshake's signatures still are.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_values_are_postgresqls() {
        for (value, mode) in [
            ("disable", TlsMode::Disable),
            ("prefer", TlsMode::Prefer),
            ("ALLOW", TlsMode::Prefer),
            ("require", TlsMode::Require),
            ("verify-ca", TlsMode::VerifyCa),
            ("verify-full", TlsMode::VerifyFull),
        ] {
            assert_eq!(TlsMode::parse(value).unwrap(), mode, "{value}");
        }
        let e = TlsMode::parse("verify_full").unwrap_err();
        assert!(e.contains("verify-full"), "{e}");
    }

    #[test]
    fn a_root_cert_file_that_holds_no_certificate_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let settings = TlsSettings { mode: TlsMode::VerifyFull, root_cert: Some(path) };
        let Err(e) = settings.connector() else { panic!("a file without certificates") };
        let e = e.to_string();
        assert!(e.starts_with("sslrootcert ") && e.contains("no PEM certificate"), "{e}");
        let missing = TlsSettings {
            mode: TlsMode::VerifyCa,
            root_cert: Some(dir.path().join("missing.pem")),
        };
        let Err(e) = missing.connector() else { panic!("a missing file") };
        assert!(e.to_string().contains("missing.pem"), "{e}");
    }
}
