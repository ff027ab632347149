//! [`ShardReader`] on a shard's segment files: committed records and seals in order, records
//! opened when they are encrypted at rest, and the watermark when the reader has caught up.
//! A seal is a frame of its own in the shard (docs/log-format.md): the first one recorded at a
//! position holds, for every reader and after restarts.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::watch;

use super::at_rest::ShardAtRest;
use super::error as embedded;
use super::shard::{self, Shard};
use super::stream_log::ShardFate;
use crate::log::{
    Cause, Entry, ReadBatch, ReadError, ReadLimit, SealOutcome, SealProposal, ShardId, ShardReader,
};

/// Reads one shard of an [`EmbeddedLog`](super::EmbeddedLog).
pub(super) struct EmbeddedReader {
    id: ShardId,
    shard: Shard,
    records: shard::ShardReader,
    at_rest: Arc<ShardAtRest>,
    /// Sees `next_seq` at every commit.
    commits: watch::Receiver<u64>,
    /// An entry read ahead by a seal proposal that found it at its position (it is returned
    /// next).
    ahead: Option<Entry>,
    /// Whether the shard is closing or closed, and where it ends.
    fate: Arc<ShardFate>,
    /// The shard's end was returned: nothing follows.
    ended: bool,
}

impl std::fmt::Debug for EmbeddedReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedReader")
            .field("shard", &self.id)
            .field("position", &self.position())
            .finish()
    }
}

impl EmbeddedReader {
    pub(super) fn new(
        id: ShardId,
        shard: &Shard,
        at_rest: Arc<ShardAtRest>,
        fate: Arc<ShardFate>,
        from: u64,
    ) -> Result<Self, ReadError> {
        let commits = shard.subscribe();
        let records = shard.reader(from).map_err(read_error)?;
        let shard = shard.clone();
        Ok(Self { id, shard, records, at_rest, commits, ahead: None, fate, ended: false })
    }

    /// The next committed entry, a record opened, if any; a closed shard's end after its last
    /// entry.
    fn next(&mut self) -> Result<Option<Entry>, ReadError> {
        if let Some(entry) = self.ahead.take() {
            return Ok(Some(entry));
        }
        if self.ended {
            return Ok(None);
        }
        match self.records.next().map_err(read_error)? {
            Some(Entry::Record(mut record)) => {
                record.data = self
                    .at_rest
                    .open_record(record.seq, record.data)
                    .map_err(|e| ReadError::Decrypt(Cause::new(e)))?;
                Ok(Some(Entry::Record(record)))
            }
            None => Ok(self.end_here()),
            other => Ok(other),
        }
    }

    /// The shard's end, when it is closed and the reader is at its end.
    fn end_here(&mut self) -> Option<Entry> {
        let end = self.fate.end.get()?;
        if self.records.position() < end.position {
            return None;
        }
        self.ended = true;
        Some(Entry::End(end.clone()))
    }

    /// Records `proposal` at `position` unless an entry is there, then reads what holds there.
    async fn seal_at(
        &mut self,
        position: u64,
        proposal: SealProposal,
    ) -> Result<SealOutcome, ReadError> {
        let SealProposal { watermark_ms, kind } = proposal;
        match self.shard.seal(position, watermark_ms, kind).await {
            Ok(_) => {}
            // The shard is closing: its end follows its last entry, read on.
            Err(embedded::AppendError::Closed) if self.fate.closing.load(Ordering::Acquire) => {
                return Ok(SealOutcome::Moved)
            }
            Err(e) => return Err(seal_error(e)),
        }
        // Committed at `position` now: this seal, another reader's, or a record.
        match self.next()? {
            Some(Entry::Seal(seal)) => Ok(SealOutcome::Sealed(seal)),
            entry => {
                self.ahead = entry;
                Ok(SealOutcome::Moved)
            }
        }
    }
}

impl ShardReader for EmbeddedReader {
    fn shard(&self) -> ShardId {
        self.id
    }

    fn position(&self) -> u64 {
        match &self.ahead {
            Some(Entry::Record(r)) => r.seq,
            Some(Entry::Seal(s)) => s.position,
            Some(Entry::End(e)) => e.position,
            None => self.records.position(),
        }
    }

    fn read(&mut self, limit: ReadLimit) -> Result<ReadBatch, ReadError> {
        let mut entries = Vec::new();
        let mut bytes = 0;
        while entries.len() < limit.entries && bytes < limit.bytes {
            let entry = match self.next()? {
                Some(entry) => entry,
                None => {
                    // Read the watermark, then look again: every record committed after the
                    // watermark was read arrives at or after it, so if nothing is there now,
                    // nothing that arrived before it can still appear.
                    let watermark = self.shard.watermark_ms();
                    match self.next()? {
                        Some(entry) => entry,
                        None => return Ok(ReadBatch { entries, caught_up: Some(watermark) }),
                    }
                }
            };
            if let Entry::Record(record) = &entry {
                bytes += record.data.len();
            }
            entries.push(entry);
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

    /// A seal frame at the reader's position, written by the shard's writer only if nothing
    /// is committed there; what holds there is then read back (the first seal wins).
    fn seal(&mut self, proposal: SealProposal) -> BoxFuture<'_, Result<SealOutcome, ReadError>> {
        if self.ahead.is_none() {
            self.ahead = self.end_here();
        }
        if self.ahead.is_some() || self.ended {
            // An entry is known to be at the position (or the end): read it first.
            return Box::pin(std::future::ready(Ok(SealOutcome::Moved)));
        }
        let position = self.records.position();
        Box::pin(self.seal_at(position, proposal))
    }
}

/// What a failed seal write means to readers: the shard cannot take it now.
fn seal_error(e: embedded::AppendError) -> ReadError {
    ReadError::Unavailable(Cause::new(e))
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
