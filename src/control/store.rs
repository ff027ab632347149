//! [`DefinitionStore`]: where the control plane keeps stream definitions, behind a trait:
//! the files of [`persist`](super::persist) on one server, or a key-value bucket that every
//! node of a cluster shares ([`shared`](super::shared)).

use std::io;
use std::path::{Path, PathBuf};

use super::persist::{
    file_stream_version, read_all, remove_stored, store_file_stream_version, stream_dir,
    stream_dir_migrated, write_stored, StoredStream,
};
use crate::config::DeliveryStreamConfig;

/// Why the stored streams of the API cannot be read; each names the file (for the operator:
/// it appears in the server's log at start, never in an API answer).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: not a Hydrant API stream file: {source}", path.display())]
    Parse { path: PathBuf, source: serde_json::Error },
    /// The file holds a stream whose file name is another.
    #[error("{}: holds stream {stream:?}, which belongs in {expected}", path.display())]
    Misplaced { path: PathBuf, stream: String, expected: String },
}

/// What a write of a stream of the API expects to replace, so that of two servers sharing a
/// store that change one stream at once, exactly one wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Nothing is stored under the name (CreateDeliveryStream).
    Absent,
    /// The stored stream has this version (UpdateDestination's `CurrentDeliveryStreamVersionId`).
    Version(u64),
    /// Whatever is stored (tags, a deletion: Firehose checks no version for them).
    Any,
}

/// Why a stream of the API was not stored.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// What is stored is not what the write expected: another server changed the stream
    /// first. `current` is the version stored now (`None`: none, or being deleted).
    #[error("changed meanwhile by another server (stored version: {current:?})")]
    Conflict { current: Option<u64> },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// A change of a stream of the API made by another server sharing the store (or by this one:
/// following its own changes is a no-op).
#[derive(Debug, Clone)]
pub enum SharedChange {
    /// The stream as stored now.
    Stored(Box<StoredStream>),
    /// The stream is no longer stored (its deletion finished).
    Removed(String),
}

/// Where the control plane keeps stream definitions: the streams created through the API and
/// the versions of the config file's streams. Blocking: call it off the runtime (or where
/// blocking is allowed). [`FileDefinitions`] (the files of `persist`, one server) and
/// [`KvDefinitions`](super::shared::KvDefinitions) (a bucket a cluster shares) implement it.
pub trait DefinitionStore: Send + Sync {
    /// Every stream of the API, with where it is kept (for messages), in name order.
    fn read_all(&self) -> Result<Vec<(PathBuf, StoredStream)>, StoreError>;
    /// Stores a stream of the API if what is stored under its name is what `expect` says;
    /// [`WriteError::Conflict`] otherwise, and nothing is written.
    fn write(&self, stored: &StoredStream, expect: Expect) -> Result<(), WriteError>;
    /// Forgets a stream of the API; nothing to do when it is not stored.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// The version of the config-file stream `config`: the stored one when its definition is
    /// unchanged, one more when it changed, 1 for a new stream (stored either way).
    fn file_stream_version(&self, config: &DeliveryStreamConfig) -> io::Result<u64>;
    /// Stores a config-file stream's version with the definition it belongs to.
    fn store_file_stream_version(
        &self,
        name: &str,
        version: u64,
        config: &DeliveryStreamConfig,
    ) -> io::Result<()>;
    /// The changes other servers make to the streams of the API, starting with every stream
    /// stored now; `None` for a store no other server shares.
    fn watch(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<SharedChange>> {
        None
    }
}

/// The definitions kept as files under a data directory (this module's layout).
#[derive(Debug, Clone)]
pub struct FileDefinitions {
    data_dir: PathBuf,
}

impl FileDefinitions {
    pub fn new(data_dir: &Path) -> Self {
        Self { data_dir: data_dir.to_path_buf() }
    }
}

impl DefinitionStore for FileDefinitions {
    fn read_all(&self) -> Result<Vec<(PathBuf, StoredStream)>, StoreError> {
        read_all(&self.data_dir)
    }

    /// One server: the control plane's lock serialises changes and has checked `expect`
    /// against its registry already.
    fn write(&self, stored: &StoredStream, _expect: Expect) -> Result<(), WriteError> {
        Ok(write_stored(&self.data_dir, stored)?)
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        remove_stored(&self.data_dir, name)
    }

    fn file_stream_version(&self, config: &DeliveryStreamConfig) -> io::Result<u64> {
        let dir = stream_dir_migrated(&self.data_dir, &config.delivery_stream_name)?;
        file_stream_version(&dir, config)
    }

    fn store_file_stream_version(
        &self,
        name: &str,
        version: u64,
        config: &DeliveryStreamConfig,
    ) -> io::Result<()> {
        store_file_stream_version(&stream_dir(&self.data_dir, name), version, config)
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
    fn file_definitions_keep_api_streams_and_file_stream_versions() {
        let dir = tempfile::tempdir().unwrap();
        let store: &dyn DefinitionStore = &FileDefinitions::new(dir.path());
        let config = stream();
        let name = config.delivery_stream_name.clone();
        let stored = StoredStream {
            format: 1,
            version: 3,
            created_at: 1.0,
            last_update: None,
            deleting: false,
            config: config.clone(),
        };
        store.write(&stored, Expect::Absent).unwrap();
        let all = store.read_all().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!((all[0].1.version, &all[0].1.config.delivery_stream_name), (3, &name));
        store.remove(&name).unwrap();
        store.remove(&name).unwrap(); // gone already: nothing to do
        assert!(store.read_all().unwrap().is_empty());

        assert_eq!(store.file_stream_version(&config).unwrap(), 1);
        assert_eq!(store.file_stream_version(&config).unwrap(), 1, "unchanged definition");
        let mut resharded = config.clone();
        resharded.hydrant.shards += 1;
        assert_eq!(store.file_stream_version(&resharded).unwrap(), 1, "shards are not a version");
        let mut changed = config.clone();
        changed.hydrant.max_partitions += 1;
        assert_eq!(store.file_stream_version(&changed).unwrap(), 2);
        store.store_file_stream_version(&name, 7, &changed).unwrap();
        assert_eq!(store.file_stream_version(&changed).unwrap(), 7);
    }
}
