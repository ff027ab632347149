//! [`ShardReader`] on a shard's segment files: committed records in order, opened when they
//! are encrypted at rest, and the watermark when the reader has caught up.

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::watch;

use super::at_rest::ShardAtRest;
use super::error as embedded;
use super::shard::{self, Shard};
use crate::log::{
    Cause, Entry, ReadBatch, ReadError, ReadLimit, Record, Seal, SealOutcome, SealProposal,
    ShardId, ShardReader,
};

/// Reads one shard of an [`EmbeddedLog`](super::EmbeddedLog).
pub(super) struct EmbeddedReader {
    id: ShardId,
    shard: Shard,
    records: shard::ShardReader,
    at_rest: Arc<ShardAtRest>,
    /// Sees `next_seq` at every commit.
    commits: watch::Receiver<u64>,
}

impl std::fmt::Debug for EmbeddedReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedReader")
            .field("shard", &self.id)
            .field("position", &self.records.position())
            .finish()
    }
}

impl EmbeddedReader {
    pub(super) fn new(
        id: ShardId,
        shard: &Shard,
        at_rest: Arc<ShardAtRest>,
        from: u64,
    ) -> Result<Self, ReadError> {
        let commits = shard.subscribe();
        let records = shard.reader(from).map_err(read_error)?;
        Ok(Self { id, shard: shard.clone(), records, at_rest, commits })
    }

    /// The next committed record, opened, if any.
    fn next(&mut self) -> Result<Option<Record>, ReadError> {
        let Some(mut record) = self.records.next().map_err(read_error)? else { return Ok(None) };
        record.data = self
            .at_rest
            .open_record(record.seq, record.data)
            .map_err(|e| ReadError::Decrypt(Cause::new(e)))?;
        Ok(Some(record))
    }
}

impl ShardReader for EmbeddedReader {
    fn shard(&self) -> ShardId {
        self.id
    }

    fn position(&self) -> u64 {
        self.records.position()
    }

    fn read(&mut self, limit: ReadLimit) -> Result<ReadBatch, ReadError> {
        let mut entries = Vec::new();
        let mut bytes = 0;
        while entries.len() < limit.entries && bytes < limit.bytes {
            let record = match self.next()? {
                Some(record) => record,
                None => {
                    // Read the watermark, then look again: every record committed after the
                    // watermark was read arrives at or after it, so if nothing is there now,
                    // nothing that arrived before it can still appear.
                    let watermark = self.shard.watermark_ms();
                    match self.next()? {
                        Some(record) => record,
                        None => return Ok(ReadBatch { entries, caught_up: Some(watermark) }),
                    }
                }
            };
            bytes += record.data.len();
            entries.push(Entry::Record(record));
        }
        Ok(ReadBatch { entries, caught_up: None })
    }

    fn changed(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // The sender lives as long as the shard, which this reader holds.
            if self.commits.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }

    /// Seals are not stored: one holds for this reader only, which is what the caller applies.
    fn seal(&mut self, proposal: SealProposal) -> BoxFuture<'_, Result<SealOutcome, ReadError>> {
        let position = self.records.position();
        let outcome = if self.shard.next_seq() == position {
            let SealProposal { watermark_ms, kind } = proposal;
            SealOutcome::Sealed(Seal { position, watermark_ms, kind })
        } else {
            SealOutcome::Moved
        };
        Box::pin(std::future::ready(Ok(outcome)))
    }
}

/// What a shard read failure means to readers.
pub(super) fn read_error(e: embedded::ReadError) -> ReadError {
    match e {
        embedded::ReadError::Trimmed { requested, first_retained } => {
            ReadError::Trimmed { requested, first_retained }
        }
        embedded::ReadError::BeyondEnd { requested, next_seq } => {
            ReadError::BeyondEnd { requested, next_seq }
        }
        embedded::ReadError::Corrupt { .. } => ReadError::Damaged(Cause::new(e)),
        embedded::ReadError::Io { .. } => ReadError::Unavailable(Cause::new(e)),
    }
}
