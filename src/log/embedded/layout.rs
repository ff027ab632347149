//! Where the embedded log keeps streams under the data directory:
//!
//! ```text
//! <data_dir>/streams/<path name>/              one stream's log
//!   shard-0000/ ... shard-NNNN/                one directory per shard (docs/log-format.md)
//!   version.json                               a config-file stream's version (the control plane's)
//! <data_dir>/streams/.deleted-<path name>-<id>/ the log of a deleted stream, removed next
//! ```
//!
//! A stream's name never becomes a path as it is: [`path_name`] encodes it, so that `.`, `..`
//! and names starting with `.` can neither reach another directory nor collide with the
//! `.deleted-*` logs. [`stream_dir`] is the only place the log derives a path from a name.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::dirs;
use crate::names::path_name;

/// Directory (under `data_dir`) of the streams' logs.
pub const STREAMS_DIR: &str = "streams";
/// Name prefix of deleted logs waiting to be removed.
const TRASH_PREFIX: &str = ".deleted-";
/// The control plane's file in a config-file stream's directory: it moves with the shards.
const VERSION_FILE: &str = "version.json";

/// `<data_dir>/streams/<path name>`: the directory of the stream's log.
pub fn stream_dir(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join(STREAMS_DIR).join(path_name(name))
}

/// The directory of shard `i` in a stream's directory.
pub fn shard_dir(stream_dir: &Path, i: u32) -> PathBuf {
    stream_dir.join(format!("shard-{i:04}"))
}

/// How many shard directories a stream's directory holds (0 for a new stream).
pub fn shards_on_disk(stream_dir: &Path) -> u32 {
    fs::read_dir(stream_dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("shard-"))
                .count() as u32
        })
        .unwrap_or(0)
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
}
