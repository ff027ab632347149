//! The connection to a NATS JetStream cluster, and the checks that the servers can hold
//! Hydrant's logs: version 2.10 or later (compare-and-set on replicated key-value buckets is
//! atomic from 2.9.21, `sync_interval` and stream metadata from 2.10), JetStream enabled, and
//! messages as large as Firehose's largest record.
//!
//! Errors name the config field to look at (`core.servers`, `core.credentials_file`, ...):
//! the options come from the `core:` block, which this module does not read itself (the log
//! sits below the config).

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::{ConnectErrorKind, ConnectOptions};

/// The smallest `max_payload` the servers may have: Firehose's largest record (1,000 KiB)
/// plus the headers of a log message.
pub const MIN_MAX_PAYLOAD: usize = 1 << 20;
/// How long one attempt to reach a server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Every JetStream API call and publish acknowledgement has this deadline (§5 of the design:
/// nothing may wait past a put's deadline).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Publishes in flight per connection before a publisher waits.
const MAX_ACKS_IN_FLIGHT: usize = 4096;

/// How to reach the cluster (from `core:`).
#[derive(Clone)]
pub struct NatsOptions {
    /// `nats://host:port` or `tls://host:port`.
    pub servers: Vec<String>,
    pub auth: NatsAuth,
    pub tls: Option<NatsTls>,
    /// The connection's name, shown by the servers (`hydrant <node id>`).
    pub name: String,
    /// Use only `servers`, not the other servers of the cluster that they announce (tests that
    /// cut a node off through a proxy; a node is better off reconnecting to any server).
    pub only_listed: bool,
}

impl std::fmt::Debug for NatsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsOptions")
            .field("servers", &self.servers_text())
            .field("auth", &self.auth.field())
            .field("tls", &self.tls)
            .field("name", &self.name)
            .field("only_listed", &self.only_listed)
            .finish()
    }
}

/// How the node authenticates (`core.credentials_file`, `core.nkey_seed_file`, `core.token`,
/// `core.user` and `core.password`).
#[derive(Clone, Default)]
pub enum NatsAuth {
    #[default]
    None,
    CredentialsFile(PathBuf),
    NkeySeedFile(PathBuf),
    Token(String),
    UserPassword {
        user: String,
        password: String,
    },
}

impl NatsAuth {
    /// The config field that holds it, for errors.
    fn field(&self) -> &'static str {
        match self {
            NatsAuth::None => "servers",
            NatsAuth::CredentialsFile(_) => "credentials_file",
            NatsAuth::NkeySeedFile(_) => "nkey_seed_file",
            NatsAuth::Token(_) => "token",
            NatsAuth::UserPassword { .. } => "user",
        }
    }
}

/// TLS to the servers (`core.tls`).
#[derive(Debug, Clone, Default)]
pub struct NatsTls {
    pub ca: Option<PathBuf>,
    /// Client certificate and key.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// Why the node cannot use the cluster. The text names the config field to check; it may name
/// the node's files and servers, so it is for the node's log, never for API callers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NatsError {
    #[error("core.servers: cannot reach a NATS server of {servers}: {reason}")]
    Unreachable { servers: String, reason: String },
    #[error("core.{field}: the NATS servers {servers} refused this node's credentials: {reason}")]
    Refused { field: &'static str, servers: String, reason: String },
    #[error("core.tls: TLS to the NATS servers {servers} failed: {reason}")]
    Tls { servers: String, reason: String },
    #[error("core.{field}: cannot read {}: {source}", path.display())]
    File { field: &'static str, path: PathBuf, source: std::io::Error },
    #[error(
        "core.servers: NATS server {server} is version {version}; Hydrant needs 2.10 or later \
         (atomic compare-and-set on replicated key-value buckets, sync_interval): upgrade the \
         NATS servers"
    )]
    Version { server: String, version: String },
    #[error(
        "core.servers: JetStream is not available on NATS server {server} for this node's \
         account ({reason}): enable it (jetstream {{ store_dir: ... }}) on every server"
    )]
    NoJetStream { server: String, reason: String },
    #[error(
        "core.servers: NATS server {server} takes messages of at most {max_payload} bytes; \
         Hydrant needs {MIN_MAX_PAYLOAD} (Firehose's largest record and its headers): set \
         max_payload: 1MB or more on every server"
    )]
    MaxPayload { server: String, max_payload: usize },
}

impl NatsError {
    /// Whether trying again later can help (a server that is down or starting), rather than
    /// a change of configuration.
    pub fn is_transient(&self) -> bool {
        matches!(self, NatsError::Unreachable { .. } | NatsError::NoJetStream { .. })
    }
}

/// A connection to the cluster, checked.
#[derive(Clone)]
pub struct Nats {
    client: async_nats::Client,
    js: jetstream::Context,
}

impl std::fmt::Debug for Nats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let info = self.client.server_info();
        f.debug_struct("Nats")
            .field("server", &info.server_name)
            .field("version", &info.version)
            .field("state", &self.client.connection_state())
            .finish()
    }
}

impl Nats {
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The JetStream context: every API call and publish acknowledgement times out after
    /// [`REQUEST_TIMEOUT`].
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// The name and version of the server the connection is on now.
    pub fn server(&self) -> (String, String) {
        let info = self.client.server_info();
        (info.server_name, info.version)
    }
}

impl NatsOptions {
    fn servers_text(&self) -> String {
        let servers: Vec<String> = self.servers.iter().map(|s| redact_password(s)).collect();
        servers.join(",")
    }

    async fn connect_options(&self) -> Result<ConnectOptions, NatsError> {
        let read = |field: &'static str, path: &PathBuf| {
            std::fs::read_to_string(path)
                .map(|text| text.trim().to_string())
                .map_err(|source| NatsError::File { field, path: path.clone(), source })
        };
        let mut options = match &self.auth {
            NatsAuth::None => ConnectOptions::new(),
            NatsAuth::CredentialsFile(path) => {
                // Read it here for an error that names the field; async-nats parses it.
                let creds = read("credentials_file", path)?;
                ConnectOptions::with_credentials(&creds).map_err(|source| NatsError::File {
                    field: "credentials_file",
                    path: path.clone(),
                    source,
                })?
            }
            NatsAuth::NkeySeedFile(path) => {
                ConnectOptions::with_nkey(read("nkey_seed_file", path)?)
            }
            NatsAuth::Token(token) => ConnectOptions::with_token(token.clone()),
            NatsAuth::UserPassword { user, password } => {
                ConnectOptions::with_user_and_password(user.clone(), password.clone())
            }
        };
        if let Some(tls) = &self.tls {
            options = options.require_tls(true);
            if let Some(ca) = &tls.ca {
                options = options.add_root_certificates(ca.clone());
            }
            if let Some((cert, key)) = &tls.client {
                options = options.add_client_certificate(cert.clone(), key.clone());
            }
        }
        if self.only_listed {
            options = options.ignore_discovered_servers();
        }
        Ok(options
            .name(&self.name)
            .connection_timeout(CONNECT_TIMEOUT)
            .request_timeout(Some(REQUEST_TIMEOUT))
            .ping_interval(Duration::from_secs(5))
            // Once connected, reconnect for as long as the process runs: publishes fail with
            // timeouts meanwhile, which the log answers as Unavailable.
            .max_reconnects(None)
            .event_callback(|event| async move {
                use async_nats::Event;
                match event {
                    Event::Disconnected => tracing::warn!("nats connection lost, reconnecting"),
                    Event::Connected => tracing::info!("nats connection up"),
                    Event::SlowConsumer(sid) => {
                        tracing::warn!(subscription = sid, "nats slow consumer")
                    }
                    other => tracing::warn!(event = %other, "nats connection event"),
                }
            }))
    }

    /// One attempt: connects and checks the server it reached.
    pub async fn connect(&self) -> Result<Nats, NatsError> {
        let servers = self.servers_text();
        let addrs = self
            .servers
            .iter()
            .map(|s| s.parse::<async_nats::ServerAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| NatsError::Unreachable {
                servers: servers.clone(),
                reason: e.to_string(),
            })?;
        let options = self.connect_options().await?;
        let client = options.connect(addrs).await.map_err(|e| {
            let reason = e.to_string();
            match e.kind() {
                ConnectErrorKind::Authentication | ConnectErrorKind::AuthorizationViolation => {
                    NatsError::Refused {
                        field: self.auth.field(),
                        servers: servers.clone(),
                        reason,
                    }
                }
                ConnectErrorKind::Tls => NatsError::Tls { servers: servers.clone(), reason },
                _ => NatsError::Unreachable { servers: servers.clone(), reason },
            }
        })?;
        let js = jetstream::ContextBuilder::new()
            .timeout(REQUEST_TIMEOUT)
            .max_ack_inflight(MAX_ACKS_IN_FLIGHT)
            .backpressure_on_inflight(true)
            .build(client.clone());
        let info = client.server_info();
        let server = format!("{} ({}:{})", info.server_name, info.host, info.port);
        if !version_at_least(&info.version, 2, 10) {
            return Err(NatsError::Version { server, version: info.version });
        }
        if info.max_payload < MIN_MAX_PAYLOAD {
            return Err(NatsError::MaxPayload { server, max_payload: info.max_payload });
        }
        if let Err(e) = js.query_account().await {
            return Err(NatsError::NoJetStream { server, reason: e.to_string() });
        }
        Ok(Nats { client, js })
    }

    /// Connects, trying again while the servers cannot be reached (a node that starts before
    /// NATS does, or during an outage): each failure is logged with the field to check, then
    /// retried after 1 s, doubling up to 30 s. Errors that waiting cannot fix (credentials,
    /// TLS, an old server) are returned at once.
    pub async fn connect_retrying(&self) -> Result<Nats, NatsError> {
        let mut delay = Duration::from_secs(1);
        loop {
            match self.connect().await {
                Ok(nats) => return Ok(nats),
                Err(e) if e.is_transient() => {
                    tracing::error!(error = %e, retry_in_s = delay.as_secs(),
                        "cannot use the nats cluster yet, retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Whether a server's `version` (`2.15.1`, `2.10.0-beta.3`) is at least `major.minor`. A
/// version that does not parse is too old: refusing it names the version to the operator.
pub fn version_at_least(version: &str, major: u64, minor: u64) -> bool {
    let mut parts = version.trim_start_matches('v').split(['.', '-']);
    let mut next = || parts.next().and_then(|p| p.parse::<u64>().ok());
    match (next(), next()) {
        (Some(ma), Some(mi)) => (ma, mi) >= (major, minor),
        _ => false,
    }
}

/// `nats://user:pass@host` without its password.
fn redact_password(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
                format!("{scheme}://{user}:***@{host}")
            }
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_2_10_on_are_accepted() {
        for ok in ["2.10.0", "2.15.1", "v2.11.3", "2.12.0-RC.1", "3.0.0"] {
            assert!(version_at_least(ok, 2, 10), "{ok}");
        }
        for old in ["2.9.21", "2.9.10", "1.4.1", "", "dev", "2"] {
            assert!(!version_at_least(old, 2, 10), "{old}");
        }
    }

    #[test]
    fn passwords_in_server_urls_are_not_shown() {
        assert_eq!(redact_password("nats://me:hunter2@a:4222"), "nats://me:***@a:4222");
        assert_eq!(redact_password("nats://a:4222"), "nats://a:4222");
        let options = NatsOptions {
            servers: vec!["nats://me:hunter2@a:4222".into()],
            auth: NatsAuth::Token("s3cr3t".into()),
            tls: None,
            name: "n".into(),
            only_listed: false,
        };
        let text = format!("{options:?}");
        assert!(!text.contains("hunter2") && !text.contains("s3cr3t"), "{text}");
    }

    #[tokio::test]
    async fn unreachable_servers_are_named_with_the_field_to_check() {
        // Nothing listens on a port that was just released.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let options = NatsOptions {
            servers: vec![format!("nats://127.0.0.1:{port}")],
            auth: NatsAuth::None,
            tls: None,
            name: "test".into(),
            only_listed: false,
        };
        let e = options.connect().await.unwrap_err();
        assert!(e.is_transient(), "{e:?}");
        let text = e.to_string();
        assert!(
            text.starts_with("core.servers: cannot reach") && text.contains(&port.to_string()),
            "{text}"
        );
        let missing = NatsOptions {
            auth: NatsAuth::CredentialsFile("/nonexistent/hydrant.creds".into()),
            ..options
        };
        let e = missing.connect().await.unwrap_err();
        assert!(!e.is_transient());
        assert!(
            e.to_string().starts_with("core.credentials_file: cannot read /nonexistent"),
            "{e}"
        );
    }
}
