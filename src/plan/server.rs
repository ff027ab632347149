//! The server's own settings: `data_dir`, `region`, `account_id`, `storage:`, `tls:`,
//! `admin_listen`, `object_stores:`, `api_streams:`, and the key rings (`storage.encryption`, and a stream's
//! `hydrant.encryption`, whose files are loaded to prove they are usable).

use std::path::Path;

use crate::codec::encryption::KeyRing;

use crate::config::{
    Config, FsyncSetting, HostPattern, Issue, ObjectStoreConfig, S3StoreConfig, Secret,
};

/// Smallest accepted `storage.segment_bytes`.
pub const MIN_SEGMENT_BYTES: u64 = 4096;
/// Largest accepted `storage.fsync.interval_ms`.
pub const MAX_FSYNC_INTERVAL_MS: u64 = 60_000;
/// Largest accepted `shutdown_timeout_seconds`.
pub const MAX_SHUTDOWN_TIMEOUT_SECONDS: u64 = 3600;

/// A key ring block (`hydrant.encryption`, `storage.encryption`) at `path`: its fields, then
/// its key files. The ring, loaded, when it is usable.
pub(super) fn check_key_ring(
    encryption: &crate::codec::encryption::EncryptionConfig,
    path: &str,
    issues: &mut Vec<Issue>,
) -> Option<KeyRing> {
    let problems = encryption.validate();
    if !problems.is_empty() {
        for (field, message) in problems {
            issues.push(Issue::new(format!("{path}.{field}"), message));
        }
        return None;
    }
    // Key files are resolved against the config's directory by now: load them.
    match encryption.key_ring(Path::new("/")) {
        Ok(ring) => Some(ring),
        Err(e) => {
            issues.push(Issue::new(format!("{path}.keys"), e.to_string()));
            None
        }
    }
}

/// `tls:`: both PEM files load and the key belongs to the certificate.
pub(super) fn check_tls(config: &Config, issues: &mut Vec<Issue>) {
    let Some(tls) = &config.tls else { return };
    for e in crate::tls::problems(tls) {
        issues.push(Issue::new(e.field(), e.to_string()));
    }
}

/// `admin_listen`: a port of its own, not the API's.
pub(super) fn check_admin_listen(config: &Config, issues: &mut Vec<Issue>) {
    let Some(admin) = config.admin_listen else { return };
    if admin == config.listen {
        issues.push(Issue::new(
            "admin_listen",
            format!(
                "{admin} is also `listen`; give the admin listener a port of its own (e.g. \
                 127.0.0.1:4574), or leave admin_listen out to serve /metrics and /readyz on \
                 `listen`"
            ),
        ));
    }
}

/// `console:`: `on_shared_listen` means something only for a console served without
/// `admin_listen`.
pub(super) fn check_console(config: &Config, issues: &mut Vec<Issue>) {
    let console = &config.console;
    if !console.on_shared_listen {
        return;
    }
    if !console.enabled {
        issues.push(Issue::new(
            "console.on_shared_listen",
            "is true while console.enabled is false; set enabled: true to serve the console, or \
             leave on_shared_listen out",
        ));
    } else if config.admin_listen.is_some() {
        issues.push(Issue::new(
            "console.on_shared_listen",
            "is true while admin_listen is set: the console is served on admin_listen only; \
             leave on_shared_listen out (or admin_listen, to serve the console on listen)",
        ));
    }
}

pub(super) fn check_server(config: &Config, issues: &mut Vec<Issue>) {
    if let Some(encryption) = &config.storage.encryption {
        check_key_ring(encryption, "storage.encryption", issues);
    }
    if config.data_dir.as_os_str().is_empty() {
        issues.push(Issue::new("data_dir", "is empty; give a directory, e.g. ./hydrant-data"));
    }
    let region = &config.region;
    if region.is_empty()
        || !region.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        issues.push(Issue::new(
            "region",
            format!(
                "{region:?} is not a valid region name; use letters, digits and `-`, e.g. \
                 us-east-1"
            ),
        ));
    }
    let account = &config.account_id;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        issues.push(Issue::new(
            "account_id",
            format!(
                "{account:?} is not an AWS account id; it must be exactly 12 digits, quoted so \
                 YAML keeps leading zeros, e.g. \"000000000000\""
            ),
        ));
    }

    if config.shutdown_timeout_seconds > MAX_SHUTDOWN_TIMEOUT_SECONDS {
        issues.push(Issue::new(
            "shutdown_timeout_seconds",
            format!(
                "must be at most {MAX_SHUTDOWN_TIMEOUT_SECONDS} (one hour), got {}; records not \
                 delivered by the deadline stay in the log for the next start anyway",
                config.shutdown_timeout_seconds
            ),
        ));
    }

    let storage = &config.storage;
    if let FsyncSetting::Interval { interval_ms } = storage.fsync {
        if !(1..=MAX_FSYNC_INTERVAL_MS).contains(&interval_ms) {
            issues.push(Issue::new(
                "storage.fsync.interval_ms",
                format!(
                    "must be 1..={MAX_FSYNC_INTERVAL_MS}, got {interval_ms}; or use \
                     `fsync: always`"
                ),
            ));
        }
    }
    if storage.segment_bytes < MIN_SEGMENT_BYTES {
        issues.push(Issue::new(
            "storage.segment_bytes",
            format!(
                "must be at least {MIN_SEGMENT_BYTES} bytes, got {}; the default is 64MiB",
                storage.segment_bytes
            ),
        ));
    }
    if let Some(max) = storage.max_bytes {
        if max < storage.segment_bytes {
            issues.push(Issue::new(
                "storage.max_bytes",
                format!(
                    "{max} bytes is less than one log segment (segment_bytes = {}); raise \
                     max_bytes or lower segment_bytes",
                    storage.segment_bytes
                ),
            ));
        }
    }
}

pub(super) fn check_object_store(name: &str, store: &ObjectStoreConfig, issues: &mut Vec<Issue>) {
    let path = format!("object_stores.{name}");
    if name.is_empty() {
        issues.push(Issue::new(
            "object_stores",
            "an object store has an empty name; give it a name such as `minio`",
        ));
    }
    match store {
        ObjectStoreConfig::Local { root } => {
            if root.as_os_str().is_empty() {
                issues.push(Issue::new(
                    format!("{path}.root"),
                    "is empty; give the directory that holds the buckets",
                ));
            }
        }
        ObjectStoreConfig::S3(S3StoreConfig {
            endpoint,
            region,
            access_key_id,
            secret_access_key,
            allow_http,
            virtual_hosted_style: _,
        }) => {
            if let Some(endpoint) = endpoint {
                let host =
                    endpoint.strip_prefix("https://").or_else(|| endpoint.strip_prefix("http://"));
                match host {
                    Some(host) if !host.is_empty() && !host.starts_with('/') => {
                        if endpoint.starts_with("http://") && !allow_http {
                            issues.push(Issue::new(
                                format!("{path}.endpoint"),
                                format!(
                                    "{endpoint:?} is plain http but allow_http is false; set \
                                     allow_http: true (e.g. for a local MinIO) or use https://"
                                ),
                            ));
                        }
                    }
                    _ => issues.push(Issue::new(
                        format!("{path}.endpoint"),
                        format!(
                            "{endpoint:?} is not an http:// or https:// URL; write e.g. \
                             http://127.0.0.1:9000, or leave endpoint out for AWS S3"
                        ),
                    )),
                }
            }
            for (field, value) in [
                ("region", region.as_deref()),
                ("access_key_id", access_key_id.as_deref()),
                ("secret_access_key", secret_access_key.as_ref().map(Secret::expose)),
            ] {
                if value == Some("") {
                    issues.push(Issue::new(
                        format!("{path}.{field}"),
                        "is empty (an environment variable set to an empty value?); give a \
                         value or leave the field out",
                    ));
                }
            }
            match (access_key_id.is_some(), secret_access_key.is_some()) {
                (true, false) => issues.push(Issue::new(
                    format!("{path}.secret_access_key"),
                    "is missing while access_key_id is set; give both keys, or neither to use \
                     the AWS credential chain",
                )),
                (false, true) => issues.push(Issue::new(
                    format!("{path}.access_key_id"),
                    "is missing while secret_access_key is set; give both keys, or neither to \
                     use the AWS credential chain",
                )),
                _ => {}
            }
        }
    }
}

/// `api_streams:`: every store it names exists, every host entry parses.
pub(super) fn check_api_streams(config: &Config, issues: &mut Vec<Issue>) {
    let api = &config.api_streams;
    for (i, name) in api.object_stores.iter().enumerate() {
        if !config.object_stores.contains_key(name) {
            let known: Vec<&str> = config.object_stores.keys().map(String::as_str).collect();
            issues.push(Issue::new(
                format!("api_streams.object_stores[{i}]"),
                format!("there is no object store named {name:?}; defined: {}", known.join(", ")),
            ));
        }
    }
    for (i, host) in api.hosts.iter().enumerate() {
        if let Err(message) = HostPattern::parse(host) {
            issues.push(Issue::new(format!("api_streams.hosts[{i}]"), message));
        }
    }
}
