//! What the control plane keeps on disk:
//!
//! - `<data_dir>/api-streams/<name>.json`: a stream created through the API (its
//!   `CreateDeliveryStream` configuration, version, timestamps, and whether a delete is under
//!   way), written atomically (temp file, fsync, rename, fsync of the directory) with mode
//!   0600, since it holds any secrets the request carried (Redshift `Password`, HTTP
//!   `AccessKey`);
//! - `<data_dir>/streams/<name>/version.json`: the version of a config-file stream and a
//!   fingerprint of the definition it belongs to, so the version survives restarts and goes up
//!   when the file's definition changes;
//! - `<data_dir>/streams/.deleted-*`: logs of deleted streams, renamed away before they are
//!   removed so that a new stream of the same name starts on an empty log.
//!
//! A stream's name never becomes a path as it is: [`path_name`] encodes it, so that `.`, `..`
//! and names starting with `.` can neither reach another directory nor collide with the
//! `.deleted-*` logs. [`stream_dir`] and [`api_file`] are the only places a path is derived
//! from a name.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use super::store::StoreError;
use crate::config::DeliveryStreamConfig;
use crate::log::embedded::checkpoint::sync_dir;
use crate::log::embedded::dirs;

/// Directory (under `data_dir`) of the streams created through the API.
pub const API_DIR: &str = "api-streams";
/// Directory (under `data_dir`) of the streams' logs.
pub const STREAMS_DIR: &str = "streams";
/// File (in a config-file stream's log directory) holding its version.
pub const VERSION_FILE: &str = "version.json";
/// Name prefix of deleted logs waiting to be removed.
const TRASH_PREFIX: &str = ".deleted-";
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

/// The name a stream's directory and file carry: the stream name, except that `%`, any byte
/// outside `[A-Za-z0-9_.-]` and a leading `.` are written as `%XX` (upper-case hex).
///
/// Stream names are `[a-zA-Z0-9_.-]{1,64}`, so a name that does not start with `.` is its own
/// path name (data directories of such streams need no migration), while `.` and `..` become
/// `%2E` and `%2E.`. No name can therefore denote the streams directory, the data directory or
/// a hidden entry such as the `.deleted-*` logs awaiting removal; and since `%` itself is
/// encoded, two different names never share a path.
pub fn path_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0);
        if plain {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `<data_dir>/streams/<path name>`: the directory of the stream's log.
pub fn stream_dir(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join(STREAMS_DIR).join(path_name(name))
}

/// `<data_dir>/api-streams/<path name>.json`.
pub fn api_file(data_dir: &Path, name: &str) -> PathBuf {
    api_dir(data_dir).join(api_file_name(name))
}

fn api_file_name(name: &str) -> String {
    format!("{}.json", path_name(name))
}

/// [`stream_dir`], after moving the stream's log there from where earlier versions kept the
/// log of a name starting with `.` (the name itself, under `streams/`; for `.` and `..` the
/// shard directories landed in `streams/` and in the data directory). Other names need no
/// move. Safe to repeat: a move interrupted by a crash is finished by the next call.
pub fn stream_dir_migrated(data_dir: &Path, name: &str) -> io::Result<PathBuf> {
    let dir = stream_dir(data_dir, name);
    if !name.starts_with('.') {
        return Ok(dir);
    }
    let streams = data_dir.join(STREAMS_DIR);
    match name {
        "." => move_legacy_shards(&streams, &dir)?,
        ".." => move_legacy_shards(data_dir, &dir)?,
        _ => {
            let legacy = streams.join(name);
            if legacy.is_dir() && !dir.exists() {
                dirs::rename(&legacy, &dir)?;
                tracing::info!(stream = %name, from = %legacy.display(), to = %dir.display(),
                    "moved the stream's log to its encoded directory");
            }
        }
    }
    Ok(dir)
}

/// Moves the shard directories (`shard-NNNN` holding `*.seg` files) and `version.json` that
/// the log of stream `.` or `..` left in `from` into `dir`.
fn move_legacy_shards(from: &Path, dir: &Path) -> io::Result<()> {
    let entries = match fs::read_dir(from) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut moves = Vec::new();
    for entry in entries {
        let entry = entry?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let is_shard = file_name
            .strip_prefix("shard-")
            .is_some_and(|n| n.len() == 4 && n.bytes().all(|b| b.is_ascii_digit()))
            && holds_segments(&path);
        if is_shard || (file_name == VERSION_FILE && path.is_file()) {
            moves.push((path, file_name));
        }
    }
    if moves.is_empty() {
        return Ok(());
    }
    dirs::create_dir_all(dir)?;
    for (path, file_name) in moves {
        let target = dir.join(&file_name);
        if target.exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} (left by an earlier version) and {} both exist; move one away by hand",
                    path.display(),
                    target.display()
                ),
            ));
        }
        dirs::rename(&path, &target)?;
        tracing::info!(from = %path.display(), to = %target.display(),
            "moved a log left by an earlier version to its stream's encoded directory");
    }
    Ok(())
}

/// Whether `dir` directly holds segment files (a shard directory, not a stream directory).
fn holds_segments(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().ends_with(".seg") && e.path().is_file())
    })
}

/// Writes `contents` to `target` atomically and durably, readable by the owner only.
fn write_private(target: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let mut tmp_name = target.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(TMP_SUFFIX);
    let tmp = dir.join(tmp_name);
    {
        let mut f =
            OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, target)?;
    sync_dir(dir)
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
    let json = serde_json::to_vec(config).unwrap_or_default();
    let digest: [u8; 16] = Md5::digest(&json).into();
    digest.iter().map(|b| format!("{b:02x}")).collect()
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

/// Moves a stream's log directory out of the way (`streams/.deleted-<path name>-<uuid>`); the
/// caller removes it. `None` when the stream has no log directory.
pub fn trash_log(data_dir: &Path, name: &str) -> io::Result<Option<PathBuf>> {
    let dir = stream_dir(data_dir, name);
    if !dir.exists() {
        return Ok(None);
    }
    let trash = data_dir.join(STREAMS_DIR).join(format!(
        "{TRASH_PREFIX}{}-{}",
        path_name(name),
        uuid::Uuid::new_v4().simple()
    ));
    dirs::rename(&dir, &trash)?;
    Ok(Some(trash))
}

/// Removes logs of deleted streams left by an interrupted delete. (No stream's directory
/// starts with `.`, see [`path_name`], so only such logs match.)
pub fn clean_trash(data_dir: &Path) {
    let Ok(entries) = fs::read_dir(data_dir.join(STREAMS_DIR)) else { return };
    for entry in entries.filter_map(Result::ok) {
        if entry.file_name().to_string_lossy().starts_with(TRASH_PREFIX) {
            if let Err(e) = fs::remove_dir_all(entry.path()) {
                tracing::warn!(path = %entry.path().display(), error = %e,
                    "cannot remove the log of a deleted stream; remove it by hand");
            }
        }
    }
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
    fn ordinary_names_are_their_own_path_and_dot_names_are_encoded() {
        for name in ["default", "clicks-2", "a.b_c", "x.", "A"] {
            assert_eq!(path_name(name), name);
        }
        assert_eq!(path_name("."), "%2E");
        assert_eq!(path_name(".."), "%2E.");
        assert_eq!(path_name(".deleted-x"), "%2Edeleted-x");
        assert_eq!(path_name("%2E"), "%252E");
        assert_eq!(path_name("a/b"), "a%2Fb");
        let data = Path::new("/data");
        assert_eq!(stream_dir(data, ".."), Path::new("/data/streams/%2E."));
        assert_eq!(api_file(data, "."), Path::new("/data/api-streams/%2E.json"));
    }

    proptest::proptest! {
        #[test]
        fn path_names_are_single_safe_components_and_never_collide(
            a in "[a-zA-Z0-9_.%/-]{1,8}",
            b in "[a-zA-Z0-9_.%/-]{1,8}",
        ) {
            for name in [&a, &b] {
                let p = path_name(name);
                proptest::prop_assert!(!p.starts_with('.') && !p.contains('/'), "{name:?} -> {p:?}");
                let mut parts = Path::new(&p).components();
                let one = matches!(parts.next(), Some(std::path::Component::Normal(_)));
                proptest::prop_assert!(one && parts.next().is_none(), "{name:?} -> {p:?}");
            }
            if a != b {
                proptest::prop_assert_ne!(path_name(&a), path_name(&b));
            }
        }
    }

    fn legacy_shard(dir: &Path) {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join("00000000000000000000.seg"), b"HYDSEG01").unwrap();
    }

    #[test]
    fn the_log_of_a_dot_name_moves_to_its_encoded_directory_once() {
        let data = tempfile::tempdir().unwrap();
        let streams = data.path().join(STREAMS_DIR);
        // Where an earlier version kept them.
        legacy_shard(&streams.join(".hidden/shard-0000"));
        legacy_shard(&streams.join("shard-0000")); // stream "."
        fs::write(streams.join(VERSION_FILE), b"{}").unwrap();
        legacy_shard(&data.path().join("shard-0000")); // stream ".."
        legacy_shard(&data.path().join("shard-0001"));
        // An ordinary stream that happens to be called shard-0001: not a shard directory.
        legacy_shard(&streams.join("shard-0001/shard-0000"));

        let hidden = stream_dir_migrated(data.path(), ".hidden").unwrap();
        assert_eq!(hidden, streams.join("%2Ehidden"));
        assert!(hidden.join("shard-0000/00000000000000000000.seg").exists());
        assert!(!streams.join(".hidden").exists());

        let dot = stream_dir_migrated(data.path(), ".").unwrap();
        assert_eq!(dot, streams.join("%2E"));
        assert!(dot.join("shard-0000/00000000000000000000.seg").exists());
        assert!(dot.join(VERSION_FILE).exists());
        assert!(!streams.join("shard-0000").exists() && !streams.join(VERSION_FILE).exists());
        assert!(streams.join("shard-0001/shard-0000").exists(), "another stream's log stays");

        let dotdot = stream_dir_migrated(data.path(), "..").unwrap();
        assert_eq!(dotdot, streams.join("%2E."));
        assert!(dotdot.join("shard-0000").is_dir() && dotdot.join("shard-0001").is_dir());
        assert!(!data.path().join("shard-0000").exists());

        // Repeating is harmless, and ordinary names never move.
        assert_eq!(stream_dir_migrated(data.path(), ".").unwrap(), dot);
        assert_eq!(
            stream_dir_migrated(data.path(), "shard-0001").unwrap(),
            streams.join("shard-0001")
        );
        assert!(streams.join("shard-0001/shard-0000").exists());
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
    fn deleting_a_dot_stream_trashes_only_its_own_log() {
        let data = tempfile::tempdir().unwrap();
        for name in [".", "..", "x", ".deleted-x"] {
            legacy_shard(&stream_dir(data.path(), name).join("shard-0000"));
        }
        let trash = trash_log(data.path(), ".").unwrap().unwrap();
        assert!(trash.file_name().unwrap().to_string_lossy().starts_with(".deleted-%2E-"));
        clean_trash(data.path());
        assert!(!trash.exists() && !stream_dir(data.path(), ".").exists());
        for name in ["..", "x", ".deleted-x"] {
            assert!(stream_dir(data.path(), name).join("shard-0000").exists(), "{name}");
        }
        assert!(data.path().join(STREAMS_DIR).is_dir());
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
