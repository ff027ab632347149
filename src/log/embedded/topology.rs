//! `shards.json` in a stream's directory: the log's [`Lineage`] once it has split or merged
//! (a log that never did has none, and its shards are the `shard-NNNN` directories). Written
//! atomically and durably before a reshard takes effect, so it is the reshard's commit point.
//!
//! A closed shard's end is not stored: nothing is appended to a shard once the file says it
//! is closed, so its end is where its recovered log ends.

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::dirs;
use crate::log::lineage::StoredShard;
use crate::log::{Lineage, ShardId};

/// The file's name in a stream's directory.
pub const TOPOLOGY_FILE: &str = "shards.json";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    /// Layout of this file (1).
    format: u32,
    shards: Vec<StoredShard>,
}

/// The stored lineage, with each closed shard's end given by `end_of` (its recovered end);
/// `None` when the log never resharded.
pub fn load(stream_dir: &Path, end_of: impl Fn(ShardId) -> u64) -> io::Result<Option<Lineage>> {
    let path = stream_dir.join(TOPOLOGY_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let damaged = |reason: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is damaged: {reason}", path.display()),
        )
    };
    let stored: Stored = serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))?;
    if stored.format != 1 {
        return Err(damaged(format!("format {} is not one this version reads", stored.format)));
    }
    Lineage::from_stored(&stored.shards, end_of).map(Some).map_err(damaged)
}

/// Stores `lineage` atomically and durably.
pub fn store(stream_dir: &Path, lineage: &Lineage) -> io::Result<()> {
    let stored = Stored { format: 1, shards: lineage.to_stored() };
    let json = serde_json::to_vec_pretty(&stored).expect("plain fields serialize");
    dirs::write_file_private(&stream_dir.join(TOPOLOGY_FILE), &json, ".tmp")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{Reshard, ShardState};

    #[test]
    fn a_stored_lineage_loads_with_the_ends_the_shards_recovered() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path(), |_| 0).unwrap().is_none(), "no file: never resharded");
        let mut lineage = Lineage::fixed(2);
        lineage.apply(Reshard::Split { shard: ShardId(1), at: u128::MAX - 3 }, &[0]).unwrap();
        store(dir.path(), &lineage).unwrap();
        let loaded = load(dir.path(), |_| 0).unwrap().unwrap();
        assert_eq!(loaded, lineage);
        let with_end = load(dir.path(), |id| u64::from(id.0) + 40).unwrap().unwrap();
        assert_eq!(with_end.get(ShardId(1)).unwrap().state, ShardState::Closed { end: 41 });
    }

    #[test]
    fn a_damaged_file_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(TOPOLOGY_FILE), b"{\"format\":1,\"shards\":[]}").unwrap();
        let e = load(dir.path(), |_| 0).unwrap_err();
        assert!(e.to_string().contains("shards.json is damaged"), "{e}");
    }
}
