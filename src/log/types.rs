//! The values that cross the log's traits: shards and their hash-key ranges, what is appended
//! and read, seals, consumer state. Plain data; the promises are on the traits (`super`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::codec::encryption::KeyRing;

/// A shard of one stream's log. Kinesis' `shardId-000000000007` is `ShardId(7)`. Ids are never
/// reused within a stream: the children of a split or merge get new ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId(pub u32);

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An inclusive range of 128-bit hash keys (Kinesis hashes a partition key with MD5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashRange {
    pub start: u128,
    pub end: u128,
}

impl HashRange {
    /// Whether `key` lies in the range.
    pub fn contains(&self, key: u128) -> bool {
        self.start <= key && key <= self.end
    }

    /// Part `i` of the hash-key space cut into `n` parts: part `i` starts at the first key whose
    /// high 64 bits `h` have `h * n / 2^64 == i`, so that routing by
    /// `((key >> 64) * n) >> 64` and routing by range agree on every key.
    ///
    /// # Panics
    /// If `i >= n`.
    pub fn part(i: u32, n: u32) -> HashRange {
        assert!(i < n, "part {i} of {n}");
        let first_high = |i: u32| -> u128 {
            // ceil(i * 2^64 / n): the smallest high half that maps to part i.
            ((i as u128) << 64).div_ceil(n as u128)
        };
        let start = first_high(i) << 64;
        let end = if i + 1 == n { u128::MAX } else { (first_high(i + 1) << 64) - 1 };
        HashRange { start, end }
    }
}

/// Whether a shard takes appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardState {
    /// Takes appends for its hash range.
    Open,
    /// Takes no more appends; readers find [`Entry::End`] at `end` after its last entry.
    Closed { end: u64 },
}

/// A shard as [`StreamLog::shards`](super::StreamLog::shards) lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    pub id: ShardId,
    pub hash_range: HashRange,
    /// The shard it was split from, or the first of the two it was merged from.
    pub parent: Option<ShardId>,
    /// The second shard of a merge.
    pub adjacent_parent: Option<ShardId>,
    pub state: ShardState,
}

impl ShardInfo {
    /// The shards of a log that never splits or merges: `n` open shards, each an equal part of
    /// the hash-key space, without parents.
    pub fn fixed(n: u32) -> Vec<ShardInfo> {
        (0..n)
            .map(|i| ShardInfo {
                id: ShardId(i),
                hash_range: HashRange::part(i, n),
                parent: None,
                adjacent_parent: None,
                state: ShardState::Open,
            })
            .collect()
    }
}

/// A node of a log shared by several (cluster mode), as this node's watch sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    pub id: String,
    /// When its process started (Unix epoch milliseconds).
    pub started_ms: i64,
    /// How long its heartbeat has not moved, on this node's clock: past the lease duration,
    /// it counts as gone.
    pub silent_ms: u64,
    /// Whether it takes leases (a node that only appends does not).
    pub takes_leases: bool,
}

/// Who holds one consumer's lease on one shard of a shared log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    pub shard: ShardId,
    pub consumer: String,
    /// The owner's node id; `None` while nobody holds it.
    pub owner: Option<String>,
    /// One more at every change of owner.
    pub epoch: u64,
}

/// How much a shard holds, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardStats {
    pub shard: ShardId,
    /// One past the position of the last committed entry.
    pub next_seq: u64,
    /// Bytes the shard takes in storage (0 when the implementation cannot tell).
    pub bytes: u64,
}

/// A shard that refuses appends, and why (for `/readyz`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardProblem {
    pub shard: ShardId,
    /// One line for an operator.
    pub reason: String,
}

/// How a record picks its shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// No key (Firehose's Direct PUT): the log spreads records evenly over the open shards.
    Implicit,
    /// The shard whose open hash range holds this key (Kinesis: MD5 of `PartitionKey`, or
    /// `ExplicitHashKey`).
    HashKey(u128),
}

/// One record to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Append {
    pub data: Bytes,
    pub route: Route,
}

impl Append {
    /// A record routed by the log ([`Route::Implicit`]).
    pub fn implicit(data: Bytes) -> Self {
        Self { data, route: Route::Implicit }
    }
}

/// Where an appended record was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub shard: ShardId,
    pub seq: u64,
    pub arrival_ms: i64,
    /// Whether the record is encrypted at rest.
    pub encrypted: bool,
}

/// A committed record as readers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its position in the shard.
    pub seq: u64,
    /// When the log accepted it (Unix epoch milliseconds). Never decreases within a shard when
    /// the log has [`Capabilities::monotonic_arrivals`].
    pub arrival_ms: i64,
    /// The payload exactly as appended (opened, when it is encrypted at rest).
    pub data: Bytes,
}

/// What a reader returns, in shard order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Entry {
    Record(Record),
    /// A cut recorded in the log: every reader that reaches it cuts here.
    Seal(Seal),
    /// The shard is closed and this is its end; read `children` next.
    End(ShardEnd),
}

/// A cut at a position of a shard: what a consumer that buffers by arrival time closes there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seal {
    /// Every record before it was read first.
    pub position: u64,
    pub watermark_ms: i64,
    pub kind: SealKind,
}

/// Which buffers a [`Seal`] closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealKind {
    /// Those whose window ends at or before `watermark_ms`.
    Window,
    /// All of them (a drain: graceful stop, delete, removal).
    Drain,
}

/// A seal a reader asks for at its position ([`ShardReader::seal`](super::ShardReader::seal)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealProposal {
    pub watermark_ms: i64,
    pub kind: SealKind,
}

/// The answer to a [`SealProposal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealOutcome {
    /// This seal holds at the reader's position (the one proposed, or one another reader
    /// recorded there first); the reader has moved past it.
    Sealed(Seal),
    /// Entries were committed at the reader's position: read them first.
    Moved,
}

/// The end of a closed shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardEnd {
    /// One past the position of the shard's last entry: a consumer that committed this as its
    /// `next_seq` has consumed the whole shard.
    pub position: u64,
    pub children: Vec<ShardId>,
}

/// Where a reader starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadFrom {
    /// At the first entry at or after this position.
    Seq(u64),
    /// At the oldest retained entry.
    Oldest,
    /// After the last committed entry.
    Latest,
}

/// How much one [`ShardReader::read`](super::ShardReader::read) returns at most. A read
/// returns at least one entry when one is committed, whatever its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimit {
    pub entries: usize,
    pub bytes: usize,
}

impl Default for ReadLimit {
    /// 1024 entries or 4 MiB of record data.
    fn default() -> Self {
        Self { entries: 1024, bytes: 4 << 20 }
    }
}

/// The entries of one read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadBatch {
    pub entries: Vec<Entry>,
    /// `Some(w)` when the batch ends at the end of what is committed: `w` is the shard's
    /// watermark (see [`ShardReader::read`](super::ShardReader::read) for what it promises).
    pub caught_up: Option<i64>,
}

/// A record's place in a shard. `sub` numbers the records de-aggregated from one log record
/// (0 otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub seq: u64,
    pub sub: u32,
}

/// What a consumer keeps a marker for: one of its buffers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MarkerKey {
    /// A data buffer: the partition's keys (`partitionKeyFromQuery`, `partitionKeyFromLambda`).
    Partition { query: BTreeMap<String, String>, lambda: BTreeMap<String, String> },
    /// An error-output buffer, by its output type (`processing-failed`, ...).
    Errors(String),
}

/// Per buffer, the position of the last record the consumer delivered: what a replay skips.
pub type Markers = BTreeMap<MarkerKey, Position>;

/// A consumer's stored progress in one shard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerState {
    /// Where the consumer reads next.
    pub next_seq: u64,
    pub markers: Markers,
}

/// What a [`ShardLease::commit`](super::ShardLease::commit) stores; `None` keeps the stored
/// value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub markers: Option<Markers>,
    pub next_seq: Option<u64>,
}

/// How a stream's log is opened.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    /// Shards of a new log (an existing log must have as many).
    pub shards: u32,
    pub at_rest: AtRestKeys,
}

/// Encryption at rest: `ring` opens records sealed earlier; with `encrypt`, records appended
/// from now on are sealed under its active key.
#[derive(Clone, Default)]
pub struct AtRestKeys {
    pub ring: Option<Arc<KeyRing>>,
    pub encrypt: bool,
}

impl fmt::Debug for AtRestKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AtRestKeys")
            .field("key", &self.ring.as_ref().map(|r| r.active_id()))
            .field("encrypt", &self.encrypt)
            .finish()
    }
}

/// What an implementation promises beyond the contract every implementation keeps. The
/// contract suite (`contract.rs`) tests each promise a log makes, and a consumer can rely on
/// exactly these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// A [`Seal`] is stored in the shard: every later reader, after a restart too, reads it as
    /// [`Entry::Seal`] at its position. Otherwise a seal holds only for the reader that
    /// proposed it, and replays never see it.
    pub durable_seals: bool,
    /// The `caught_up` watermark is a bound: every entry committed after the read that
    /// returned it has an arrival time at or after it. Otherwise it is a hint (a node's clock).
    ///
    /// A consumer that cuts on seals cuts the same in every replay if the log has
    /// `durable_seals` (the replay reads the seals) or `watermark_is_a_bound` (a replay that
    /// does not see a seal routes records that arrived at or after its watermark, which close
    /// the same buffers). Every implementation has one of the two.
    pub watermark_is_a_bound: bool,
    /// A lease can be lost to another owner while it is held ([`ShardLease::lost`](super::ShardLease::lost)
    /// resolves, commits fail with `LeaseError::Lost`). Otherwise a lease lasts until dropped.
    pub leases_can_be_lost: bool,
    /// Shards can close: readers then reach [`Entry::End`], and children are granted after
    /// their parents. Otherwise every shard stays open.
    pub shards_can_end: bool,
    /// A record's `arrival_ms` never decreases within a shard. Otherwise arrival times come
    /// from clocks that can step back (a replicated log's leader changes), and consumers must
    /// not rely on their order: every cut compares stored values, so it still replays the same.
    pub monotonic_arrivals: bool,
    /// A log can be open through several stores at once (the nodes of a cluster each open
    /// every log). Otherwise a log is open at most once at a time ([`OpenError::Locked`](super::OpenError::Locked)).
    pub shared_open: bool,
    /// [`switch_encryption`](super::StreamLog::switch_encryption) takes effect at one position
    /// of each shard: no record after the first one in the new mode is in the old mode.
    /// Otherwise appends in flight while it switches may land in either mode, in any order
    /// (each record still knows its own mode, so reading stays exact).
    pub atomic_encryption_switch: bool,
}
