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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::Path;

use bytes::Bytes;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use super::batch::BatchPolicy;
use super::error_output::output_type;
use crate::codec::{ObjectCodec, ObjectEncoder, PushError, RecordError};
use crate::log::embedded::checkpoint;
use crate::naming::Partition;

/// `!{firehose:error-output-type}` of records whose partition could not be determined
/// (extraction failed, a key the prefix needs is missing, or the partition cap was reached).
pub const PARTITIONING_FAILED: &str = "partitioning-failed";

/// A record's place in the shard: its sequence number and, for records de-aggregated from
/// one log record, the index of the sub-record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Pos {
    pub seq: u64,
    pub sub: u32,
}

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

/// Per buffer key, the position of the last record delivered: what a replay skips.
///
/// Stored in the shard directory as `delivery-markers.json`, written atomically *before* the
/// checkpoint moves, so a crash between the two leaves markers that are newer than the
/// checkpoint (harmless: they only skip delivered records), never older.
#[derive(Debug, Default, Clone)]
pub struct Markers {
    delivered: HashMap<BufferKey, Pos>,
    /// Highest marked sequence number: records past it need no lookup.
    max_seq: Option<u64>,
}

/// `<consumer>-markers.json` (`delivery-markers.json` for the delivery worker).
fn markers_file(consumer: &str) -> String {
    format!("{consumer}-markers.json")
}

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

impl Markers {
    /// Reads the shard's markers; none when the file does not exist yet.
    pub fn load(dir: &Path, consumer: &str) -> io::Result<Markers> {
        let file_name = markers_file(consumer);
        let text = match std::fs::read(dir.join(&file_name)) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Markers::default()),
            Err(e) => return Err(e),
        };
        let file: MarkersFile = serde_json::from_slice(&text)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{file_name}: {e}")))?;
        let mut markers = Markers::default();
        for entry in file.delivered {
            let key = match (entry.partition, entry.errors) {
                (Some(p), None) => BufferKey::Data(Partition { query: p.query, lambda: p.lambda }),
                (None, Some(kind)) => match known_output_type(&kind) {
                    Some(kind) => BufferKey::Errors(kind),
                    None => continue,
                },
                _ => continue,
            };
            markers.record(key, Pos { seq: entry.seq, sub: entry.sub });
        }
        Ok(markers)
    }

    /// Keeps the stored markers below `end`, the log's next sequence number as recovered;
    /// returns how many had to be lowered. Call it after the log is opened and before any
    /// record is appended or read.
    ///
    /// A marker at or past `end` names a record the log no longer holds: its tail was lost
    /// (a power loss under `fsync: { interval_ms }`) or cut by hand (docs/log-format.md), and
    /// the log hands those sequence numbers to new records, which the marker would skip as
    /// delivered. Such a marker still says that every record of its key *below* `end` was
    /// delivered (a key's records are delivered in order), so it is lowered to the last
    /// position before `end` rather than dropped, which would deliver those records again.
    pub fn lower_to_log_end(dir: &Path, consumer: &str, end: u64) -> io::Result<usize> {
        let mut markers = Markers::load(dir, consumer)?;
        if markers.max_seq.is_none_or(|max| max < end) {
            return Ok(0);
        }
        let last_kept = end.checked_sub(1).map(|seq| Pos { seq, sub: u32::MAX });
        let mut lowered = 0;
        markers.delivered.retain(|_, pos| {
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
        markers.max_seq = markers.delivered.values().map(|p| p.seq).max();
        markers.store(dir, consumer)?;
        tracing::error!(dir = %dir.display(), consumer, lowered, next_seq = end,
            "delivery markers were ahead of the log (records lost after a power loss with fsync interval, or files removed); lowered to the log's end so that new records are delivered");
        Ok(lowered)
    }

    /// Notes that everything of `key` up to `pos` is delivered.
    pub fn record(&mut self, key: BufferKey, pos: Pos) {
        self.max_seq = self.max_seq.max(Some(pos.seq));
        self.delivered.insert(key, pos);
    }

    /// Whether `pos` of `key` is delivered.
    pub fn covers(&self, key: &BufferKey, pos: Pos) -> bool {
        match self.max_seq {
            Some(max) if pos.seq <= max => self.delivered.get(key).is_some_and(|&m| pos <= m),
            _ => false,
        }
    }

    /// Drops the markers a replay from `checkpoint` cannot need: they cover only records
    /// before it, which the replay never reads.
    fn prune(&mut self, checkpoint: u64) {
        self.delivered.retain(|_, pos| pos.seq >= checkpoint);
        self.max_seq = self.delivered.values().map(|p| p.seq).max();
    }

    /// Atomically writes the markers to the shard directory.
    pub fn store(&self, dir: &Path, consumer: &str) -> io::Result<()> {
        let delivered = self
            .delivered
            .iter()
            .map(|(key, pos)| {
                let (partition, errors) = match key {
                    BufferKey::Data(p) => (
                        Some(PartitionJson { query: p.query.clone(), lambda: p.lambda.clone() }),
                        None,
                    ),
                    BufferKey::Errors(kind) => (None, Some(kind.to_string())),
                };
                MarkerEntry { partition, errors, seq: pos.seq, sub: pos.sub }
            })
            .collect();
        let json = serde_json::to_vec(&MarkersFile { delivered }).map_err(io::Error::other)?;
        let file_name = markers_file(consumer);
        checkpoint::write_atomic(
            &dir.join(format!(".{file_name}.tmp")),
            &dir.join(file_name),
            &json,
        )
    }
}

fn known_output_type(kind: &str) -> Option<&'static str> {
    [output_type::PROCESSING_FAILED, output_type::FORMAT_CONVERSION_FAILED, PARTITIONING_FAILED]
        .into_iter()
        .find(|k| *k == kind)
}

/// The uploader's bookkeeping: after each delivered object, what must be made durable, in
/// order (markers first, then the checkpoint), so that a crash anywhere replays into exactly
/// the objects already delivered.
pub struct Progress {
    markers: Markers,
    checkpoint: u64,
}

/// What one delivery changes on disk.
pub struct Step {
    /// Markers to store (already pruned for the checkpoint that is durable now).
    pub markers: Option<Markers>,
    /// The checkpoint to store after them.
    pub checkpoint: Option<u64>,
}

impl Progress {
    pub fn new(markers: Markers, checkpoint: u64) -> Self {
        Self { markers, checkpoint }
    }

    /// The latest checkpoint handed out.
    pub fn checkpoint(&self) -> u64 {
        self.checkpoint
    }

    /// `unit` is delivered (and every unit sealed before it).
    pub fn delivered(&mut self, unit: &Unit) -> Step {
        // A replay reads this object's last record again only if the checkpoint stays at or
        // below it; only then must the replay learn that the record is delivered.
        let markers = (unit.last.seq >= unit.checkpoint_after).then(|| {
            self.markers.record(unit.key.clone(), unit.last);
            // Prune by the checkpoint that is durable now, not the one about to be stored: a
            // crash between the two writes must still find every marker it needs.
            self.markers.prune(self.checkpoint);
            self.markers.clone()
        });
        let checkpoint = (unit.checkpoint_after > self.checkpoint).then(|| {
            self.checkpoint = unit.checkpoint_after;
            unit.checkpoint_after
        });
        Step { markers, checkpoint }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::codec::CompressionFormat;
    use crate::codec::{compression_for, ObjectCodec};

    /// A record for the tests: its partition (None: it fails processing and goes to the error
    /// output), arrival time and size.
    #[derive(Debug, Clone)]
    struct Rec {
        seq: u64,
        partition: Option<u8>,
        arrival_ms: i64,
        len: usize,
    }

    fn codec() -> ObjectCodec {
        ObjectCodec::concatenated(compression_for(CompressionFormat::Uncompressed).into(), "")
    }

    fn partition(p: u8) -> Partition {
        Partition { query: BTreeMap::from([("k".into(), p.to_string())]), lambda: BTreeMap::new() }
    }

    /// Objects as comparable values: (key, first, last, variant, body).
    type Object = (BufferKey, Pos, Pos, u64, Bytes);

    fn object(u: &Unit) -> Object {
        (u.key.clone(), u.first, u.last, u.variant, u.body.clone())
    }

    /// Feeds `records` (from `start`) the way the assembler does and returns the units with the
    /// seal order; `idle_at` ends the input with a watermark.
    fn run(
        policy: BatchPolicy,
        codec: &ObjectCodec,
        records: &[Rec],
        markers: Markers,
        start: u64,
        watermark: Option<i64>,
    ) -> Vec<Unit> {
        let mut b = Buffers::new(policy, codec, Layout::Object, true, markers, start);
        for r in records.iter().filter(|r| r.seq >= start) {
            b.set_floor(r.seq);
            let pos = Pos { seq: r.seq, sub: 0 };
            let body = vec![b'a' + r.partition.unwrap_or(0) % 26; r.len];
            match r.partition {
                Some(p) => {
                    b.push_data(partition(p), pos, r.arrival_ms, body.into()).unwrap();
                }
                None => {
                    let doc = serde_json::to_vec(&serde_json::json!({"seq": r.seq})).unwrap();
                    b.push_error(output_type::PROCESSING_FAILED, pos, r.arrival_ms, doc).unwrap();
                }
            }
            b.set_floor(r.seq + 1);
        }
        if let Some(w) = watermark {
            b.advance(w).unwrap();
        }
        b.take_sealed()
    }

    fn rec(seq: u64, partition: u8, arrival_ms: i64, len: usize) -> Rec {
        Rec { seq, partition: Some(partition), arrival_ms, len }
    }

    #[test]
    fn each_partition_is_cut_by_its_own_window() {
        let policy = BatchPolicy { max_bytes: 1000, interval_ms: 100 };
        let codec = codec();
        // Partition 1 opens at 0 and 2 at 60: 1's window ends at 100, 2's at 160.
        let records = [rec(0, 1, 0, 1), rec(1, 2, 60, 1), rec(2, 1, 99, 1), rec(3, 2, 120, 1)];
        let units = run(policy, &codec, &records, Markers::default(), 0, Some(130));
        assert_eq!(units.len(), 1, "only partition 1's window has passed at 130");
        assert_eq!((units[0].first.seq, units[0].last.seq), (0, 2));
        assert_eq!(units[0].body, Bytes::from_static(b"bb"));
        assert_eq!(units[0].checkpoint_after, 1, "partition 2 is still open from seq 1");
        let units = run(policy, &codec, &records, Markers::default(), 0, Some(160));
        assert_eq!(units.len(), 2);
        assert_eq!((units[1].first.seq, units[1].last.seq, units[1].checkpoint_after), (1, 3, 4));
    }

    #[test]
    fn a_record_that_would_pass_the_size_limit_starts_the_next_object_of_its_partition() {
        let policy = BatchPolicy { max_bytes: 25, interval_ms: 60_000 };
        let codec = codec();
        let records = [rec(0, 1, 0, 10), rec(1, 2, 0, 10), rec(2, 1, 0, 10), rec(3, 1, 0, 10)];
        let units = run(policy, &codec, &records, Markers::default(), 0, None);
        assert_eq!(units.len(), 1);
        assert_eq!((units[0].first.seq, units[0].last.seq, units[0].records), (0, 2, 2));
        assert_eq!(units[0].checkpoint_after, 1, "partition 2 holds seq 1");
    }

    #[test]
    fn unpartitioned_objects_keep_variant_zero_and_partitions_differ() {
        let key = BufferKey::Data(Partition::default());
        assert_eq!(variant(&key, Pos { seq: 5, sub: 0 }, false), 0);
        assert_ne!(variant(&key, Pos { seq: 5, sub: 1 }, false), 0);
        let a = variant(&BufferKey::Data(partition(1)), Pos { seq: 5, sub: 0 }, true);
        let b = variant(&BufferKey::Data(partition(2)), Pos { seq: 5, sub: 0 }, true);
        let e = variant(&BufferKey::Errors("processing-failed"), Pos { seq: 5, sub: 0 }, true);
        assert!(a != b && a != e && b != e);
    }

    #[test]
    fn markers_past_the_log_end_are_lowered_below_it_and_stored() {
        let dir = tempfile::tempdir().unwrap();
        let mut markers = Markers::default();
        markers.record(BufferKey::Data(partition(1)), Pos { seq: 4, sub: 0 });
        markers.record(BufferKey::Data(partition(2)), Pos { seq: 9, sub: 3 });
        markers.record(BufferKey::Errors(PARTITIONING_FAILED), Pos { seq: 12, sub: 0 });
        markers.store(dir.path(), "delivery").unwrap();

        assert_eq!(Markers::lower_to_log_end(dir.path(), "delivery", 13).unwrap(), 0);
        assert_eq!(Markers::lower_to_log_end(dir.path(), "delivery", 7).unwrap(), 2);
        let back = Markers::load(dir.path(), "delivery").unwrap();
        assert_eq!(back.max_seq, Some(6));
        // Below the end: what the lowered markers still know was delivered.
        assert!(back.covers(&BufferKey::Data(partition(2)), Pos { seq: 6, sub: 99 }));
        assert!(back.covers(&BufferKey::Data(partition(1)), Pos { seq: 4, sub: 0 }));
        assert!(!back.covers(&BufferKey::Data(partition(1)), Pos { seq: 5, sub: 0 }));
        // From the end on: new records that reuse the sequence numbers are not skipped.
        for key in [BufferKey::Data(partition(2)), BufferKey::Errors(PARTITIONING_FAILED)] {
            assert!(!back.covers(&key, Pos { seq: 7, sub: 0 }));
            assert!(!back.covers(&key, Pos { seq: 9, sub: 3 }));
        }
        // A log cut back to nothing keeps no marker.
        assert_eq!(Markers::lower_to_log_end(dir.path(), "delivery", 0).unwrap(), 3);
        assert!(Markers::load(dir.path(), "delivery").unwrap().max_seq.is_none());
        // No file: nothing to do.
        assert_eq!(Markers::lower_to_log_end(dir.path(), "backup", 0).unwrap(), 0);
    }

    #[test]
    fn markers_survive_a_store_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let mut markers = Markers::default();
        markers.record(BufferKey::Data(partition(3)), Pos { seq: 10, sub: 2 });
        markers.record(BufferKey::Errors(PARTITIONING_FAILED), Pos { seq: 11, sub: 0 });
        markers.store(dir.path(), "delivery").unwrap();
        let back = Markers::load(dir.path(), "delivery").unwrap();
        assert!(Markers::load(dir.path(), "backup").unwrap().max_seq.is_none());
        assert!(back.covers(&BufferKey::Data(partition(3)), Pos { seq: 10, sub: 2 }));
        assert!(!back.covers(&BufferKey::Data(partition(3)), Pos { seq: 10, sub: 3 }));
        assert!(!back.covers(&BufferKey::Data(partition(4)), Pos { seq: 1, sub: 0 }));
        assert!(back.covers(&BufferKey::Errors(PARTITIONING_FAILED), Pos { seq: 5, sub: 0 }));
        assert!(Markers::load(&dir.path().join("none"), "delivery").unwrap().max_seq.is_none());
    }

    /// What the uploader made durable, as a crash would find it.
    #[derive(Clone)]
    struct Disk {
        markers: Markers,
        checkpoint: u64,
    }

    /// Delivers `units` in order; the crash happens after `crash_after` deliveries, with the
    /// markers of the last one stored but its checkpoint not (`torn`) or both stored.
    fn deliver(units: &[Unit], start: Disk, crash_after: usize, torn: bool) -> Disk {
        let mut disk = start.clone();
        let mut progress = Progress::new(start.markers, start.checkpoint);
        for (i, unit) in units.iter().enumerate().take(crash_after) {
            let step = progress.delivered(unit);
            if let Some(m) = step.markers {
                disk.markers = m;
            }
            if torn && i + 1 == crash_after {
                break;
            }
            if let Some(c) = step.checkpoint {
                disk.checkpoint = c;
            }
        }
        disk
    }

    fn records_strategy() -> impl Strategy<Value = Vec<Rec>> {
        prop::collection::vec((prop::option::weighted(0.9, 0u8..6), 0i64..40, 1usize..12), 1..120)
            .prop_map(|v| {
                let mut arrival = 0;
                v.into_iter()
                    .enumerate()
                    .map(|(i, (partition, step, len))| {
                        arrival += step;
                        Rec { seq: i as u64, partition, arrival_ms: arrival, len }
                    })
                    .collect()
            })
    }

    proptest! {
        /// The heart of exactly-once with per-partition buffers: crash after any delivery
        /// (also between the markers and the checkpoint write), replay from what is on disk,
        /// and the objects delivered before and after the crash are exactly the objects of a
        /// run without a crash: same keys, same bytes, no record twice under two keys.
        #[test]
        fn a_replay_after_a_crash_delivers_exactly_the_objects_of_an_uninterrupted_run(
            records in records_strategy(),
            max_bytes in 5u64..60,
            interval_ms in 0i64..150,
            crash_pick in 0usize..1000,
            torn in any::<bool>(),
        ) {
            let policy = BatchPolicy { max_bytes, interval_ms };
            let codec = codec();
            let end = records.last().map_or(0, |r| r.arrival_ms) + 1_000;
            let all = run(policy, &codec, &records, Markers::default(), 0, Some(end));
            let expected: Vec<Object> = all.iter().map(object).collect();

            let crash_after = crash_pick % (all.len() + 1);
            let fresh = Disk { markers: Markers::default(), checkpoint: 0 };
            let disk = deliver(&all, fresh, crash_after, torn);
            let replay = run(policy, &codec, &records, disk.markers.clone(), disk.checkpoint, Some(end));

            let mut delivered: Vec<Object> = expected[..crash_after].to_vec();
            delivered.extend(replay.iter().map(object));
            // Re-delivering the very same object (same key, same bytes) is harmless: dedupe.
            delivered.sort_by(|a, b| (&a.0, a.1, a.2, a.3).cmp(&(&b.0, b.1, b.2, b.3)));
            delivered.dedup();
            let mut want = expected.clone();
            want.sort_by(|a, b| (&a.0, a.1, a.2, a.3).cmp(&(&b.0, b.1, b.2, b.3)));
            prop_assert_eq!(delivered, want);

            // And the replay's own bookkeeping keeps going: a second crash is just as safe.
            let disk2 = deliver(&replay, disk.clone(), replay.len() / 2, !torn);
            let replay2 = run(policy, &codec, &records, disk2.markers, disk2.checkpoint, Some(end));
            for o in replay2.iter().map(object) {
                prop_assert!(expected.contains(&o), "unexpected object {:?}", (o.0, o.1, o.2));
            }
        }

        /// Every record lands in exactly one object.
        #[test]
        fn every_record_is_in_exactly_one_object(
            records in records_strategy(),
            max_bytes in 5u64..60,
            interval_ms in 0i64..150,
        ) {
            let codec = codec();
            let units = run(BatchPolicy { max_bytes, interval_ms }, &codec, &records, Markers::default(), 0, Some(i64::MAX));
            let total: u64 = units.iter().map(|u| u.records).sum();
            prop_assert_eq!(total, records.len() as u64);
            let mut checkpoints: Vec<u64> = units.iter().map(|u| u.checkpoint_after).collect();
            let sorted = { let mut c = checkpoints.clone(); c.sort(); c };
            prop_assert_eq!(&checkpoints, &sorted, "checkpoints only move forward");
            checkpoints.dedup();
            prop_assert_eq!(units.last().map(|u| u.checkpoint_after), Some(records.len() as u64));
        }
    }
}
