//! The durable log that stores a delivery stream's records until they are delivered, behind
//! four small traits:
//!
//! - [`LogStore`] opens (creating) and deletes the log of a stream by name;
//! - [`StreamLog`] is one stream's log: its shards, each owning a range of the 128-bit hash-key
//!   space; [`append`](StreamLog::append) stores records and answers once they are durable;
//! - [`ShardReader`] reads one shard in order from a position, tells when it has caught up
//!   (with the watermark a consumer cuts batches on) and records [seals](Entry::Seal), the cuts
//!   that every later reader makes at the same place;
//! - [`ShardLease`] is one consumer's hold on one shard: its stored progress (the next position
//!   to read and per-buffer [markers](Markers)), committed fenced by the lease.
//!
//! The API appends; delivery reads, seals and commits; nothing above this module knows where or
//! how the log keeps its data. [`embedded`] is the implementation on the local disk (segments,
//! group commit, recovery: docs/log-format.md). The contract below is what every implementation
//! keeps; [`Capabilities`] says what one promises beyond it.
//!
//! # Positions
//!
//! Every entry of a shard has a position (`seq`), strictly increasing in shard order. Record
//! positions skip the positions of seals (and other implementations may skip more values), so
//! consumers never compute a position, they only compare and store the ones they read.
//!
//! # Blocking
//!
//! Every method that waits on storage is `async` and does not block the runtime, except
//! [`ShardReader::read`], which blocks by contract: it is the hot path, called from a consumer's
//! own thread.

// Public (and compiled in) so that implementations tested outside the crate run it too:
// `tests/log_jetstream.rs` against a real NATS cluster.
#[doc(hidden)]
pub mod contract;
pub mod embedded;
mod error;
pub mod jetstream;
mod lineage;
#[cfg(test)]
pub(crate) mod memory;
pub mod range;
pub mod retention;
mod types;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use tokio::sync::mpsc;

pub use error::{
    AppendError, Cause, EncryptionError, LeaseError, OpenError, ReadError, ReshardError, StoreError,
};
pub use lineage::{scale, uniform_scaling, Lineage, Reshard};
pub use types::{
    Append, Appended, AtRestKeys, Capabilities, ClusterNode, ConsumerState, Entry, HashRange,
    LeaseHolder, MarkerKey, Markers, Position, Progress, ReadBatch, ReadFrom, ReadLimit, Record,
    Route, Seal, SealKind, SealOutcome, SealProposal, ShardEnd, ShardId, ShardInfo, ShardProblem,
    ShardState, ShardStats, StreamSpec,
};

/// Where streams' logs live: opens and deletes them by stream name.
#[async_trait]
pub trait LogStore: Send + Sync + fmt::Debug + 'static {
    /// Opens the log of `stream`, creating it with `spec.shards` shards if it does not exist.
    ///
    /// Once it returns, every record an earlier `append` acknowledged is readable, and every
    /// consumer's stored state is as its last successful commit left it, except that markers
    /// never name a position at or past the end of their shard: if the log lost its tail (a
    /// power loss under a relaxed fsync policy, a manual repair), markers beyond the end are
    /// lowered to the last position before it (a key's records are delivered in order, so that
    /// is still true), so records that reuse those positions are not skipped.
    ///
    /// An existing log keeps its shards: one that never split or merged and has another
    /// `spec.shards` is [`OpenError::ShardCount`]; one that resharded opens with the shards its
    /// reshards left (the caller compares and reshards to reach another count).
    /// Records encrypted at rest are opened with `spec.at_rest.ring` as they are read (a record
    /// whose key is not in it is [`ReadError::Decrypt`] then); keys that cannot encrypt as
    /// asked are [`OpenError::Keys`]. A log of a stream is open at most once at a time
    /// ([`OpenError::Locked`]), unless the log has [`Capabilities::shared_open`] (then every
    /// node of a cluster opens it, each through its own store). A failed open of a log that
    /// did not exist leaves nothing behind.
    async fn open(&self, stream: &str, spec: StreamSpec) -> Result<Arc<dyn StreamLog>, OpenError>;

    /// Deletes the log of `stream`: its records, consumer state and keys. A log opened under
    /// the same name afterwards starts empty, even while handles of the deleted one still live
    /// (they go on working on the deleted data until dropped, or fail with `Unavailable`
    /// errors: never do they reach the new log). Deleting a log that does not exist is not an
    /// error.
    async fn delete(&self, stream: &str) -> Result<(), StoreError>;

    /// The nodes sharing this store, as this node sees them (empty for a log of one node).
    fn cluster_nodes(&self) -> Vec<ClusterNode> {
        Vec::new()
    }
}

/// One stream's log: its shards, appends, readers and consumer leases.
#[async_trait]
pub trait StreamLog: Send + Sync + fmt::Debug + 'static {
    /// What this log promises beyond the contract.
    fn capabilities(&self) -> Capabilities;

    /// Every shard that is not yet expired, by id. The open ones cover the hash-key space
    /// exactly once; a closed shard lists its parents so that readers can order them.
    fn shards(&self) -> Vec<ShardInfo>;

    /// Stores `records` and returns one result per record, in input order.
    ///
    /// `Ok` only once the record is durable as the implementation defines durability (the
    /// embedded log: written and fdatasync'd per its fsync policy). A record goes to the open
    /// shard whose hash range holds its key when it is stored ([`Route::Implicit`]: a key the
    /// log picks, spreading records evenly). Records of one call that go to the same shard are
    /// stored in call order, at increasing positions, and, with
    /// [`Capabilities::monotonic_arrivals`], `arrival_ms` never decreases within a shard. One
    /// call may partly succeed. Dropping the future does not take back records
    /// already handed to a shard: they may be stored although the caller saw no answer
    /// (at-least-once).
    async fn append(&self, records: Vec<Append>) -> Vec<Result<Appended, AppendError>>;

    /// A reader of `shard` starting at `from`. [`ReadError::Trimmed`] when retention passed
    /// `from`; [`ReadError::BeyondEnd`] when `from` is past the last committed entry.
    async fn reader(
        &self,
        shard: ShardId,
        from: ReadFrom,
    ) -> Result<Box<dyn ShardReader>, ReadError>;

    /// The leases `consumer` gets on this log's shards, as they are granted. A child shard is
    /// granted only once every parent's committed `next_seq` reached the parent's end. A shard
    /// whose lease was lost may be granted again later (logs whose leases can be lost). The
    /// stream ends (`None`) when no more shards will be granted to this caller.
    fn assignments(&self, consumer: &str) -> Result<Assignments, LeaseError>;

    /// Once it returns, every append is encrypted at rest as `keys` say. With
    /// [`Capabilities::atomic_encryption_switch`] it waits for appends in flight, so the switch
    /// takes effect at one position of each shard; otherwise appends in flight may land in
    /// either mode. Records appended earlier stay readable as long as `keys.ring` holds their
    /// keys.
    async fn switch_encryption(&self, keys: AtRestKeys) -> Result<(), EncryptionError>;

    /// Unregisters `consumer` from every shard: its stored state goes, and retention no longer
    /// keeps entries for it. For a consumer that is gone for good (a deleted delivery stream
    /// that read this log); a lease it still holds may fail to commit afterwards.
    async fn forget(&self, consumer: &str) -> Result<(), LeaseError>;

    /// Splits or merges open shards ([`Capabilities::shards_can_end`]; otherwise
    /// [`ReshardError::Unsupported`]) and returns the new shards. Appends in flight finish
    /// first; the closed shards' last entries are then their ends ([`Entry::End`] follows), and
    /// every later append goes to the new shards. Durable before it returns: after a restart the
    /// log has the new shards, or (a crash during the call) the old ones with no record lost.
    async fn reshard(&self, change: Reshard) -> Result<Vec<ShardId>, ReshardError>;

    /// How much each shard holds.
    fn stats(&self) -> Vec<ShardStats>;

    /// The shards that refuse appends now, and why.
    fn problems(&self) -> Vec<ShardProblem>;

    /// Who holds each consumer's lease on each shard, as far as this node knows (empty for a
    /// log whose leases are never shared).
    fn lease_holders(&self) -> Vec<LeaseHolder> {
        Vec::new()
    }

    /// Returns once nothing appended before the call can be lost (the embedded log: its
    /// writers drained and fdatasync'd). Appends after it fail; readers keep working.
    async fn close(&self);
}

/// Reads one shard in order.
pub trait ShardReader: Send + fmt::Debug {
    fn shard(&self) -> ShardId;

    /// The position the next entry is at or after.
    fn position(&self) -> u64;

    /// The next committed entries at or after [`position`](Self::position), in order, each
    /// once, at most `limit` of them (but at least one when one is committed). **Blocking**:
    /// call it from a consumer's own thread or `spawn_blocking`; it never waits for entries
    /// that are not committed yet (an empty batch means caught up).
    ///
    /// Never returns an entry before `append` acknowledged it. Records come back exactly as
    /// appended (opened when encrypted at rest: [`ReadError::Decrypt`] if the keys cannot).
    /// When the batch ends at the end of what is committed, `caught_up` is `Some(w)`: with
    /// [`Capabilities::watermark_is_a_bound`], every entry committed later has
    /// `arrival_ms >= w`, so a buffer whose window ends at or before `w` can take nothing more;
    /// otherwise `w` is a hint. After an [`Entry::End`] the reader returns nothing more.
    fn read(&mut self, limit: ReadLimit) -> Result<ReadBatch, ReadError>;

    /// Resolves when something at or past [`position`](Self::position) may have been committed
    /// (it may resolve spuriously). Dropping it loses nothing.
    fn changed(&mut self) -> BoxFuture<'_, ()>;

    /// Records `proposal` at the reader's position, unless an entry was committed there first:
    /// then [`SealOutcome::Moved`], and the caller reads on. Returns the seal that holds at the
    /// position (with [`Capabilities::durable_seals`], the first one recorded there wins and
    /// every proposer gets it) and moves the reader past it, so this reader does not return it
    /// again. A seal needs no lease: a consumer that lost its lease either gets the seal that
    /// holds or is moved on.
    fn seal(&mut self, proposal: SealProposal) -> BoxFuture<'_, Result<SealOutcome, ReadError>>;
}

/// One consumer's hold on one shard: its stored progress, and the right to move it.
#[async_trait]
pub trait ShardLease: Send + Sync + fmt::Debug {
    fn shard(&self) -> ShardId;

    fn consumer(&self) -> &str;

    /// The consumer's state as last committed. A consumer without stored state is registered
    /// at the oldest retained entry (`next_seq`) with no markers, and from then on retention
    /// keeps every entry it has not passed, across restarts.
    async fn state(&self) -> Result<ConsumerState, LeaseError>;

    /// Stores `progress` and returns once it is durable. When both markers and `next_seq` are
    /// given, a crash may leave the new markers with the old `next_seq`, never the old markers
    /// with the new `next_seq`. `next_seq` must lie within the shard's retained entries
    /// ([`LeaseError::OutOfRange`]). Entries below the lowest `next_seq` of all registered
    /// consumers may be deleted from then on. If the lease was lost, nothing is stored
    /// ([`LeaseError::Lost`]).
    async fn commit(&self, progress: Progress) -> Result<(), LeaseError>;

    /// Resolves once the lease is lost to another owner (never, for logs without
    /// [`Capabilities::leases_can_be_lost`]). Dropping the lease releases it (a log shared by
    /// nodes releases it once the consumer's [`Assignments`] are dropped too, or the log is
    /// closed).
    fn lost(&self) -> BoxFuture<'static, ()>;
}

/// The leases a consumer is granted, in the order they are granted.
#[derive(Debug)]
pub struct Assignments {
    granted: mpsc::UnboundedReceiver<Arc<dyn ShardLease>>,
}

impl Assignments {
    /// Leases sent on `granted`; the stream ends when every sender is dropped.
    pub fn new(granted: mpsc::UnboundedReceiver<Arc<dyn ShardLease>>) -> Self {
        Self { granted }
    }

    /// The next lease, once granted; `None` when no more will be.
    pub async fn next(&mut self) -> Option<Arc<dyn ShardLease>> {
        self.granted.recv().await
    }

    /// A lease granted already, without waiting.
    pub fn try_next(&mut self) -> Option<Arc<dyn ShardLease>> {
        self.granted.try_recv().ok()
    }
}

pub use embedded::{
    AppendOutcome, DiskBudget, EmbeddedLog, EmbeddedStore, FaultInjector, FsyncPolicy, LogOptions,
    Shard,
};
