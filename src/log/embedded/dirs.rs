//! Directories that survive a power loss.
//!
//! A directory's entry lives in its parent: after `mkdir` (or a `rename`) the entry is only in
//! the page cache until the parent is fsync'd. A power loss before that can take the directory
//! away, and with it every file inside, however carefully those files were fsync'd. So every
//! directory the log and the control plane create goes through [`create_dir_all`], which
//! fsyncs the parent of each directory it makes, top-down, before anything is put inside.

use std::fs;
use std::io;
use std::path::Path;

use super::checkpoint::sync_dir;

/// Creates `dir` and any missing ancestors, fsyncing the parent of each directory it creates
/// (outermost first), so the new entries are durable before `dir` is used. An existing `dir`
/// is left alone.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    create_dir_all_with(dir, &mut |parent| sync_dir(parent))
}

/// [`create_dir_all`] with the fsync as a parameter (tests record the calls).
pub(crate) fn create_dir_all_with(
    dir: &Path,
    sync: &mut dyn FnMut(&Path) -> io::Result<()>,
) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    create_dir_all_with(parent, sync)?;
    match fs::create_dir(dir) {
        Ok(()) => sync(parent),
        // Made by someone else meanwhile, who may not have fsync'd its parent yet: do it, so
        // that nothing is put in a directory whose entry can still vanish.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => sync(parent),
        Err(e) => Err(e),
    }
}

/// Writes `contents` to `target` atomically and durably (a temporary file beside it with
/// `tmp_suffix` appended to the name, fsync, rename, fsync of the directory), readable by the
/// owner only: a crash leaves the old file or the new one, never a mix.
pub fn write_file_private(target: &Path, contents: &[u8], tmp_suffix: &str) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = target.parent().unwrap_or(Path::new("."));
    let mut tmp_name = target.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(tmp_suffix);
    let tmp = dir.join(tmp_name);
    {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, target)?;
    sync_dir(dir)
}

/// Renames `from` to `to` and fsyncs the parent directories whose entries changed (both, when
/// they differ), so the move survives a power loss.
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to)?;
    let to_parent = to.parent().unwrap_or(Path::new("."));
    sync_dir(to_parent)?;
    let from_parent = from.parent().unwrap_or(Path::new("."));
    if from_parent != to_parent {
        sync_dir(from_parent)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn the_parent_of_every_new_directory_is_fsynced_outermost_first() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("a/b/c");
        let mut synced: Vec<PathBuf> = Vec::new();
        create_dir_all_with(&deep, &mut |p| {
            synced.push(p.to_path_buf());
            Ok(())
        })
        .unwrap();
        assert!(deep.is_dir());
        let expected: Vec<PathBuf> = ["", "a", "a/b"].iter().map(|p| root.path().join(p)).collect();
        let expected: Vec<PathBuf> =
            expected.into_iter().map(|p| p.components().collect()).collect();
        let synced: Vec<PathBuf> = synced.into_iter().map(|p| p.components().collect()).collect();
        assert_eq!(synced, expected);
    }

    #[test]
    fn an_existing_directory_costs_no_fsync() {
        let root = tempfile::tempdir().unwrap();
        let mut calls = 0;
        create_dir_all_with(root.path(), &mut |_| {
            calls += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(calls, 0);
    }

    #[test]
    fn a_failing_fsync_is_reported() {
        let root = tempfile::tempdir().unwrap();
        let err =
            create_dir_all_with(&root.path().join("x"), &mut |_| Err(io::Error::other("injected")))
                .unwrap_err();
        assert_eq!(err.to_string(), "injected");
    }

    #[test]
    fn a_durable_rename_moves_the_directory() {
        let root = tempfile::tempdir().unwrap();
        create_dir_all(&root.path().join("from/x")).unwrap();
        create_dir_all(&root.path().join("to")).unwrap();
        rename(&root.path().join("from/x"), &root.path().join("to/y")).unwrap();
        assert!(root.path().join("to/y").is_dir());
        assert!(!root.path().join("from/x").exists());
    }
}
