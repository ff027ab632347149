//! What the control plane keeps on disk:
//!
//! - `<data_dir>/api-streams/<name>.json`: a stream created through the API (its
//!   `CreateDeliveryStream` configuration, version, timestamps, and whether a delete is under
//!   way), written atomically (temp file, fsync, rename, fsync of the directory) with mode
//!   0600, since it holds any secrets the request carried (Redshift `Password`, HTTP
//!   `AccessKey`);
//! - `<data_dir>/streams/<name>/version.json`: the version of a config-file stream and a
//!   fingerprint of the definition it belongs to, so the version survives restarts and goes up
//!   when the file's definition changes. It lives beside the shards, in the embedded log's
//!   directory of the stream ([`stream_dir`]).
//!
//! A stream's name never becomes a path as it is: [`path_name`] encodes it (see there).
//! [`api_file`] and the log's layout are the only places a path is derived from a name.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use super::store::StoreError;
use crate::config::DeliveryStreamConfig;
use crate::log::embedded::checkpoint::sync_dir;
use crate::log::embedded::dirs;
pub use crate::log::embedded::layout::{stream_dir, stream_dir_migrated};
use crate::names::path_name;

/// Directory (under `data_dir`) of the streams created through the API.
pub const API_DIR: &str = "api-streams";
/// File (in a config-file stream's log directory) holding its version.
pub const VERSION_FILE: &str = "version.json";
const TMP_SUFFIX: &str = ".tmp";

/// `api-streams/<name>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredStream {
    /// Layout of this file (1).
    pub format: u32,
    pub version: u64,
    /// `CreateTimestamp`, seconds since the epoch.
    pub created_at: f64,
    /// `LastUpdateTimestamp`, once changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update: Option<f64>,
    /// A delete was accepted: the next start drains the stream and finishes deleting it.
    #[serde(default)]
    pub deleting: bool,
    /// The stream, in `CreateDeliveryStream` shape (normalised).
    pub config: DeliveryStreamConfig,
}

pub fn api_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(API_DIR)
}

/// `<data_dir>/api-streams/<path name>.json`.
pub fn api_file(data_dir: &Path, name: &str) -> PathBuf {
    api_dir(data_dir).join(api_file_name(name))
}

fn api_file_name(name: &str) -> String {
    format!("{}.json", path_name(name))
}

/// Writes `contents` to `target` atomically and durably, readable by the owner only.
fn write_private(target: &Path, contents: &[u8]) -> io::Result<()> {
    dirs::write_file_private(target, contents, TMP_SUFFIX)
}

/// Stores an API stream's file (creating `api-streams/` on first use).
pub fn write_stored(data_dir: &Path, stored: &StoredStream) -> io::Result<()> {
    dirs::create_dir_all(&api_dir(data_dir))?;
    let json = serde_json::to_vec_pretty(stored).map_err(io::Error::other)?;
    write_private(&api_file(data_dir, &stored.config.delivery_stream_name), &json)
}

/// Removes an API stream's file (done once its log is gone).
pub fn remove_stored(data_dir: &Path, name: &str) -> io::Result<()> {
    match fs::remove_file(api_file(data_dir, name)) {
        Ok(()) => sync_dir(&api_dir(data_dir)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Every stored API stream, by file name order; leftover temp files are removed.
pub fn read_all(data_dir: &Path) -> Result<Vec<(PathBuf, StoredStream)>, StoreError> {
    let dir = api_dir(data_dir);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { path, source }
    };
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(&dir)(e)),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.map_err(io(&dir))?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        if name.ends_with(TMP_SUFFIX) {
            let _ = fs::remove_file(&path);
        } else if name.ends_with(".json") {
            paths.push(path);
        }
    }
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let text = fs::read(&path).map_err(io(&path))?;
        let stored: StoredStream = serde_json::from_slice(&text)
            .map_err(|source| StoreError::Parse { path: path.clone(), source })?;
        let name = &stored.config.delivery_stream_name;
        let expected = api_file_name(name);
        let file_name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let path = if file_name == expected {
            path
        } else if file_name == format!("{name}.json") && !dir.join(&expected).exists() {
            // Kept under the plain name by an earlier version (a name starting with `.`).
            let target = dir.join(&expected);
            dirs::rename(&path, &target).map_err(io(&path))?;
            target
        } else {
            return Err(StoreError::Misplaced { path, stream: name.clone(), expected });
        };
        out.push((path, stored));
    }
    Ok(out)
}

/// `version.json` of a config-file stream.
#[derive(Debug, Serialize, Deserialize)]
struct VersionFile {
    version: u64,
    /// MD5 of the stream's definition (JSON) this version belongs to.
    fingerprint: String,
}

/// A fingerprint of a stream's definition.
pub fn fingerprint(config: &DeliveryStreamConfig) -> String {
    // `hydrant.shards` is not part of the definition's version (resharding keeps it), so it is
    // hashed at its default: a stream's version stays when only its shard count changes.
    let mut config = config.clone();
    config.hydrant.shards = crate::config::HydrantStreamConfig::default().shards;
    let json = serde_json::to_vec(&config).unwrap_or_default();
    let digest: [u8; 16] = Md5::digest(&json).into();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `a` and `b` define the same stream but for `hydrant.shards`.
pub fn same_but_shards(a: &DeliveryStreamConfig, b: &DeliveryStreamConfig) -> bool {
    let mut b = b.clone();
    b.hydrant.shards = a.hydrant.shards;
    *a == b
}

/// The version of a config-file stream whose log is `stream_dir`: the stored one when the
/// definition is unchanged, one more when it changed, 1 for a new stream (stored).
pub fn file_stream_version(stream_dir: &Path, config: &DeliveryStreamConfig) -> io::Result<u64> {
    let path = stream_dir.join(VERSION_FILE);
    let print = fingerprint(config);
    let stored = match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice::<VersionFile>(&bytes).ok(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let version = match stored {
        Some(v) if v.fingerprint == print => return Ok(v.version),
        Some(v) => v.version + 1,
        None => 1,
    };
    store_file_stream_version(stream_dir, version, config)?;
    Ok(version)
}

/// Stores a config-file stream's version with the definition it belongs to.
pub fn store_file_stream_version(
    stream_dir: &Path,
    version: u64,
    config: &DeliveryStreamConfig,
) -> io::Result<()> {
    dirs::create_dir_all(stream_dir)?;
    let file = VersionFile { version, fingerprint: fingerprint(config) };
    let json = serde_json::to_vec(&file).map_err(io::Error::other)?;
    write_private(&stream_dir.join(VERSION_FILE), &json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::embedded_default;

    fn stream() -> DeliveryStreamConfig {
        let mut config = embedded_default().delivery_streams.remove(0);
        config.normalize();
        config
    }

    #[test]
    fn a_config_file_stream_keeps_its_version_until_its_definition_changes() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = stream();
        assert_eq!(file_stream_version(dir.path(), &config).unwrap(), 1);
        assert_eq!(file_stream_version(dir.path(), &config).unwrap(), 1);
        config.extended_s3_destination_configuration.as_mut().unwrap().prefix =
            Some("other/".into());
        assert_eq!(file_stream_version(dir.path(), &config).unwrap(), 2);
        assert_eq!(file_stream_version(dir.path(), &config).unwrap(), 2);
    }

    #[test]
    fn stored_streams_round_trip_privately_and_leftover_temp_files_go() {
        let dir = tempfile::tempdir().unwrap();
        let stored = StoredStream {
            format: 1,
            version: 3,
            created_at: 1.5,
            last_update: Some(2.5),
            deleting: false,
            config: stream(),
        };
        write_stored(dir.path(), &stored).unwrap();
        fs::write(api_dir(dir.path()).join("x.json.tmp"), b"partial").unwrap();
        let all = read_all(dir.path()).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].1.version, 3);
        assert_eq!(all[0].1.config, stored.config);
        assert!(!api_dir(dir.path()).join("x.json.tmp").exists());
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&all[0].0).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        remove_stored(dir.path(), "default").unwrap();
        assert!(read_all(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn an_api_stream_file_carries_the_path_name() {
        let data = Path::new("/data");
        assert_eq!(api_file(data, "."), Path::new("/data/api-streams/%2E.json"));
        assert_eq!(api_file(data, "clicks"), Path::new("/data/api-streams/clicks.json"));
    }

    #[test]
    fn a_stored_dot_stream_under_its_old_file_name_is_moved() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = stream();
        config.delivery_stream_name = "..".into();
        let stored = StoredStream {
            format: 1,
            version: 1,
            created_at: 1.0,
            last_update: None,
            deleting: false,
            config,
        };
        write_stored(dir.path(), &stored).unwrap();
        let encoded = api_dir(dir.path()).join("%2E..json");
        assert!(encoded.exists());
        fs::rename(&encoded, api_dir(dir.path()).join("...json")).unwrap();
        let all = read_all(dir.path()).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].0, encoded);
        assert!(encoded.exists() && !api_dir(dir.path()).join("...json").exists());
    }

    #[test]
    fn a_file_under_the_wrong_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let stored = StoredStream {
            format: 1,
            version: 1,
            created_at: 1.0,
            last_update: None,
            deleting: false,
            config: stream(),
        };
        write_stored(dir.path(), &stored).unwrap();
        fs::rename(api_dir(dir.path()).join("default.json"), api_dir(dir.path()).join("x.json"))
            .unwrap();
        let err = read_all(dir.path()).unwrap_err();
        let StoreError::Misplaced { path, expected, .. } = &err else { panic!("{err}") };
        assert!(path.ends_with("x.json"));
        assert_eq!(expected, "default.json", "{err}");
    }
}
