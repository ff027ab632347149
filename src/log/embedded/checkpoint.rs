//! Atomic checkpoint files: `checkpoint-<consumer>` holding `{"next_seq":N}`.
//!
//! Written as `.checkpoint-<consumer>.tmp`, fsync'd, renamed over the real name, then the
//! directory is fsync'd, so a crash leaves either the old or the new value, never a mix.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const PREFIX: &str = "checkpoint-";
const TMP_PREFIX: &str = ".checkpoint-";
const TMP_SUFFIX: &str = ".tmp";

/// Longest accepted consumer name.
pub const MAX_CONSUMER_LEN: usize = 200;

/// Consumer names become file names: 1 to 200 characters of `[A-Za-z0-9._-]`.
pub fn validate_consumer(consumer: &str) -> io::Result<()> {
    let ok = !consumer.is_empty()
        && consumer.len() <= MAX_CONSUMER_LEN
        && consumer != "."
        && consumer != ".."
        && consumer.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "invalid consumer name {consumer:?}: use 1 to {MAX_CONSUMER_LEN} characters of A-Z a-z 0-9 . _ -"
            ),
        ))
    }
}

/// Path of a consumer's checkpoint file.
pub fn path(dir: &Path, consumer: &str) -> PathBuf {
    dir.join(format!("{PREFIX}{consumer}"))
}

/// The file's content for `next_seq`.
pub fn encode(next_seq: u64) -> String {
    format!("{{\"next_seq\":{next_seq}}}\n")
}

/// Parses `{"next_seq":N}` (whitespace around tokens allowed).
pub fn parse(text: &str) -> Option<u64> {
    let rest = text.trim().strip_prefix('{')?.strip_suffix('}')?.trim();
    let rest = rest.strip_prefix("\"next_seq\"")?.trim_start();
    let digits = rest.strip_prefix(':')?.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Reads one checkpoint file; a malformed one is `ErrorKind::InvalidData`.
pub fn read(path: &Path) -> io::Result<u64> {
    let text = fs::read_to_string(path)?;
    parse(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("expected {{\"next_seq\":N}}, found {:?}", text.trim()),
        )
    })
}

/// Atomically stores `next_seq` for `consumer` in `dir` (temp file, fsync, rename, fsync dir).
pub fn store(dir: &Path, consumer: &str, next_seq: u64) -> io::Result<()> {
    validate_consumer(consumer)?;
    let tmp = dir.join(format!("{TMP_PREFIX}{consumer}{TMP_SUFFIX}"));
    write_atomic(&tmp, &path(dir, consumer), encode(next_seq).as_bytes())
}

/// Replaces `target` with `contents` so that a crash leaves the old or the new file, never a
/// mix: write `tmp`, fsync it, rename it over `target`, fsync the directory.
pub fn write_atomic(tmp: &Path, target: &Path, contents: &[u8]) -> io::Result<()> {
    {
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    fs::rename(tmp, target)?;
    sync_dir(target.parent().unwrap_or(Path::new(".")))
}

/// Every `(consumer, path)` with a checkpoint file in `dir`; removes leftover temp files.
pub fn list(dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(consumer) = name.strip_prefix(PREFIX) {
            if validate_consumer(consumer).is_ok() {
                out.push((consumer.to_string(), entry.path()));
            }
        } else if name.starts_with(TMP_PREFIX) && name.ends_with(TMP_SUFFIX) {
            tracing::debug!(path = %entry.path().display(), "removing leftover checkpoint temp file");
            fs::remove_file(entry.path())?;
        }
    }
    out.sort();
    Ok(out)
}

/// fsyncs a directory, making renames, creations and deletions in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_checkpoint_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        store(dir.path(), "s3-worker", 42).unwrap();
        store(dir.path(), "s3-worker", 43).unwrap();
        assert_eq!(read(&path(dir.path(), "s3-worker")).unwrap(), 43);
        let listed = list(dir.path()).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].0, "s3-worker");
    }

    #[test]
    fn checkpoint_text_parses_with_whitespace_and_rejects_garbage() {
        assert_eq!(parse("{\"next_seq\":5}\n"), Some(5));
        assert_eq!(parse(" { \"next_seq\" : 18446744073709551615 } "), Some(u64::MAX));
        assert_eq!(parse("{\"next_seq\":-1}"), None);
        assert_eq!(parse("{\"next_seq\":}"), None);
        assert_eq!(parse("7"), None);
    }

    #[test]
    fn consumer_names_that_are_not_plain_file_names_are_rejected() {
        for bad in ["", ".", "..", "a/b", "a b", &"x".repeat(201)] {
            assert!(validate_consumer(bad).is_err(), "{bad:?}");
        }
        validate_consumer("worker-1.s3_x").unwrap();
    }

    #[test]
    fn leftover_temp_files_are_removed_when_listing() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(".checkpoint-a.tmp"), "{").unwrap();
        assert!(list(dir.path()).unwrap().is_empty());
        assert!(!dir.path().join(".checkpoint-a.tmp").exists());
    }
}
