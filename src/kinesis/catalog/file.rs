//! [`FileCatalog`]: the streams of one server in `<data_dir>/kinesis-streams.json`, written
//! atomically and fsync'd before a change is answered, so streams survive restarts (kill -9
//! included).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{Catalog, CatalogChange, CatalogError, StoredStream};

/// The file that lists the streams.
pub const STREAMS_FILE: &str = "kinesis-streams.json";

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredStreams {
    /// Layout of this file (1).
    format: u32,
    streams: Vec<StoredStream>,
}

/// The streams of one server, in [`STREAMS_FILE`] (what was last written is also kept in
/// memory, by name).
#[derive(Debug)]
pub struct FileCatalog {
    path: PathBuf,
    streams: Mutex<Option<BTreeMap<String, StoredStream>>>,
}

impl FileCatalog {
    pub fn new(data_dir: &Path) -> Self {
        Self { path: data_dir.join(STREAMS_FILE), streams: Mutex::new(None) }
    }

    fn at(&self) -> String {
        self.path.display().to_string()
    }

    fn read(&self) -> Result<BTreeMap<String, StoredStream>, CatalogError> {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => {
                return Err(CatalogError::Unavailable { at: self.at(), reason: e.to_string() })
            }
        };
        let stored: StoredStreams = serde_json::from_slice(&text)
            .map_err(|e| CatalogError::Damaged { at: self.at(), reason: e.to_string() })?;
        Ok(stored.streams.into_iter().map(|s| (s.name.clone(), s)).collect())
    }

    fn write(&self, streams: &BTreeMap<String, StoredStream>) -> Result<(), CatalogError> {
        let stored = StoredStreams { format: 1, streams: streams.values().cloned().collect() };
        let json = serde_json::to_vec_pretty(&stored).expect("plain fields serialize");
        crate::log::embedded::dirs::write_file_private(&self.path, &json, ".tmp")
            .map_err(|e| CatalogError::Unavailable { at: self.at(), reason: e.to_string() })
    }

    /// Applies `change` to the streams and writes them; nothing changes when it refuses or the
    /// write fails.
    fn change(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, StoredStream>) -> Result<bool, CatalogError>,
    ) -> Result<(), CatalogError> {
        let mut guard = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = match guard.as_ref() {
            Some(streams) => streams.clone(),
            None => self.read()?,
        };
        if change(&mut next)? {
            self.write(&next)?;
        }
        *guard = Some(next);
        Ok(())
    }
}

#[async_trait]
impl Catalog for FileCatalog {
    fn shared(&self) -> bool {
        false
    }

    fn log_name(&self, _name: &str) -> Option<String> {
        None
    }

    async fn load(&self) -> Result<Vec<StoredStream>, CatalogError> {
        let streams = self.read()?;
        let all = streams.values().cloned().collect();
        *self.streams.lock().unwrap_or_else(|e| e.into_inner()) = Some(streams);
        Ok(all)
    }

    async fn find(&self, name: &str) -> Result<Option<StoredStream>, CatalogError> {
        let guard = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            Some(streams) => Ok(streams.get(name).cloned()),
            None => Ok(self.read()?.remove(name)),
        }
    }

    async fn create(&self, stream: &StoredStream) -> Result<(), CatalogError> {
        self.change(|streams| {
            if streams.contains_key(&stream.name) {
                return Err(CatalogError::InUse(stream.name.clone()));
            }
            streams.insert(stream.name.clone(), stream.clone());
            Ok(true)
        })
    }

    async fn replace(
        &self,
        current: &StoredStream,
        next: &StoredStream,
    ) -> Result<(), CatalogError> {
        self.change(|streams| match streams.get_mut(&current.name) {
            Some(stored) if stored == current => {
                *stored = next.clone();
                Ok(true)
            }
            _ => Err(CatalogError::Conflict(current.name.clone())),
        })
    }

    async fn remove(&self, stream: &StoredStream) -> Result<(), CatalogError> {
        self.change(|streams| {
            if streams.get(&stream.name) != Some(stream) {
                return Ok(false);
            }
            streams.remove(&stream.name);
            Ok(true)
        })
    }

    fn watch(&self) -> Option<mpsc::UnboundedReceiver<CatalogChange>> {
        None
    }

    async fn lead(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinesis::StreamMode;

    fn stream(name: &str, retention_hours: u32) -> StoredStream {
        StoredStream {
            name: name.into(),
            shards: 2,
            created_ms: 7,
            retention_hours,
            tags: BTreeMap::new(),
            mode: StreamMode::Provisioned,
            encryption_key: None,
            log: None,
            deleting: false,
        }
    }

    #[tokio::test]
    async fn a_name_is_created_once_and_replaced_only_from_what_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = FileCatalog::new(dir.path());
        assert!(catalog.load().await.unwrap().is_empty());
        catalog.create(&stream("a", 24)).await.unwrap();
        let again = catalog.create(&stream("a", 48)).await;
        assert!(matches!(again, Err(CatalogError::InUse(n)) if n == "a"));
        catalog.replace(&stream("a", 24), &stream("a", 48)).await.unwrap();
        let stale = catalog.replace(&stream("a", 24), &stream("a", 72)).await;
        assert!(matches!(stale, Err(CatalogError::Conflict(_))), "{stale:?}");
        catalog.remove(&stream("a", 24)).await.unwrap();
        assert_eq!(catalog.find("a").await.unwrap(), Some(stream("a", 48)), "not what it was");
        let reopened = FileCatalog::new(dir.path());
        assert_eq!(reopened.load().await.unwrap(), vec![stream("a", 48)]);
        reopened.remove(&stream("a", 48)).await.unwrap();
        assert!(FileCatalog::new(dir.path()).load().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_file_of_the_previous_layout_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let old = r#"{"format":1,"streams":[{"name":"a","shards":2,"created_ms":7,
            "retention_hours":24,"tags":{}}]}"#;
        std::fs::write(dir.path().join(STREAMS_FILE), old).unwrap();
        let loaded = FileCatalog::new(dir.path()).load().await.unwrap();
        assert_eq!(loaded, vec![stream("a", 24)]);
        assert_eq!(loaded[0].log_name(), "kinesis:a");
    }
}
