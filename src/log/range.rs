//! A view of a stream's log that holds only the records that arrived within a time range: what
//! a replay reads (`src/replay/`).
//!
//! The view is a [`StreamLog`] whose readers skip records that arrived before the range and end
//! each shard ([`Entry::End`] without children) at the first record that arrived after it, or
//! once they have read everything and nothing can still arrive within it. A delivery worker
//! reading through the view therefore cuts, names and commits exactly as it does on the log
//! itself, and seals every buffer at the range's end: the objects of a replay are a pure
//! function of the log and the range, so a replay that runs again (after a crash, or on
//! purpose) writes the same objects under the same keys.
//!
//! The view never writes to the log it reads: appends and reshards are refused, and a seal it
//! is asked for is not recorded (its readers end instead of waiting for a window to pass, so
//! they do not ask for one). Leases and progress are the log's own, under the replay's consumer
//! name, which is what makes a replay resumable. [`RangeProgress`] tells how far each shard
//! got and when every shard is finished.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::future::BoxFuture;
use tokio::sync::mpsc;

use super::{
    Append, AppendError, Appended, Assignments, AtRestKeys, Capabilities, Cause, ConsumerState,
    EncryptionError, Entry, LeaseError, Progress, ReadBatch, ReadError, ReadFrom, ReadLimit,
    Reshard, ReshardError, SealOutcome, SealProposal, ShardEnd, ShardId, ShardInfo, ShardLease,
    ShardProblem, ShardReader, ShardStats, StreamLog,
};

/// Arrival times from `from_ms` to `to_ms`, both included (Unix epoch milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub from_ms: i64,
    pub to_ms: i64,
}

impl TimeRange {
    fn holds(&self, arrival_ms: i64) -> bool {
        (self.from_ms..=self.to_ms).contains(&arrival_ms)
    }
}

/// How long after `to_ms` a log whose watermark is only a hint is taken to hold every record
/// of the range (records are stamped by the node that stores them; nodes' clocks differ a
/// little).
const CLOCK_MARGIN_MS: i64 = 5_000;

/// `log` as seen through `range` (see the module's documentation).
pub struct RangeView {
    inner: Arc<dyn StreamLog>,
    range: TimeRange,
    progress: Arc<RangeProgress>,
}

impl std::fmt::Debug for RangeView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RangeView").field("range", &self.range).finish_non_exhaustive()
    }
}

impl RangeView {
    /// The view of `inner` through `range`; its progress covers the shards `inner` lists now.
    pub fn new(inner: Arc<dyn StreamLog>, range: TimeRange) -> Self {
        let progress = Arc::new(RangeProgress::new(range, &inner.shards()));
        Self { inner, range, progress }
    }

    /// How far each shard got.
    pub fn progress(&self) -> Arc<RangeProgress> {
        self.progress.clone()
    }
}

/// How far a replay got in each shard it reads.
#[derive(Debug)]
pub struct RangeProgress {
    range: TimeRange,
    shards: Mutex<BTreeMap<ShardId, ShardProgress>>,
}

#[derive(Debug, Clone, Default)]
struct ShardProgress {
    parents: Vec<ShardId>,
    /// Where the view ended the shard, and whether that was the range's end (not the shard's).
    end: Option<(u64, bool)>,
    /// The consumer's `next_seq` as last read or committed.
    committed: Option<u64>,
    /// Records of the range read, and the highest position counted (a worker that restarts
    /// reads some again).
    records: u64,
    bytes: u64,
    counted_to: Option<u64>,
    last_arrival_ms: Option<i64>,
}

/// What [`RangeProgress::summary`] tells.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RangeSummary {
    /// Records and bytes of the range read so far (by this process).
    pub records: u64,
    pub bytes: u64,
    pub shards_done: usize,
    pub shards_total: usize,
    /// From 0 to 1: finished shards count whole, the others by the time they reached.
    pub fraction: f64,
}

impl RangeProgress {
    fn new(range: TimeRange, shards: &[ShardInfo]) -> Self {
        let listed: Vec<ShardId> = shards.iter().map(|s| s.id).collect();
        let shards = shards
            .iter()
            .map(|s| {
                let parents = [s.parent, s.adjacent_parent].into_iter().flatten();
                let parents = parents.filter(|p| listed.contains(p)).collect();
                (s.id, ShardProgress { parents, ..ShardProgress::default() })
            })
            .collect();
        Self { range, shards: Mutex::new(shards) }
    }

    fn update(&self, shard: ShardId, f: impl FnOnce(&mut ShardProgress)) {
        let mut shards = self.shards.lock().expect("not poisoned");
        f(shards.entry(shard).or_default());
    }

    fn counted(&self, shard: ShardId, seq: u64, arrival_ms: i64, len: usize) {
        self.update(shard, |p| {
            if p.counted_to.is_none_or(|c| seq > c) {
                p.counted_to = Some(seq);
                p.records += 1;
                p.bytes += len as u64;
            }
            p.last_arrival_ms = Some(p.last_arrival_ms.map_or(arrival_ms, |t| t.max(arrival_ms)));
        });
    }

    fn committed(&self, shard: ShardId, next_seq: u64) {
        self.update(shard, |p| {
            p.committed = Some(p.committed.map_or(next_seq, |c| c.max(next_seq)))
        });
    }

    /// Whether every shard listed when the view was made is finished: delivered to where the
    /// view ended it, or never to be read because a parent ended at the range's end (its
    /// records all arrived after the range).
    pub fn finished(&self) -> bool {
        let shards = self.shards.lock().expect("not poisoned");
        shards.keys().all(|id| settled(&shards, *id, 0))
    }

    pub fn summary(&self) -> RangeSummary {
        let shards = self.shards.lock().expect("not poisoned");
        let span = (self.range.to_ms - self.range.from_ms).max(1) as f64;
        let mut summary = RangeSummary {
            records: 0,
            bytes: 0,
            shards_done: 0,
            shards_total: shards.len(),
            fraction: 0.0,
        };
        for (id, p) in shards.iter() {
            summary.records += p.records;
            summary.bytes += p.bytes;
            if settled(&shards, *id, 0) {
                summary.shards_done += 1;
                summary.fraction += 1.0;
            } else if let Some(t) = p.last_arrival_ms {
                summary.fraction += ((t - self.range.from_ms) as f64 / span).clamp(0.0, 0.99);
            }
        }
        if summary.shards_total > 0 {
            summary.fraction /= summary.shards_total as f64;
        } else {
            summary.fraction = 1.0;
        }
        summary
    }
}

/// Whether `id` is delivered to where the view ended it, or will never be read (see
/// [`RangeProgress::finished`]).
fn settled(shards: &BTreeMap<ShardId, ShardProgress>, id: ShardId, depth: usize) -> bool {
    let Some(p) = shards.get(&id) else { return true };
    let delivered = matches!((p.end, p.committed), (Some((end, _)), Some(c)) if c >= end);
    delivered || skipped(shards, id, depth)
}

/// Whether `id` will never be read: a parent ended at the range's end (so the log never grants
/// its children to the replay, and their records all arrived after the range), or was skipped
/// itself. `depth` bounds the walk up a lineage.
fn skipped(shards: &BTreeMap<ShardId, ShardProgress>, id: ShardId, depth: usize) -> bool {
    let Some(p) = shards.get(&id) else { return false };
    depth < 64
        && p.parents.iter().any(|parent| {
            shards.get(parent).is_some_and(|pp| matches!(pp.end, Some((_, true))))
                || skipped(shards, *parent, depth + 1)
        })
}

/// Why the view refuses to write.
#[derive(Debug, thiserror::Error)]
#[error("a replay's view of the log does not write to it")]
struct ViewIsReadOnly;

fn refused() -> Cause {
    Cause::new(ViewIsReadOnly)
}

#[async_trait]
impl StreamLog for RangeView {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn shards(&self) -> Vec<ShardInfo> {
        self.inner.shards()
    }

    async fn append(&self, records: Vec<Append>) -> Vec<Result<Appended, AppendError>> {
        records.iter().map(|_| Err(AppendError::Unavailable(refused()))).collect()
    }

    async fn reader(
        &self,
        shard: ShardId,
        from: ReadFrom,
    ) -> Result<Box<dyn ShardReader>, ReadError> {
        let inner = self.inner.reader(shard, from).await?;
        Ok(Box::new(RangeReader {
            inner,
            range: self.range,
            bound: self.inner.capabilities().watermark_is_a_bound,
            progress: self.progress.clone(),
            ended: false,
            skipped: 0,
        }))
    }

    fn assignments(&self, consumer: &str) -> Result<Assignments, LeaseError> {
        let mut inner = self.inner.assignments(consumer)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let wrap = {
            let progress = self.progress.clone();
            move |lease: Arc<dyn ShardLease>| -> Arc<dyn ShardLease> {
                Arc::new(RangeLease { inner: lease, progress: progress.clone() })
            }
        };
        // Leases granted already are handed on at once, as the log itself does.
        while let Some(lease) = inner.try_next() {
            let _ = tx.send(wrap(lease));
        }
        // Ends (dropping the log's assignments, so no more leases are taken for the consumer)
        // once the receiver is dropped: the replay's workers stopped.
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    lease = inner.next() => {
                        let Some(lease) = lease else { return };
                        if tx.send(wrap(lease)).is_err() {
                            return;
                        }
                    }
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(Assignments::new(rx))
    }

    async fn switch_encryption(&self, _keys: AtRestKeys) -> Result<(), EncryptionError> {
        Err(EncryptionError::Unavailable(refused()))
    }

    async fn forget(&self, consumer: &str) -> Result<(), LeaseError> {
        self.inner.forget(consumer).await
    }

    async fn reshard(&self, _change: Reshard) -> Result<Vec<ShardId>, ReshardError> {
        Err(ReshardError::Unsupported)
    }

    fn stats(&self) -> Vec<ShardStats> {
        self.inner.stats()
    }

    fn problems(&self) -> Vec<ShardProblem> {
        self.inner.problems()
    }

    /// The log is the stream's: closing the view leaves it open.
    async fn close(&self) {}
}

/// A reader of the range in one shard.
#[derive(Debug)]
struct RangeReader {
    inner: Box<dyn ShardReader>,
    range: TimeRange,
    /// Whether the log's watermark is a bound (otherwise the clock decides, with a margin).
    bound: bool,
    progress: Arc<RangeProgress>,
    ended: bool,
    /// Records passed over because they arrived before the range.
    skipped: u64,
}

impl RangeReader {
    fn end(&mut self, position: u64, at_range_end: bool, children: Vec<ShardId>) -> Entry {
        self.ended = true;
        tracing::debug!(
            shard = self.inner.shard().0,
            position,
            at_range_end,
            skipped = self.skipped,
            "the range ends in this shard"
        );
        self.progress.update(self.inner.shard(), |p| p.end = Some((position, at_range_end)));
        Entry::End(ShardEnd { position, children })
    }

    /// Whether nothing committed after a read that caught up at `watermark` can be in range.
    fn past_range(&self, watermark: i64) -> bool {
        if self.bound {
            watermark > self.range.to_ms
        } else {
            crate::clock::now_ms() > self.range.to_ms + CLOCK_MARGIN_MS
        }
    }
}

impl ShardReader for RangeReader {
    fn shard(&self) -> ShardId {
        self.inner.shard()
    }

    fn position(&self) -> u64 {
        self.inner.position()
    }

    fn read(&mut self, limit: ReadLimit) -> Result<ReadBatch, ReadError> {
        if self.ended {
            return Ok(ReadBatch { entries: Vec::new(), caught_up: Some(i64::MIN) });
        }
        let shard = self.inner.shard();
        let batch = self.inner.read(limit)?;
        let mut entries = Vec::with_capacity(batch.entries.len());
        for entry in batch.entries {
            match entry {
                Entry::Record(r) if r.arrival_ms > self.range.to_ms => {
                    entries.push(self.end(r.seq, true, Vec::new()));
                    return Ok(ReadBatch { entries, caught_up: None });
                }
                Entry::Record(r) if self.range.holds(r.arrival_ms) => {
                    self.progress.counted(shard, r.seq, r.arrival_ms, r.data.len());
                    entries.push(Entry::Record(r));
                }
                // Before the range.
                Entry::Record(_) => self.skipped += 1,
                // A seal recorded in the range cuts the replay where it cut delivery; one
                // recorded before it closes nothing (no buffer is open yet).
                Entry::Seal(seal) if seal.watermark_ms >= self.range.from_ms => {
                    entries.push(Entry::Seal(seal))
                }
                Entry::Seal(_) => {}
                Entry::End(end) => {
                    entries.push(self.end(end.position, false, end.children));
                    return Ok(ReadBatch { entries, caught_up: None });
                }
            }
        }
        match batch.caught_up {
            Some(watermark) if self.past_range(watermark) => {
                let position = self.inner.position();
                entries.push(self.end(position, true, Vec::new()));
                Ok(ReadBatch { entries, caught_up: None })
            }
            // Records of the range may still be committed: nothing is due before they are.
            Some(_) => Ok(ReadBatch { entries, caught_up: Some(i64::MIN) }),
            None => Ok(ReadBatch { entries, caught_up: None }),
        }
    }

    fn changed(&mut self) -> BoxFuture<'_, ()> {
        if self.ended {
            return Box::pin(std::future::pending());
        }
        if self.bound {
            return self.inner.changed();
        }
        // The clock, not a commit, may be what ends the range.
        Box::pin(async move {
            tokio::select! {
                _ = self.inner.changed() => {}
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            }
        })
    }

    /// Never recorded: the view ends its shards rather than waiting for windows, so a cut it
    /// would record cannot be needed; the worker is told to read on.
    fn seal(&mut self, _proposal: SealProposal) -> BoxFuture<'_, Result<SealOutcome, ReadError>> {
        Box::pin(async { Ok(SealOutcome::Moved) })
    }
}

/// A lease of the replay's consumer, whose progress the view follows.
#[derive(Debug)]
struct RangeLease {
    inner: Arc<dyn ShardLease>,
    progress: Arc<RangeProgress>,
}

#[async_trait]
impl ShardLease for RangeLease {
    fn shard(&self) -> ShardId {
        self.inner.shard()
    }

    fn consumer(&self) -> &str {
        self.inner.consumer()
    }

    async fn state(&self) -> Result<ConsumerState, LeaseError> {
        let state = self.inner.state().await?;
        self.progress.committed(self.shard(), state.next_seq);
        Ok(state)
    }

    async fn commit(&self, progress: Progress) -> Result<(), LeaseError> {
        let next_seq = progress.next_seq;
        self.inner.commit(progress).await?;
        if let Some(next_seq) = next_seq {
            self.progress.committed(self.shard(), next_seq);
        }
        Ok(())
    }

    fn lost(&self) -> BoxFuture<'static, ()> {
        self.inner.lost()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::memory::MemoryStore;
    use crate::log::{Append, LogStore, StreamSpec};
    use bytes::Bytes;

    async fn log_with_one_shard() -> (Arc<MemoryStore>, Arc<dyn StreamLog>) {
        let store = MemoryStore::new();
        let spec = StreamSpec { shards: 1, at_rest: Default::default() };
        let log = store.open("s", spec).await.unwrap();
        (store, log)
    }

    async fn put_at(store: &MemoryStore, log: &dyn StreamLog, ms: i64, data: &str) {
        store.log("s").set_clock(ms);
        let appended = log.append(vec![Append::implicit(Bytes::from(data.to_string()))]).await;
        assert!(appended.iter().all(Result::is_ok));
    }

    /// Everything a reader of the view returns, up to its end.
    fn read_all(reader: &mut dyn ShardReader) -> Vec<Entry> {
        let mut out = Vec::new();
        for _ in 0..100 {
            let batch = reader.read(ReadLimit { entries: 2, bytes: 1 << 20 }).unwrap();
            let ended = batch.entries.iter().any(|e| matches!(e, Entry::End(_)));
            out.extend(batch.entries);
            if ended {
                break;
            }
        }
        out
    }

    fn records(entries: &[Entry]) -> Vec<String> {
        (entries.iter())
            .filter_map(|e| match e {
                Entry::Record(r) => Some(String::from_utf8(r.data.to_vec()).unwrap()),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn the_view_holds_the_records_of_the_range_and_ends_the_shard_after_it() {
        let (store, log) = log_with_one_shard().await;
        for (ms, data) in
            [(100, "before"), (200, "first"), (250, "second"), (300, "last"), (301, "after")]
        {
            put_at(&store, log.as_ref(), ms, data).await;
        }
        let view = RangeView::new(log.clone(), TimeRange { from_ms: 200, to_ms: 300 });
        let mut reader = view.reader(ShardId(0), ReadFrom::Oldest).await.unwrap();
        let entries = read_all(reader.as_mut());
        assert_eq!(records(&entries), ["first", "second", "last"]);
        // The end is at the first record after the range: a consumer that commits it has
        // read the range whole.
        let Some(Entry::End(end)) = entries.last() else { panic!("no end: {entries:?}") };
        assert!(end.children.is_empty());
        assert_eq!(view.progress().summary().records, 3);
        assert!(!view.progress().finished(), "nothing was committed yet");
        // Nothing more after the end, and appends through the view are refused.
        assert!(reader.read(ReadLimit::default()).unwrap().entries.is_empty());
        let refused = view.append(vec![Append::implicit(Bytes::from_static(b"x"))]).await;
        assert!(refused[0].is_err());
    }

    #[tokio::test]
    async fn a_range_that_reaches_the_end_of_the_log_ends_once_the_watermark_passed_it() {
        let (store, log) = log_with_one_shard().await;
        put_at(&store, log.as_ref(), 100, "in").await;
        store.log("s").set_clock(150);
        let view = RangeView::new(log.clone(), TimeRange { from_ms: 0, to_ms: 200 });
        let mut reader = view.reader(ShardId(0), ReadFrom::Oldest).await.unwrap();
        // Records may still arrive within the range: no end, and nothing is due yet.
        let batch = reader.read(ReadLimit::default()).unwrap();
        assert_eq!(records(&batch.entries), ["in"]);
        assert_eq!(batch.caught_up, Some(i64::MIN));
        put_at(&store, log.as_ref(), 180, "late").await;
        store.log("s").set_clock(250);
        let entries = read_all(reader.as_mut());
        assert_eq!(records(&entries), ["late"]);
        assert!(matches!(entries.last(), Some(Entry::End(_))), "{entries:?}");
    }

    #[tokio::test]
    async fn a_replay_finishes_when_its_consumer_committed_every_shard_to_where_the_view_ended_it()
    {
        let (store, log) = log_with_one_shard().await;
        put_at(&store, log.as_ref(), 100, "a").await;
        put_at(&store, log.as_ref(), 200, "b").await;
        // Split the shard after the range: the children only hold records after it.
        let children =
            log.reshard(Reshard::Split { shard: ShardId(0), at: 1 << 127 }).await.unwrap();
        store.log("s").set_clock(300);
        let view = RangeView::new(log.clone(), TimeRange { from_ms: 50, to_ms: 150 });
        let progress = view.progress();
        let mut assignments = view.assignments("replay-x").unwrap();
        let lease = assignments.try_next().expect("the parent is granted");
        assert_eq!(lease.shard(), ShardId(0));
        let state = lease.state().await.unwrap();
        let mut reader = view.reader(ShardId(0), ReadFrom::Seq(state.next_seq)).await.unwrap();
        let entries = read_all(reader.as_mut());
        assert_eq!(records(&entries), ["a"]);
        let Some(Entry::End(end)) = entries.last().cloned() else { panic!("{entries:?}") };
        assert!(end.children.is_empty(), "the range ended first, not the shard");
        assert!(!progress.finished());
        lease.commit(Progress { markers: None, next_seq: Some(end.position) }).await.unwrap();
        // The children are never read: their records all arrived after the range.
        assert!(progress.finished(), "{children:?}");
        let summary = progress.summary();
        assert_eq!((summary.shards_done, summary.shards_total), (3, 3));
        assert_eq!(summary.fraction, 1.0);
    }
}
