//! The log's contract on [`MemoryStore`].

use super::*;
use crate::log::contract::{contract_suite, Harness};

struct Memory {
    store: Arc<MemoryStore>,
}

impl Memory {
    fn new() -> Self {
        Self { store: MemoryStore::new() }
    }
}

impl Harness for Memory {
    fn store(&self) -> Arc<dyn LogStore> {
        self.store.clone()
    }

    fn keys(&self) -> AtRestKeys {
        let key = crate::codec::encryption::MasterKey::from_bytes("m", &[4u8; 32]).unwrap();
        let ring = crate::codec::encryption::KeyRing::new("m", [key]).unwrap();
        AtRestKeys { ring: Some(Arc::new(ring)), encrypt: false }
    }

    fn take_over(&self, stream: &str, shard: ShardId, consumer: &str) {
        self.store.log(stream).take_over(shard, consumer);
    }
}

contract_suite!(Memory::new());
