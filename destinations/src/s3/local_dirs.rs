//! The directories of a local-directory bucket, made durable.
//!
//! An object key `p/2026/01/02/x` is the file `<bucket>/p/2026/01/02/x`; the directories on the
//! way are created on first use. A directory's entry lives in its parent and is only durable
//! once the parent is fsync'd: without that, a power loss can take a directory, and the objects
//! in it, away after their delivery was recorded. `object_store`'s fsync mode syncs each file,
//! its directory, and every directory that one put creates; but a put that finds a directory
//! another put (another shard) has just created does not wait for that put's fsync. So after
//! each put the directories between the object and the bucket are made durable here once per
//! process: their parents are fsync'd and they are remembered.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// How many directories are remembered before the set starts over (each costs one more fsync
/// of its parent the next time an object lands in it).
const MAX_KNOWN: usize = 65_536;

/// The bucket directory and the directories below it known to be durable.
#[derive(Debug)]
pub(crate) struct LocalDirs {
    bucket: PathBuf,
    known: Mutex<HashSet<PathBuf>>,
}

impl LocalDirs {
    /// Creates the bucket directory (and its missing ancestors) durably.
    pub(crate) fn open(bucket: PathBuf) -> io::Result<Self> {
        create_dir_all(&bucket, &mut |dir| sync_dir(dir))?;
        Ok(Self { bucket, known: Mutex::new(HashSet::new()) })
    }

    #[cfg(test)]
    fn bucket(&self) -> &Path {
        &self.bucket
    }

    /// Makes the entries of the directories between the object `key` (already written and
    /// fsync'd, with its own entry) and the bucket durable.
    pub(crate) fn settle(&self, key: &str) -> io::Result<()> {
        self.settle_with(key, &mut |dir| sync_dir(dir))
    }

    fn settle_with(
        &self,
        key: &str,
        sync: &mut dyn FnMut(&Path) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut unknown = Vec::new();
        {
            let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
            let mut dir = Path::new(key).parent();
            while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
                if known.contains(d) {
                    break;
                }
                unknown.push(d.to_path_buf());
                dir = d.parent();
            }
        }
        // Outermost first; each directory's entry is in its parent.
        for dir in unknown.iter().rev() {
            let parent = dir.parent().map_or(self.bucket.clone(), |p| self.bucket.join(p));
            sync(&parent)?;
        }
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() + unknown.len() > MAX_KNOWN {
            known.clear();
        }
        known.extend(unknown);
        Ok(())
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// `create_dir_all` that fsyncs the parent of each directory it creates, outermost first.
fn create_dir_all(dir: &Path, sync: &mut dyn FnMut(&Path) -> io::Result<()>) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    create_dir_all(parent, sync)?;
    match std::fs::create_dir(dir) {
        Ok(()) => sync(parent),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => sync(parent),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settle(dirs: &LocalDirs, key: &str) -> Vec<PathBuf> {
        let mut synced = Vec::new();
        dirs.settle_with(key, &mut |d| {
            synced.push(d.strip_prefix(dirs.bucket()).unwrap().to_path_buf());
            Ok(())
        })
        .unwrap();
        synced
    }

    #[test]
    fn each_new_directory_of_a_key_is_made_durable_once() {
        let root = tempfile::tempdir().unwrap();
        let dirs = LocalDirs::open(root.path().join("new/bucket")).unwrap();
        assert!(root.path().join("new/bucket").is_dir());
        let paths = |list: &[&str]| list.iter().map(PathBuf::from).collect::<Vec<_>>();
        assert_eq!(settle(&dirs, "p/2026/01/x"), paths(&["", "p", "p/2026"]));
        assert_eq!(settle(&dirs, "p/2026/01/y"), paths(&[]));
        assert_eq!(settle(&dirs, "p/2026/02/z"), paths(&["p/2026"]));
        assert_eq!(settle(&dirs, "top-level-object"), paths(&[]));
    }

    #[test]
    fn a_failed_fsync_is_reported_and_retried_by_the_next_put() {
        let root = tempfile::tempdir().unwrap();
        let dirs = LocalDirs::open(root.path().join("b")).unwrap();
        let err = dirs.settle_with("a/x", &mut |_| Err(io::Error::other("injected"))).unwrap_err();
        assert_eq!(err.to_string(), "injected");
        assert_eq!(settle(&dirs, "a/y"), vec![PathBuf::from("")]);
    }
}
