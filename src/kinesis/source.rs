//! A Kinesis stream's log as a Firehose delivery stream reads it (`KinesisStreamAsSource`):
//! the same shards, records and seals, with each record's Kinesis envelope (partition key)
//! taken off, so that delivery sees the producer's data, and with the delivery stream's
//! consumers named after it, so that several delivery streams (and retention) each keep their
//! own checkpoints in the one log. Appends are refused: producers write to the Kinesis stream.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::future::BoxFuture;

use super::record;
use crate::log::{
    Append, AppendError, Appended, Assignments, AtRestKeys, Capabilities, Cause, EncryptionError,
    Entry, LeaseError, ReadBatch, ReadError, ReadFrom, ReadLimit, Reshard, ReshardError,
    SealOutcome, SealProposal, ShardId, ShardInfo, ShardProblem, ShardReader, ShardStats,
    StreamLog,
};

/// The log of Kinesis stream `stream` as delivery stream `reader` reads it. While it lives,
/// the reader is listed in the stream's `readers` (so the stream is not deleted under it).
#[derive(Debug)]
pub struct SourceLog {
    inner: Arc<dyn StreamLog>,
    stream: String,
    reader: String,
    readers: Arc<Mutex<BTreeSet<String>>>,
}

impl SourceLog {
    pub fn new(
        inner: Arc<dyn StreamLog>,
        stream: &str,
        reader: &str,
        readers: Arc<Mutex<BTreeSet<String>>>,
    ) -> Self {
        readers.lock().unwrap_or_else(|e| e.into_inner()).insert(reader.to_string());
        Self { inner, stream: stream.to_string(), reader: reader.to_string(), readers }
    }

    /// The name `consumer` of the delivery stream has in the Kinesis stream's log.
    pub fn consumer_name(reader: &str, consumer: &str) -> String {
        format!("firehose.{reader}.{consumer}")
    }
}

impl Drop for SourceLog {
    fn drop(&mut self) {
        self.readers.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.reader);
    }
}

#[derive(Debug, thiserror::Error)]
#[error("delivery stream {reader} reads Kinesis stream {stream}: put records there")]
struct NotWritable {
    reader: String,
    stream: String,
}

#[async_trait]
impl StreamLog for SourceLog {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn shards(&self) -> Vec<ShardInfo> {
        self.inner.shards()
    }

    async fn append(&self, records: Vec<Append>) -> Vec<Result<Appended, AppendError>> {
        let refused = NotWritable { reader: self.reader.clone(), stream: self.stream.clone() };
        let cause = Cause::new(refused);
        records.iter().map(|_| Err(AppendError::Unavailable(cause.clone()))).collect()
    }

    async fn reader(
        &self,
        shard: ShardId,
        from: ReadFrom,
    ) -> Result<Box<dyn ShardReader>, ReadError> {
        let inner = self.inner.reader(shard, from).await?;
        Ok(Box::new(SourceReader { inner }))
    }

    fn assignments(&self, consumer: &str) -> Result<Assignments, LeaseError> {
        self.inner.assignments(&Self::consumer_name(&self.reader, consumer))
    }

    /// The Kinesis stream's encryption at rest is its own: a delivery stream does not switch
    /// it.
    async fn switch_encryption(&self, _keys: AtRestKeys) -> Result<(), EncryptionError> {
        Ok(())
    }

    async fn forget(&self, consumer: &str) -> Result<(), LeaseError> {
        self.inner.forget(&Self::consumer_name(&self.reader, consumer)).await
    }

    /// The Kinesis stream's shards are its owner's to change.
    async fn reshard(&self, _change: Reshard) -> Result<Vec<ShardId>, ReshardError> {
        Err(ReshardError::Unsupported)
    }

    fn stats(&self) -> Vec<ShardStats> {
        self.inner.stats()
    }

    fn problems(&self) -> Vec<ShardProblem> {
        self.inner.problems()
    }

    /// The Kinesis stream's log stays open: it is its registry's to close.
    async fn close(&self) {}
}

/// Reads a shard of the Kinesis stream, giving each record's data without its envelope.
#[derive(Debug)]
struct SourceReader {
    inner: Box<dyn ShardReader>,
}

impl ShardReader for SourceReader {
    fn shard(&self) -> ShardId {
        self.inner.shard()
    }

    fn position(&self) -> u64 {
        self.inner.position()
    }

    fn read(&mut self, limit: ReadLimit) -> Result<ReadBatch, ReadError> {
        let mut batch = self.inner.read(limit)?;
        for entry in &mut batch.entries {
            if let Entry::Record(r) = entry {
                let decoded = record::decode(&r.data).map_err(|why| {
                    ReadError::Damaged(Cause::new(std::io::Error::other(format!(
                        "shard {} position {}: not a Kinesis record: {why}",
                        self.inner.shard(),
                        r.seq
                    ))))
                })?;
                r.data = decoded.data;
            }
        }
        Ok(batch)
    }

    fn changed(&mut self) -> BoxFuture<'_, ()> {
        self.inner.changed()
    }

    fn seal(&mut self, proposal: SealProposal) -> BoxFuture<'_, Result<SealOutcome, ReadError>> {
        self.inner.seal(proposal)
    }
}
