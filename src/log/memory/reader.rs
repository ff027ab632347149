//! [`ShardReader`] on a [`MemoryLog`](super::MemoryLog)'s shard.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::watch;

use super::{entry, stored_len, Backing, Stored};
use crate::log::{
    ReadBatch, ReadError, ReadLimit, Seal, SealOutcome, SealProposal, ShardId, ShardReader,
    ShardState,
};

/// Reads one shard of a [`MemoryLog`](super::MemoryLog).
#[derive(Debug)]
pub(super) struct MemoryReader {
    pub(super) backing: Arc<Backing>,
    pub(super) shard: ShardId,
    pub(super) position: u64,
    pub(super) ended: bool,
    pub(super) changes: watch::Receiver<u64>,
}

impl ShardReader for MemoryReader {
    fn shard(&self) -> ShardId {
        self.shard
    }

    fn position(&self) -> u64 {
        self.position
    }

    fn read(&mut self, limit: ReadLimit) -> Result<ReadBatch, ReadError> {
        let mut state = self.backing.lock();
        let shard = state.shard(self.shard).expect("readers are made for shards of the log");
        if self.ended {
            // Nothing comes after the end: caught up for good.
            let watermark = self.backing.now(&mut state);
            return Ok(ReadBatch { entries: Vec::new(), caught_up: Some(watermark) });
        }
        if self.position < shard.first_retained {
            let first_retained = shard.first_retained;
            return Err(ReadError::Trimmed { requested: self.position, first_retained });
        }
        let mut entries = Vec::new();
        let mut bytes = 0;
        let from = self.position;
        for e in shard.entries.iter().filter(|(pos, _)| *pos >= from) {
            if self.ended {
                break;
            }
            if entries.len() >= limit.entries || bytes >= limit.bytes {
                return Ok(ReadBatch { entries, caught_up: None });
            }
            bytes += stored_len(&e.1) as usize;
            self.ended = matches!(e.1, Stored::End(_));
            entries.push(entry(e, shard));
            self.position = e.0 + 1;
        }
        let lead = self.backing.watermark_lead_ms.load(Ordering::Acquire);
        let watermark = self.backing.now(&mut state).saturating_add(lead);
        Ok(ReadBatch { entries, caught_up: Some(watermark) })
    }

    fn changed(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if self.changes.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }

    /// The first seal at a position wins; later proposals there get it.
    fn seal(&mut self, proposal: SealProposal) -> BoxFuture<'_, Result<SealOutcome, ReadError>> {
        let mut state = self.backing.lock();
        let shard = state.shard_mut(self.shard).expect("readers are made for shards of the log");
        let at = shard.entries.iter().find(|(pos, _)| *pos >= self.position).cloned();
        let outcome = match at {
            None if shard.info.state == ShardState::Open => {
                let SealProposal { watermark_ms, kind } = proposal;
                let seal = Seal { position: self.position, watermark_ms, kind };
                shard.entries.push((self.position, Stored::Seal(seal)));
                shard.next_seq = self.position + 1;
                self.position += 1;
                SealOutcome::Sealed(seal)
            }
            Some((pos, Stored::Seal(seal))) if pos == self.position => {
                self.position += 1;
                SealOutcome::Sealed(seal)
            }
            _ => SealOutcome::Moved,
        };
        drop(state);
        if matches!(outcome, SealOutcome::Sealed(_)) {
            self.backing.changed();
        }
        Box::pin(std::future::ready(Ok(outcome)))
    }
}
