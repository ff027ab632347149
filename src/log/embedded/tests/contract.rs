//! The log's contract (`crate::log::contract`) on [`EmbeddedStore`]: small segments, so that
//! retention deletes some.

use crate::codec::encryption::{KeyRing, MasterKey};
use crate::log::contract::{contract_suite, Harness};
use crate::log::{AtRestKeys, LogStore};

use super::*;

struct Embedded {
    dir: tempfile::TempDir,
}

impl Embedded {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("a temp dir") }
    }
}

impl Harness for Embedded {
    fn store(&self) -> Arc<dyn LogStore> {
        Arc::new(EmbeddedStore::new(self.dir.path(), opts(512), DiskBudget::new(None)))
    }

    fn keys(&self) -> AtRestKeys {
        let key = MasterKey::from_bytes("contract", &[3u8; 32]).expect("a key");
        let ring = KeyRing::new("contract", [key]).expect("a ring");
        AtRestKeys { ring: Some(Arc::new(ring)), encrypt: false }
    }
}

contract_suite!(Embedded::new());
