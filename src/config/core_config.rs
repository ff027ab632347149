//! `core:` and `node_id`: where the streams' logs live. The embedded log on this node's disk is
//! the default; `type: jetstream` puts them on a NATS JetStream cluster that every Hydrant node
//! of a cluster shares (issue 13, docs/cluster.md). Checked by [`issues`].

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::defaults::resolve_path;
use super::{Config, Issue, Secret};

/// Default of `core.replicas`: three copies, as Kinesis keeps.
pub const CORE_REPLICAS: u8 = 3;
/// Most JetStream replicas a stream can have.
pub const MAX_CORE_REPLICAS: u8 = 5;
/// Default of `core.duplicate_window_seconds`.
pub const DUPLICATE_WINDOW_SECONDS: u64 = 120;
/// Smallest `core.duplicate_window_seconds`: retries of one publish stop well inside it (a put
/// is retried for at most 10 seconds), so a retried record is never stored twice.
pub const MIN_DUPLICATE_WINDOW_SECONDS: u64 = 30;
/// Largest `core.duplicate_window_seconds`: the server keeps one entry per record for the whole
/// window.
pub const MAX_DUPLICATE_WINDOW_SECONDS: u64 = 3600;
/// Smallest `core.max_bytes_per_shard`: room for the largest record and its headers.
pub const MIN_BYTES_PER_SHARD: u64 = 2 << 20;
/// Default of `core.lease_seconds`.
pub const LEASE_SECONDS: u64 = 12;
/// Range of `core.lease_seconds`.
pub const LEASE_SECONDS_RANGE: std::ops::RangeInclusive<u64> = 3..=300;
/// Default of `core.namespace`.
pub const CORE_NAMESPACE: &str = "hydrant";
/// Longest `core.namespace`.
pub const MAX_NAMESPACE_LEN: usize = 32;
/// Longest `node_id`.
pub const MAX_NODE_ID_LEN: usize = 64;

/// Which log holds the streams' records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CoreType {
    /// Segment files under `data_dir` (docs/log-format.md).
    #[default]
    Embedded,
    /// A NATS JetStream cluster (`servers`), replicated `replicas` times.
    Jetstream,
}

/// `core:`: where the streams' logs live, and how to reach a NATS JetStream cluster.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoreConfig {
    /// `embedded` (the default) or `jetstream`.
    #[serde(rename = "type", default)]
    pub kind: CoreType,

    /// NATS server URLs (`nats://host:4222`, `tls://host:4222`); one is enough, listing
    /// several lets a node start while one is down. Only with `type: jetstream`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,

    /// JetStream replicas of every shard stream and bucket, 1..=5 (a quorum of them
    /// acknowledges each record). Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u8>,

    /// A NATS credentials file (`.creds`: user JWT and nkey seed), relative to the config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<PathBuf>,

    /// A file holding an nkey seed (`SU...`), relative to the config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nkey_seed_file: Option<PathBuf>,

    /// A NATS authentication token (write `${NATS_TOKEN}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,

    /// A NATS user name, with `password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,

    /// The password of `user` (write `${NATS_PASSWORD}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,

    /// TLS to the NATS servers: the CA that signed them, and a client certificate when they
    /// ask for one. With this block the connection must be TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<CoreTlsConfig>,

    /// How long JetStream remembers a record's id, so that a publish retried within it is
    /// stored once, 30..=3600. Default 120.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_window_seconds: Option<u64>,

    /// The most bytes each shard's JetStream stream may hold (on each of its replicas), as a
    /// number or with a unit (`10GiB`). A shard at its limit refuses puts with
    /// `ServiceUnavailableException` until delivery frees space; nothing is dropped. In cluster
    /// mode this takes the place of `storage.max_bytes`. Default: only the NATS servers' own
    /// limits (`max_file_store`).
    #[serde(
        default,
        deserialize_with = "super::model::de::option_byte_size",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_bytes_per_shard: Option<u64>,

    /// How long a node's leases last without renewal before other nodes take its shards
    /// (the failover time, plus about a second), 3..=300 seconds. Holders renew every quarter
    /// of it. The same on every node of a cluster. Default 12.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_seconds: Option<u64>,

    /// Prefix of the cluster's key-value buckets (`<namespace>-control`, `-logs`, `-leases`,
    /// `-keys`), so that several Hydrant clusters can share one NATS account: every node of
    /// one cluster has the same. 1..=32 characters of A-Z a-z 0-9 - _. Default `hydrant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `core.tls:`: PEM files, relative to the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoreTlsConfig {
    /// CA certificates the servers' certificates are checked against (default: the system's
    /// roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// Client certificate, with `key`, for servers that verify clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
}

impl fmt::Debug for CoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let servers: Vec<String> =
            self.servers.iter().map(|s| super::redact_url_credentials(s).into_owned()).collect();
        f.debug_struct("CoreConfig")
            .field("kind", &self.kind)
            .field("servers", &servers)
            .field("replicas", &self.replicas)
            .field("credentials_file", &self.credentials_file)
            .field("nkey_seed_file", &self.nkey_seed_file)
            .field("token", &self.token)
            .field("user", &self.user)
            .field("password", &self.password)
            .field("tls", &self.tls)
            .field("duplicate_window_seconds", &self.duplicate_window_seconds)
            .field("max_bytes_per_shard", &self.max_bytes_per_shard)
            .field("lease_seconds", &self.lease_seconds)
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl CoreConfig {
    /// Whether the block says nothing (serialized configs leave it out then).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// `replicas`, or its default.
    pub fn replicas(&self) -> u8 {
        self.replicas.unwrap_or(CORE_REPLICAS)
    }

    /// `lease_seconds`, or its default.
    pub fn lease_seconds(&self) -> u64 {
        self.lease_seconds.unwrap_or(LEASE_SECONDS)
    }

    /// `namespace`, or its default.
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or(CORE_NAMESPACE)
    }

    /// `duplicate_window_seconds`, or its default.
    pub fn duplicate_window_seconds(&self) -> u64 {
        self.duplicate_window_seconds.unwrap_or(DUPLICATE_WINDOW_SECONDS)
    }

    /// Resolves the block's files against the config file's directory.
    pub(crate) fn resolve_paths(&mut self, base_dir: &Path) {
        for path in [&mut self.credentials_file, &mut self.nkey_seed_file].into_iter().flatten() {
            *path = resolve_path(base_dir, path);
        }
        if let Some(tls) = &mut self.tls {
            for path in [&mut tls.ca, &mut tls.cert, &mut tls.key].into_iter().flatten() {
                *path = resolve_path(base_dir, path);
            }
        }
    }
}

/// This node's id in a cluster: `node_id`, or `<host name>-<listen port>`.
pub fn node_id(config: &Config) -> String {
    if let Some(id) = &config.node_id {
        return id.clone();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .take(MAX_NODE_ID_LEN - 6)
        .collect();
    let host = if host.is_empty() { "hydrant".to_string() } else { host };
    format!("{host}-{}", config.listen.port())
}

/// Every problem with `core:` and `node_id`, each naming its field.
pub(crate) fn issues(config: &Config) -> Vec<Issue> {
    let mut issues = Vec::new();
    if let Some(id) = &config.node_id {
        let valid = id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if id.is_empty() || id.len() > MAX_NODE_ID_LEN || !valid {
            issues.push(Issue::new(
                "node_id",
                format!(
                    "{id:?} is not a node id: use 1 to {MAX_NODE_ID_LEN} characters of A-Z a-z \
                     0-9 - _ (or leave it out for <host name>-<listen port>)"
                ),
            ));
        }
    }
    let core = &config.core;
    match core.kind {
        CoreType::Embedded => embedded_issues(core, &mut issues),
        CoreType::Jetstream => jetstream_issues(core, &mut issues),
    }
    if core.kind == CoreType::Jetstream && config.storage.max_bytes.is_some() {
        issues.push(Issue::new(
            "storage.max_bytes",
            "budgets the embedded log on this node's disk, which core.type: jetstream does not \
             use; bound the logs with core.max_bytes_per_shard (and the NATS servers' \
             max_file_store) instead",
        ));
    }
    if let Some(bytes) = core.max_bytes_per_shard.filter(|b| *b < MIN_BYTES_PER_SHARD) {
        issues.push(Issue::new(
            "core.max_bytes_per_shard",
            format!(
                "{bytes} bytes cannot hold one record of 1 MiB; use at least 2MiB (or leave it \
                 out for the NATS servers' own limits)"
            ),
        ));
    }
    issues
}

/// With the embedded log, the NATS settings mean nothing: a leftover is a mistake.
fn embedded_issues(core: &CoreConfig, issues: &mut Vec<Issue>) {
    let set = [
        ("servers", !core.servers.is_empty()),
        ("replicas", core.replicas.is_some()),
        ("credentials_file", core.credentials_file.is_some()),
        ("nkey_seed_file", core.nkey_seed_file.is_some()),
        ("token", core.token.is_some()),
        ("user", core.user.is_some()),
        ("password", core.password.is_some()),
        ("tls", core.tls.is_some()),
        ("duplicate_window_seconds", core.duplicate_window_seconds.is_some()),
        ("namespace", core.namespace.is_some()),
        ("max_bytes_per_shard", core.max_bytes_per_shard.is_some()),
        ("lease_seconds", core.lease_seconds.is_some()),
    ];
    for (field, _) in set.iter().filter(|(_, set)| *set) {
        issues.push(Issue::new(
            format!("core.{field}"),
            "is a NATS setting, used only with `type: jetstream`; remove it, or set \
             core.type: jetstream",
        ));
    }
}

fn jetstream_issues(core: &CoreConfig, issues: &mut Vec<Issue>) {
    if core.servers.is_empty() {
        issues.push(Issue::new(
            "core.servers",
            "type: jetstream needs at least one NATS server URL, e.g. \
             servers: [nats://10.0.0.1:4222, nats://10.0.0.2:4222, nats://10.0.0.3:4222]",
        ));
    }
    for (i, server) in core.servers.iter().enumerate() {
        if let Err(why) = check_server_url(server) {
            issues.push(Issue::new(format!("core.servers[{i}]"), why));
        }
    }
    let replicas = core.replicas();
    if !(1..=MAX_CORE_REPLICAS).contains(&replicas) {
        issues.push(Issue::new(
            "core.replicas",
            format!("must be 1..={MAX_CORE_REPLICAS}, got {replicas}; the default is 3"),
        ));
    }
    let lease = core.lease_seconds();
    if !LEASE_SECONDS_RANGE.contains(&lease) {
        issues.push(Issue::new(
            "core.lease_seconds",
            format!(
                "must be {}..={} seconds, got {lease}; the default is {LEASE_SECONDS}",
                LEASE_SECONDS_RANGE.start(),
                LEASE_SECONDS_RANGE.end()
            ),
        ));
    }
    let namespace = core.namespace();
    let valid = namespace.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if namespace.is_empty() || namespace.len() > MAX_NAMESPACE_LEN || !valid {
        issues.push(Issue::new(
            "core.namespace",
            format!(
                "{namespace:?} cannot prefix NATS bucket names: use 1 to {MAX_NAMESPACE_LEN} \
                 characters of A-Z a-z 0-9 - _ (or leave it out for {CORE_NAMESPACE:?})"
            ),
        ));
    }
    let window = core.duplicate_window_seconds();
    if !(MIN_DUPLICATE_WINDOW_SECONDS..=MAX_DUPLICATE_WINDOW_SECONDS).contains(&window) {
        issues.push(Issue::new(
            "core.duplicate_window_seconds",
            format!(
                "must be {MIN_DUPLICATE_WINDOW_SECONDS}..={MAX_DUPLICATE_WINDOW_SECONDS} seconds, \
                 got {window}; the default is {DUPLICATE_WINDOW_SECONDS}"
            ),
        ));
    }
    let methods: Vec<&str> = [
        ("credentials_file", core.credentials_file.is_some()),
        ("nkey_seed_file", core.nkey_seed_file.is_some()),
        ("token", core.token.is_some()),
        ("user", core.user.is_some() || core.password.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    if methods.len() > 1 {
        issues.push(Issue::new(
            format!("core.{}", methods[1]),
            format!(
                "NATS takes one way to authenticate; core sets {}: keep one",
                methods.join(" and ")
            ),
        ));
    }
    match (&core.user, &core.password) {
        (Some(_), None) => issues.push(Issue::new("core.password", "core.user needs a password")),
        (None, Some(_)) => issues.push(Issue::new("core.user", "core.password needs a user")),
        _ => {}
    }
    if core.token.as_ref().is_some_and(|t| t.expose().is_empty()) {
        issues.push(Issue::new("core.token", "is empty (is its environment variable set?)"));
    }
    let files =
        [("credentials_file", &core.credentials_file), ("nkey_seed_file", &core.nkey_seed_file)];
    for (field, file) in files {
        if let Some(file) = file {
            check_readable(&format!("core.{field}"), file, issues);
        }
    }
    if let Some(tls) = &core.tls {
        match (&tls.cert, &tls.key) {
            (Some(_), None) => {
                issues.push(Issue::new("core.tls.key", "core.tls.cert needs its key"))
            }
            (None, Some(_)) => {
                issues.push(Issue::new("core.tls.cert", "core.tls.key needs its certificate"))
            }
            _ => {}
        }
        for (field, file) in [("ca", &tls.ca), ("cert", &tls.cert), ("key", &tls.key)] {
            if let Some(file) = file {
                check_readable(&format!("core.tls.{field}"), file, issues);
            }
        }
    }
}

/// A NATS server URL as async-nats takes it: `nats://` or `tls://`, a host and a port.
fn check_server_url(server: &str) -> Result<(), String> {
    let example = "write it as nats://host:4222 (or tls://host:4222)";
    let (scheme, rest) = server.split_once("://").ok_or_else(|| {
        format!("{:?} is not a URL; {example}", super::redact_url_credentials(server))
    })?;
    if !matches!(scheme, "nats" | "tls") {
        return Err(format!("scheme {scheme:?} is not supported; {example}"));
    }
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    if host_port.is_empty() || host_port.contains('/') {
        return Err(format!("{:?} has no host; {example}", super::redact_url_credentials(server)));
    }
    server
        .parse::<async_nats::ServerAddr>()
        .map(|_| ())
        .map_err(|e| format!("{:?}: {e}; {example}", super::redact_url_credentials(server)))
}

fn check_readable(field: &str, file: &Path, issues: &mut Vec<Issue>) {
    if let Err(e) = std::fs::metadata(file).and_then(|m| {
        if m.is_file() {
            Ok(())
        } else {
            Err(std::io::Error::other("not a file"))
        }
    }) {
        issues.push(Issue::new(field, format!("cannot read {}: {e}", file.display())));
    }
}
