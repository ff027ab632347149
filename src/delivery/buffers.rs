//! One buffer per destination key (a dynamic partition, or an error-output type), each cut by
//! its own size and arrival window, as Firehose keeps one buffer per evaluated prefix.
//!
//! The rules read only what the log holds, never the wall clock at flush time:
//! - a buffer opens with its first record and takes the records of its key that follow, until
//!   the next one would pass `SizeInMBs` (bytes after processing, before compression);
//! - it is sealed once any record, of any key, is routed whose arrival time is at or past the
//!   buffer's window end (`first arrival + IntervalInSeconds`); when the log is read to its end,
//!   the shard's watermark stands in for that next record, since everything committed later
//!   arrives at or after the watermark.
//!
//! So the objects are a function of the log's order and arrival times. A crash replays from the
//! checkpoint, which can only move to the oldest record still in an open buffer, so records are
//! read again that other buffers already delivered: the uploader keeps, per key, the position
//! of the last record it delivered ([`Markers`]), and a replayed record at or below its key's
//! marker is skipped. Every buffer then starts where it first started and comes out the same,
//! under the same key.

use std::collections::{BTreeSet, HashMap};
use std::io;

use bytes::Bytes;
use md5::{Digest, Md5};

use super::batch::BatchPolicy;
pub use super::markers::{Markers, Progress, Step};
use crate::codec::{ObjectCodec, ObjectEncoder, PushError, RecordError};
use crate::naming::Partition;

/// `!{firehose:error-output-type}` of records whose partition could not be determined
/// (extraction failed, a key the prefix needs is missing, or the partition cap was reached).
pub const PARTITIONING_FAILED: &str = "partitioning-failed";

/// A record's place in the shard: its sequence number and, for records de-aggregated from
/// one log record, the index of the sub-record.
pub use crate::log::Position as Pos;

/// What a buffer collects: the records of one partition, or the error documents of one type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BufferKey {
    Data(Partition),
    Errors(&'static str),
}

/// How a data buffer holds its records: encoded into one object body (S3, warehouse staging),
/// or kept one by one for destinations that send records individually (search documents,
/// HTTP endpoint records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Object,
    Records,
}

/// A record kept by a [`Layout::Records`] buffer.
#[derive(Debug, Clone)]
pub struct BufferedRecord {
    pub pos: Pos,
    pub arrival_ms: i64,
    pub data: Bytes,
}

/// One sealed buffer: an object ready to deliver.
pub struct Unit {
    pub key: BufferKey,
    /// Tells this object's key apart from other objects covering the same sequence numbers
    /// (0 for the stream's one unpartitioned buffer).
    pub variant: u64,
    /// The object (empty for [`Layout::Records`] data buffers).
    pub body: Bytes,
    /// The records one by one ([`Layout::Records`] data buffers only).
    pub items: Vec<BufferedRecord>,
    /// Records (or error documents) in it.
    pub records: u64,
    /// Record bytes in it, before compression.
    pub bytes: u64,
    pub first: Pos,
    pub last: Pos,
    /// Arrival time of its oldest record: its key's timestamps.
    pub oldest_arrival_ms: i64,
    /// Where the checkpoint may move once this object and every one sealed before it are
    /// delivered: the oldest record still open in some buffer or not yet routed.
    pub checkpoint_after: u64,
}

/// What became of a record offered to its buffer.
pub enum Pushed {
    Accepted,
    /// Already delivered before a restart (at or below its key's marker).
    Skipped,
    /// The object format refused it; it belongs in the error output.
    Rejected(RecordError),
}

enum Content {
    Object(Box<dyn ObjectEncoder>),
    Records(Vec<BufferedRecord>),
    /// JSON lines of error documents.
    Errors(Vec<u8>),
}

struct Open {
    id: u64,
    content: Content,
    first: Pos,
    last: Pos,
    window_end: i64,
    oldest_arrival_ms: i64,
    records: u64,
    bytes: u64,
}

/// The open buffers of one shard.
pub struct Buffers<'c> {
    policy: BatchPolicy,
    codec: &'c ObjectCodec,
    layout: Layout,
    partitioned: bool,
    open: HashMap<BufferKey, Open>,
    keys: HashMap<u64, BufferKey>,
    by_window: BTreeSet<(i64, u64)>,
    by_first_seq: BTreeSet<(u64, u64)>,
    next_id: u64,
    data_open: usize,
    skip: Markers,
    floor: u64,
    sealed: Vec<Unit>,
}

impl<'c> Buffers<'c> {
    /// Empty buffers; `skip` holds what was delivered before a restart, `floor` is the first
    /// record not yet routed (the checkpoint the worker starts from).
    pub fn new(
        policy: BatchPolicy,
        codec: &'c ObjectCodec,
        layout: Layout,
        partitioned: bool,
        skip: Markers,
        floor: u64,
    ) -> Self {
        Self {
            policy,
            codec,
            layout,
            partitioned,
            open: HashMap::new(),
            keys: HashMap::new(),
            by_window: BTreeSet::new(),
            by_first_seq: BTreeSet::new(),
            next_id: 0,
            data_open: 0,
            skip,
            floor,
            sealed: Vec::new(),
        }
    }

    /// Declares that no record before `seq` is still waiting to be routed: the checkpoint of a
    /// buffer sealed from now on never passes `seq` (or an older open buffer).
    pub fn set_floor(&mut self, seq: u64) {
        self.floor = seq;
    }

    /// Seals every buffer whose window ends at or before `arrival_ms`: a record that arrived
    /// then is routed next, or the watermark says nothing earlier can still come.
    pub fn advance(&mut self, arrival_ms: i64) -> io::Result<()> {
        while let Some(&(window_end, id)) = self.by_window.first() {
            if window_end > arrival_ms {
                break;
            }
            let key = self.keys.get(&id).expect("indexed").clone();
            self.seal(&key)?;
        }
        Ok(())
    }

    /// Whether a buffer for `key` is open.
    pub fn is_open(&self, key: &BufferKey) -> bool {
        self.open.contains_key(key)
    }

    /// Open data buffers (partitions), for the partition cap.
    pub fn open_partitions(&self) -> usize {
        self.data_open
    }

    /// Whether `pos` of `key` was delivered before the restart.
    pub fn delivered(&self, key: &BufferKey, pos: Pos) -> bool {
        self.skip.covers(key, pos)
    }

    /// The earliest window end among open buffers: when the next one is due.
    pub fn next_window_end(&self) -> Option<i64> {
        self.by_window.first().map(|&(end, _)| end)
    }

    /// Arrival time of the oldest record in an open buffer.
    pub fn oldest_open_arrival(&self) -> Option<i64> {
        self.open.values().map(|o| o.oldest_arrival_ms).min()
    }

    /// Objects sealed since the last call, in the order they must be delivered. Call it only
    /// between records (with the floor set past the last one routed): the last object then
    /// carries the checkpoint of everything routed so far, not the one it was sealed with.
    pub fn take_sealed(&mut self) -> Vec<Unit> {
        let bound = self.checkpoint_bound();
        let mut sealed = std::mem::take(&mut self.sealed);
        if let Some(last) = sealed.last_mut() {
            last.checkpoint_after = last.checkpoint_after.max(bound);
        }
        sealed
    }

    /// The oldest record still open in a buffer or not yet routed.
    fn checkpoint_bound(&self) -> u64 {
        match self.by_first_seq.first() {
            Some(&(seq, _)) => seq.min(self.floor),
            None => self.floor,
        }
    }

    /// Offers one processed record to its partition's buffer.
    pub fn push_data(
        &mut self,
        partition: Partition,
        pos: Pos,
        arrival_ms: i64,
        data: Bytes,
    ) -> io::Result<Pushed> {
        self.advance(arrival_ms)?;
        let key = BufferKey::Data(partition);
        if self.skip.covers(&key, pos) {
            return Ok(Pushed::Skipped);
        }
        self.make_room(&key, data.len() as u64)?;
        let record = BufferedRecord { pos, arrival_ms, data };
        let rejected = match self.open.get_mut(&key) {
            Some(open) => add_record(&mut open.content, &record)?,
            None => {
                // A buffer opens only with a record the format accepts: a refused first record
                // must not become the buffer's start.
                let mut content = match self.layout {
                    Layout::Records => Content::Records(Vec::new()),
                    Layout::Object => Content::Object(self.codec.encoder()),
                };
                let rejected = add_record(&mut content, &record)?;
                if rejected.is_none() {
                    self.open_with(key.clone(), content, pos, arrival_ms);
                }
                rejected
            }
        };
        if let Some(e) = rejected {
            return Ok(Pushed::Rejected(e));
        }
        self.added(&key, pos, arrival_ms, record.data.len() as u64)?;
        Ok(Pushed::Accepted)
    }

    /// Adds one error document (JSON, without its newline) to its type's buffer. `false` when
    /// it was delivered before.
    pub fn push_error(
        &mut self,
        output_type: &'static str,
        pos: Pos,
        arrival_ms: i64,
        document: Vec<u8>,
    ) -> io::Result<bool> {
        self.advance(arrival_ms)?;
        let key = BufferKey::Errors(output_type);
        if self.skip.covers(&key, pos) {
            return Ok(false);
        }
        let mut line = document;
        line.push(b'\n');
        self.make_room(&key, line.len() as u64)?;
        if !self.open.contains_key(&key) {
            self.open_with(key.clone(), Content::Errors(Vec::new()), pos, arrival_ms);
        }
        let open = self.open.get_mut(&key).expect("opened");
        let Content::Errors(lines) = &mut open.content else {
            unreachable!("error keys hold documents")
        };
        lines.extend_from_slice(&line);
        self.added(&key, pos, arrival_ms, line.len() as u64)?;
        Ok(true)
    }

    /// Seals every open buffer (the end of a finite input, in tests and tools).
    pub fn seal_all(&mut self) -> io::Result<()> {
        self.advance(i64::MAX)
    }

    /// Whether a record of `len` bytes for `key` would start a new object (no buffer is
    /// open, or the open one is full), once the buffers have been advanced to its arrival.
    pub fn opens_object(&self, key: &BufferKey, len: u64) -> bool {
        !self.is_open(key) || self.is_full(key, len)
    }

    fn is_full(&self, key: &BufferKey, len: u64) -> bool {
        self.open.get(key).is_some_and(|o| o.records > 0 && o.bytes + len > self.policy.max_bytes)
    }

    /// Seals `key`'s buffer first if `len` more bytes would pass the size limit.
    fn make_room(&mut self, key: &BufferKey, len: u64) -> io::Result<()> {
        if self.is_full(key, len) {
            self.seal(key)?;
        }
        Ok(())
    }

    fn open_with(&mut self, key: BufferKey, content: Content, first: Pos, arrival_ms: i64) {
        let id = self.next_id;
        self.next_id += 1;
        let window_end = self.policy.window_end(arrival_ms);
        self.by_window.insert((window_end, id));
        self.by_first_seq.insert((first.seq, id));
        if matches!(key, BufferKey::Data(_)) {
            self.data_open += 1;
        }
        self.keys.insert(id, key.clone());
        self.open.insert(
            key,
            Open {
                id,
                content,
                first,
                last: first,
                window_end,
                oldest_arrival_ms: arrival_ms,
                records: 0,
                bytes: 0,
            },
        );
    }

    fn added(&mut self, key: &BufferKey, pos: Pos, arrival_ms: i64, len: u64) -> io::Result<()> {
        let open = self.open.get_mut(key).expect("open");
        open.last = pos;
        open.records += 1;
        open.bytes += len;
        open.oldest_arrival_ms = open.oldest_arrival_ms.min(arrival_ms);
        if open.bytes >= self.policy.max_bytes {
            self.seal(key)?;
        }
        Ok(())
    }

    fn seal(&mut self, key: &BufferKey) -> io::Result<()> {
        let Some(open) = self.open.remove(key) else { return Ok(()) };
        self.keys.remove(&open.id);
        self.by_window.remove(&(open.window_end, open.id));
        self.by_first_seq.remove(&(open.first.seq, open.id));
        if matches!(key, BufferKey::Data(_)) {
            self.data_open -= 1;
        }
        let (plain, items) = match open.content {
            Content::Object(encoder) => (encoder.finish()?, Vec::new()),
            Content::Errors(lines) => (lines, Vec::new()),
            Content::Records(items) => (Vec::new(), items),
        };
        let checkpoint_after = self.checkpoint_bound();
        self.sealed.push(Unit {
            variant: variant(key, open.first, self.partitioned),
            key: key.clone(),
            // Encrypted streams encrypt their error objects too: they carry record data.
            body: if items.is_empty() { self.codec.seal(plain.into())? } else { Bytes::new() },
            items,
            records: open.records,
            bytes: open.bytes,
            first: open.first,
            last: open.last,
            oldest_arrival_ms: open.oldest_arrival_ms,
            checkpoint_after,
        });
        Ok(())
    }
}

/// Adds a data record to a buffer's content; `Some` when the object format refuses it.
fn add_record(content: &mut Content, record: &BufferedRecord) -> io::Result<Option<RecordError>> {
    match content {
        Content::Object(encoder) => match encoder.push(&record.data) {
            Ok(()) => Ok(None),
            Err(PushError::Rejected(e)) => Ok(Some(e)),
            Err(PushError::Io(e)) => Err(e),
        },
        Content::Records(items) => {
            items.push(record.clone());
            Ok(None)
        }
        Content::Errors(_) => unreachable!("data keys hold records, error keys documents"),
    }
}

/// Key discriminator of an object: which buffer it came from and where that buffer started.
fn variant(key: &BufferKey, first: Pos, partitioned: bool) -> u64 {
    let mut md5 = Md5::new();
    match key {
        BufferKey::Data(_) if !partitioned && first.sub == 0 => return 0,
        BufferKey::Data(partition) => {
            for (tag, map) in [(b'q', &partition.query), (b'l', &partition.lambda)] {
                for (k, v) in map {
                    md5.update([tag]);
                    md5.update((k.len() as u64).to_be_bytes());
                    md5.update(k.as_bytes());
                    md5.update((v.len() as u64).to_be_bytes());
                    md5.update(v.as_bytes());
                }
            }
        }
        BufferKey::Errors(kind) => md5.update(kind.as_bytes()),
    }
    md5.update(first.sub.to_be_bytes());
    let digest: [u8; 16] = md5.finalize().into();
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")).max(1)
}

#[cfg(test)]
mod tests;
