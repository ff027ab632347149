//! A consumer's markers in a shard directory: `<consumer>-markers.json`, beside its checkpoint
//! (`checkpoint.rs`). The format is docs/log-format.md's:
//!
//! ```json
//! {"delivered":[{"partition":{"query":{"k":"a"},"lambda":{}},"seq":4,"sub":1},
//!               {"errors":"partitioning-failed","seq":5,"sub":0}]}
//! ```
//!
//! Written atomically (temp file, fsync, rename, fsync of the directory) *before* the
//! checkpoint it goes with, so that a crash between the two leaves markers newer than the
//! checkpoint (harmless: they only skip delivered records), never older.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::checkpoint;
use crate::log::{MarkerKey, Markers, Position};

const SUFFIX: &str = "-markers.json";

#[derive(Serialize, Deserialize)]
struct MarkersFile {
    delivered: Vec<MarkerEntry>,
}

#[derive(Serialize, Deserialize)]
struct MarkerEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    partition: Option<PartitionJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    errors: Option<String>,
    seq: u64,
    sub: u32,
}

#[derive(Serialize, Deserialize)]
struct PartitionJson {
    query: BTreeMap<String, String>,
    lambda: BTreeMap<String, String>,
}

/// `<consumer>-markers.json` (`delivery-markers.json` for the delivery worker).
fn file_name(consumer: &str) -> String {
    format!("{consumer}{SUFFIX}")
}

/// Where the consumer's markers are in shard directory `dir`.
pub fn path(dir: &Path, consumer: &str) -> std::path::PathBuf {
    dir.join(file_name(consumer))
}

/// The consumer's markers in shard directory `dir`; none when it has no file yet. Entries that
/// name neither or both kinds of key are skipped.
pub fn load(dir: &Path, consumer: &str) -> io::Result<Markers> {
    let name = file_name(consumer);
    let text = match fs::read(dir.join(&name)) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Markers::new()),
        Err(e) => return Err(e),
    };
    let file: MarkersFile = serde_json::from_slice(&text)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{name}: {e}")))?;
    let mut markers = Markers::new();
    for entry in file.delivered {
        let key = match (entry.partition, entry.errors) {
            (Some(p), None) => MarkerKey::Partition { query: p.query, lambda: p.lambda },
            (None, Some(kind)) => MarkerKey::Errors(kind),
            _ => continue,
        };
        markers.insert(key, Position { seq: entry.seq, sub: entry.sub });
    }
    Ok(markers)
}

/// Atomically replaces the consumer's markers in shard directory `dir`.
pub fn store(dir: &Path, consumer: &str, markers: &Markers) -> io::Result<()> {
    let delivered = markers
        .iter()
        .map(|(key, pos)| {
            let (partition, errors) = match key {
                MarkerKey::Partition { query, lambda } => {
                    (Some(PartitionJson { query: query.clone(), lambda: lambda.clone() }), None)
                }
                MarkerKey::Errors(kind) => (None, Some(kind.clone())),
            };
            MarkerEntry { partition, errors, seq: pos.seq, sub: pos.sub }
        })
        .collect();
    let json = serde_json::to_vec(&MarkersFile { delivered }).map_err(io::Error::other)?;
    let name = file_name(consumer);
    checkpoint::write_atomic(&dir.join(format!(".{name}.tmp")), &dir.join(name), &json)
}

/// Keeps every consumer's markers in shard directory `dir` below `end`, the shard's next
/// sequence number as recovered; returns how many markers had to be lowered. Run when the shard
/// is opened, before any record is appended or read.
///
/// A marker at or past `end` names a record the log no longer holds: its tail was lost (a power
/// loss under `fsync: { interval_ms }`) or cut by hand (docs/log-format.md), and the log hands
/// those sequence numbers to new records, which the marker would skip as delivered. Such a
/// marker still says that every record of its key *below* `end` was delivered (a key's records
/// are delivered in order), so it is lowered to the last position before `end` rather than
/// dropped, which would deliver those records again.
pub fn lower_to_end(dir: &Path, end: u64) -> io::Result<usize> {
    let mut lowered = 0;
    for consumer in consumers_with_markers(dir)? {
        lowered += lower_one(dir, &consumer, end)?;
    }
    Ok(lowered)
}

fn lower_one(dir: &Path, consumer: &str, end: u64) -> io::Result<usize> {
    let mut markers = load(dir, consumer)?;
    if markers.values().all(|pos| pos.seq < end) {
        return Ok(0);
    }
    let last_kept = end.checked_sub(1).map(|seq| Position { seq, sub: u32::MAX });
    let mut lowered = 0;
    markers.retain(|_, pos| {
        if pos.seq < end {
            return true;
        }
        lowered += 1;
        match last_kept {
            Some(last) => {
                *pos = last;
                true
            }
            None => false,
        }
    });
    store(dir, consumer, &markers)?;
    tracing::error!(dir = %dir.display(), consumer, lowered, next_seq = end,
        "delivery markers were ahead of the log (records lost after a power loss with fsync interval, or files removed); lowered to the log's end so that new records are delivered");
    Ok(lowered)
}

/// The consumers that have a markers file in `dir`.
fn consumers_with_markers(dir: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(consumer) = name.to_str().and_then(|n| n.strip_suffix(SUFFIX)) else { continue };
        if checkpoint::validate_consumer(consumer).is_ok() {
            out.push(consumer.to_string());
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(p: &str) -> MarkerKey {
        MarkerKey::Partition {
            query: BTreeMap::from([("k".into(), p.into())]),
            lambda: BTreeMap::new(),
        }
    }

    fn pos(seq: u64, sub: u32) -> Position {
        Position { seq, sub }
    }

    #[test]
    fn markers_survive_a_store_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let markers = Markers::from([
            (partition("3"), pos(10, 2)),
            (MarkerKey::Errors("partitioning-failed".into()), pos(11, 0)),
        ]);
        store(dir.path(), "delivery", &markers).unwrap();
        assert_eq!(load(dir.path(), "delivery").unwrap(), markers);
        assert!(load(dir.path(), "backup").unwrap().is_empty());
        assert!(load(&dir.path().join("none"), "delivery").unwrap().is_empty());
    }

    #[test]
    fn markers_past_the_log_end_are_lowered_below_it_and_stored() {
        let dir = tempfile::tempdir().unwrap();
        let errors = MarkerKey::Errors("partitioning-failed".into());
        let markers = Markers::from([
            (partition("1"), pos(4, 0)),
            (partition("2"), pos(9, 3)),
            (errors.clone(), pos(12, 0)),
        ]);
        store(dir.path(), "delivery", &markers).unwrap();
        store(dir.path(), "backup", &Markers::from([(partition("1"), pos(8, 0))])).unwrap();

        assert_eq!(lower_to_end(dir.path(), 13).unwrap(), 0);
        assert_eq!(lower_to_end(dir.path(), 7).unwrap(), 3, "two of delivery, one of backup");
        let back = load(dir.path(), "delivery").unwrap();
        assert_eq!(back[&partition("1")], pos(4, 0));
        assert_eq!(back[&partition("2")], pos(6, u32::MAX));
        assert_eq!(back[&errors], pos(6, u32::MAX));
        assert_eq!(load(dir.path(), "backup").unwrap()[&partition("1")], pos(6, u32::MAX));
        // A log cut back to nothing keeps no marker.
        assert_eq!(lower_to_end(dir.path(), 0).unwrap(), 4);
        assert!(load(dir.path(), "delivery").unwrap().is_empty());
    }
}
