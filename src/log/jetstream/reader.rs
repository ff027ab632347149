//! Reading a shard (§1.4 of the design): a *pump* task follows the shard's stream with an
//! ordered consumer (ephemeral, in memory, recreated by the client after gaps; nothing is
//! acknowledged, progress lives in the lease records) and fills a bounded queue; the blocking
//! [`ShardReader::read`] takes from it. Seals are published at the reader's position with the
//! expected last sequence before it and an id made of the position only (§3.2), so the first
//! seal stored there wins and every proposer learns which one it is.
//!
//! "Caught up" means: nothing queued, and nothing known to be committed at or after the
//! position (what the consumer reported pending, and what this node saw acknowledged). Records
//! another node appended a moment ago may still be on their way: the watermark is a hint, and
//! a seal proposed before them answers `Moved`.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::StreamExt;
use tokio::sync::Notify;

use super::errors::{
    cause, classify, is_wrong_last_sequence, js_code, PublishFailure, JS_DUPLICATE_IN_PROCESS,
};
use super::message::{decode, seal_headers, unix_ms, Decoded};
use super::stream_log::{LogShared, ShardHandle};
use super::topology::fence_closed;
use crate::log::{
    Cause, Entry, ReadBatch, ReadError, ReadFrom, ReadLimit, Record, Seal, SealOutcome,
    SealProposal, ShardEnd, ShardId, ShardReader,
};

/// The queue holds at most this many entries ...
const QUEUE_ENTRIES: usize = 4096;
/// ... or this many bytes of record data (but always one entry).
const QUEUE_BYTES: usize = 4 << 20;
/// How long a read waits for entries known to be committed before it says `Unavailable`.
const READ_WAIT: Duration = Duration::from_secs(10);
/// How long the pump tries to (re)create its consumer before it reports the shard
/// unavailable (and goes on trying).
const CONSUMER_PATIENCE: Duration = Duration::from_secs(10);
/// How long a seal waits for the same seal in flight from another node.
const SEAL_IN_PROCESS_WAIT: Duration = Duration::from_secs(2);

/// What the pump hands to the reader.
enum Item {
    Entry {
        entry: Entry,
        bytes: usize,
    },
    /// The entry at `seq` cannot be read (it stays at the head of the queue: nothing is
    /// skipped), or, without `seq`, the shard cannot be read now (answered once).
    Failed {
        seq: Option<u64>,
        error: Failure,
    },
}

/// A [`ReadError`] the queue can hand out again.
#[derive(Debug, Clone)]
enum Failure {
    Damaged(String),
    Decrypt(String),
    Unavailable(String),
}

impl Failure {
    fn of(e: &ReadError) -> Self {
        match e {
            ReadError::Decrypt(c) => Failure::Decrypt(c.to_string()),
            ReadError::Unavailable(c) => Failure::Unavailable(c.to_string()),
            other => Failure::Damaged(other.to_string()),
        }
    }

    fn error(&self) -> ReadError {
        let cause = |text: &String| Cause::new(std::io::Error::other(text.clone()));
        match self {
            Failure::Damaged(text) => ReadError::Damaged(cause(text)),
            Failure::Decrypt(text) => ReadError::Decrypt(cause(text)),
            Failure::Unavailable(text) => ReadError::Unavailable(cause(text)),
        }
    }
}

fn position_of(entry: &Entry) -> u64 {
    match entry {
        Entry::Record(r) => r.seq,
        Entry::Seal(s) => s.position,
        Entry::End(e) => e.position,
    }
}

#[derive(Default)]
struct QueueState {
    items: VecDeque<Item>,
    bytes: usize,
    /// The highest position the consumer said exists (delivered plus pending).
    known_end: u64,
}

/// The pump's queue, shared with the reader.
#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    /// Signalled (with `arrived`) when the pump queues something.
    filled: Condvar,
    arrived: Notify,
    /// Signalled when the reader takes something.
    space: Notify,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, item: Item, known_end: u64) {
        let mut state = self.lock();
        if let Item::Entry { bytes, .. } = &item {
            state.bytes += bytes;
        }
        state.items.push_back(item);
        state.known_end = state.known_end.max(known_end);
        drop(state);
        self.filled.notify_all();
        self.arrived.notify_waiters();
    }

    fn is_full(&self) -> bool {
        let state = self.lock();
        state.items.len() >= QUEUE_ENTRIES || state.bytes >= QUEUE_BYTES
    }
}

impl QueueState {
    /// Drops queued entries before `position` (a seal this reader stored and moved past).
    fn skip_before(&mut self, position: u64) {
        while let Some(Item::Entry { entry, bytes }) = self.items.front() {
            if position_of(entry) >= position {
                break;
            }
            self.bytes -= bytes;
            self.items.pop_front();
        }
    }
}

/// A reader of one shard, fed by its pump.
pub(super) struct JetStreamReader {
    shared: Arc<LogShared>,
    shard: ShardId,
    handle: Arc<ShardHandle>,
    position: u64,
    queue: Arc<Queue>,
    pump: tokio::task::AbortHandle,
    last_arrival_ms: i64,
    ended: bool,
}

impl std::fmt::Debug for JetStreamReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamReader")
            .field("stream", &self.shared.name)
            .field("shard", &self.shard)
            .field("position", &self.position)
            .finish()
    }
}

impl Drop for JetStreamReader {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

impl JetStreamReader {
    /// Checks `from` against the shard's retained range and starts the pump there.
    pub async fn start(
        shared: Arc<LogShared>,
        shard: ShardId,
        from: ReadFrom,
    ) -> Result<Self, ReadError> {
        let handle = shared.handle(shard).ok_or(ReadError::UnknownShard(shard))?;
        let (first, end) = handle
            .bounds()
            .await
            .map_err(|e| ReadError::Unavailable(cause("reading a shard's state from NATS", e)))?;
        let position = match from {
            ReadFrom::Oldest => first,
            ReadFrom::Latest => end,
            ReadFrom::Seq(requested) if requested > end => {
                return Err(ReadError::BeyondEnd { requested, next_seq: end })
            }
            // Positions start at 1: nothing was ever deleted below it.
            ReadFrom::Seq(requested) if requested.max(1) < first => {
                return Err(ReadError::Trimmed { requested, first_retained: first })
            }
            ReadFrom::Seq(requested) => requested.max(1),
        };
        let queue = Arc::new(Queue::default());
        queue.lock().known_end = end - 1;
        let pump = tokio::spawn(pump(shared.clone(), handle.clone(), position, queue.clone()))
            .abort_handle();
        let last_arrival_ms = i64::MIN;
        Ok(Self { shared, shard, handle, position, queue, pump, last_arrival_ms, ended: false })
    }

    /// The last position known to be committed.
    fn known_end(&self, state: &QueueState) -> u64 {
        let acked = self.handle.acked_end.load(Ordering::Acquire);
        state.known_end.max(acked)
    }

    /// The shard's end, when it is closed and this reader is there (the pump queues it too, a
    /// moment later: the reader does not wait for it).
    fn end_here(&self) -> Option<Entry> {
        let end = self.handle.known_end().filter(|&end| self.position >= end)?;
        Some(Entry::End(ShardEnd { position: end, children: self.shared.children(self.shard) }))
    }

    fn watermark(&self) -> i64 {
        crate::clock::now_ms().max(self.last_arrival_ms)
    }

    /// Waits (blocking) until the pump queues something or `timeout` passes; false on timeout.
    fn wait_filled(&self, timeout: Duration) -> bool {
        let wait = || {
            let state = self.queue.lock();
            let (state, result) = self
                .queue
                .filled
                .wait_timeout_while(state, timeout, |s| s.items.is_empty())
                .unwrap_or_else(|e| e.into_inner());
            drop(state);
            !result.timed_out()
        };
        // On a runtime worker (tests call `read` from async code), hand the worker's other
        // tasks, the pump among them, to another thread while this one blocks.
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(wait),
            _ => wait(),
        }
    }
}

impl ShardReader for JetStreamReader {
    fn shard(&self) -> ShardId {
        self.shard
    }

    fn position(&self) -> u64 {
        self.position
    }

    fn read(&mut self, limit: ReadLimit) -> Result<ReadBatch, ReadError> {
        if self.ended {
            return Ok(ReadBatch { entries: Vec::new(), caught_up: Some(self.watermark()) });
        }
        let started = std::time::Instant::now();
        loop {
            let mut state = self.queue.lock();
            state.skip_before(self.position);
            if state.items.is_empty() {
                if let Some(end) = self.end_here() {
                    drop(state);
                    self.ended = true;
                    let caught_up = Some(self.watermark());
                    return Ok(ReadBatch { entries: vec![end], caught_up });
                }
                if self.position > self.known_end(&state) {
                    drop(state);
                    let caught_up = Some(self.watermark());
                    return Ok(ReadBatch { entries: Vec::new(), caught_up });
                }
                drop(state);
                let left = READ_WAIT.saturating_sub(started.elapsed());
                if left.is_zero() || !self.wait_filled(left) {
                    return Err(ReadError::Unavailable(cause(
                        format!("reading shard {} of {}", self.shard, self.shared.name),
                        "committed entries were not delivered in time (is NATS reachable?)",
                    )));
                }
                continue;
            }
            let mut entries = Vec::new();
            let mut taken_bytes = 0;
            while entries.len() < limit.entries.max(1) {
                let fits = match state.items.front() {
                    None => false,
                    Some(Item::Failed { seq: Some(_), error }) if entries.is_empty() => {
                        return Err(error.error())
                    }
                    Some(Item::Failed { .. }) => entries.is_empty(),
                    Some(Item::Entry { bytes, .. }) => {
                        entries.is_empty() || taken_bytes + bytes <= limit.bytes
                    }
                };
                if !fits {
                    break;
                }
                match state.items.pop_front().expect("checked") {
                    Item::Failed { error, .. } => return Err(error.error()),
                    Item::Entry { entry, bytes } => {
                        state.bytes -= bytes;
                        taken_bytes += bytes;
                        self.position = position_of(&entry) + 1;
                        if let Entry::Record(r) = &entry {
                            self.last_arrival_ms = self.last_arrival_ms.max(r.arrival_ms);
                        }
                        let end = matches!(entry, Entry::End(_));
                        entries.push(entry);
                        if end {
                            self.ended = true;
                            break;
                        }
                    }
                }
            }
            if !self.ended && state.items.is_empty() {
                if let Some(end) = self.end_here() {
                    entries.push(end);
                    self.ended = true;
                }
            }
            let caught_up = (state.items.is_empty() && self.position > self.known_end(&state))
                .then(|| self.watermark());
            drop(state);
            self.queue.space.notify_one();
            return Ok(ReadBatch { entries, caught_up });
        }
    }

    fn changed(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let arrived = self.queue.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            {
                let mut state = self.queue.lock();
                state.skip_before(self.position);
                if !state.items.is_empty() {
                    return;
                }
            }
            arrived.await;
        })
    }

    fn seal(&mut self, proposal: SealProposal) -> BoxFuture<'_, Result<SealOutcome, ReadError>> {
        Box::pin(async move {
            let p = self.position;
            {
                let mut state = self.queue.lock();
                state.skip_before(p);
                match state.items.front() {
                    Some(Item::Entry { entry: Entry::Seal(seal), bytes }) if seal.position == p => {
                        let (seal, bytes) = (*seal, *bytes);
                        state.bytes -= bytes;
                        state.items.pop_front();
                        self.position = p + 1;
                        return Ok(SealOutcome::Sealed(seal));
                    }
                    Some(_) => return Ok(SealOutcome::Moved),
                    None => {}
                }
            }
            let seal =
                Seal { position: p, watermark_ms: proposal.watermark_ms, kind: proposal.kind };
            let outcome = publish_seal(&self.shared, &self.handle, seal).await?;
            if let SealOutcome::Sealed(_) = outcome {
                self.position = p + 1;
                self.handle.acked_end.fetch_max(p, Ordering::AcqRel);
            }
            Ok(outcome)
        })
    }
}

/// Publishes `seal` at its position and returns the seal that holds there, or `Moved`.
async fn publish_seal(
    shared: &LogShared,
    handle: &ShardHandle,
    seal: Seal,
) -> Result<SealOutcome, ReadError> {
    let shard = handle.id;
    let p = seal.position;
    let deadline = tokio::time::Instant::now() + shared.options.append_deadline;
    let unavailable = |e: &dyn std::fmt::Display| {
        ReadError::Unavailable(cause(format!("sealing shard {shard} of {}", shared.name), e))
    };
    let mut backoff = Duration::from_millis(50);
    loop {
        let message = PublishMessage::build()
            .payload(Bytes::new())
            .headers(seal_headers(&seal))
            .message_id(format!("seal.{p}"))
            .expected_last_sequence(p - 1);
        let sent = match shared.js.send_publish(handle.subject.clone(), message).await {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        };
        match sent {
            Ok(ack) if !ack.duplicate && ack.sequence == p => return Ok(SealOutcome::Sealed(seal)),
            Ok(ack) => return seal_at(handle, ack.sequence).await,
            Err(e) if is_wrong_last_sequence(&e) => return seal_at(handle, p).await,
            Err(e)
                if classify(&e) == PublishFailure::NoStream && closed_now(shared, handle).await =>
            {
                // The shard closed: its end follows (the pump queues it), not a seal.
                fence_closed(&shared.js, handle).await.map_err(ReadError::Unavailable)?;
                return Ok(SealOutcome::Moved);
            }
            Err(e) if classify(&e) == PublishFailure::Closed => {
                // The shard closed: its end follows (the pump queues it), not a seal.
                fence_closed(&shared.js, handle).await.map_err(ReadError::Unavailable)?;
                return Ok(SealOutcome::Moved);
            }
            Err(e) if js_code(&e) == Some(JS_DUPLICATE_IN_PROCESS) => {
                // The same seal is being stored by another node right now.
                let until = tokio::time::Instant::now() + SEAL_IN_PROCESS_WAIT;
                while tokio::time::Instant::now() < until {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    if let SealOutcome::Sealed(theirs) = seal_at(handle, p).await? {
                        return Ok(SealOutcome::Sealed(theirs));
                    }
                }
                return Err(unavailable(&"the same seal stayed in process"));
            }
            Err(e) if matches!(classify(&e), PublishFailure::Retry | PublishFailure::NoStream) => {
                if tokio::time::Instant::now() + backoff >= deadline {
                    return Err(unavailable(&e));
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            Err(e) => return Err(unavailable(&e)),
        }
    }
}

/// Whether `handle`'s shard is closed, after following the registry entry once more.
async fn closed_now(shared: &LogShared, handle: &ShardHandle) -> bool {
    let _ = shared.reload().await;
    handle.is_closed()
}

/// What is stored at `position`, asked of the stream's leader (a replica may lag behind):
/// the seal there, or `Moved` when it is something else.
async fn seal_at(handle: &ShardHandle, position: u64) -> Result<SealOutcome, ReadError> {
    match handle.stream.get_raw_message(position).await {
        Ok(message) => {
            let published = unix_ms(message.time);
            match decode(position, Some(&message.headers), message.payload, published) {
                Ok(Decoded::Seal(seal)) => Ok(SealOutcome::Sealed(seal)),
                Ok(Decoded::Record { .. }) => Ok(SealOutcome::Moved),
                Err(why) => Err(ReadError::Damaged(cause("a stored message", why))),
            }
        }
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(SealOutcome::Moved),
        Err(e) => Err(ReadError::Unavailable(cause("reading a seal from NATS", e))),
    }
}

/// Follows the shard from `start`, decoding (and opening) each entry into `queue`, until the
/// reader is dropped, or until the shard's end once it is closed (then the end is queued last).
async fn pump(shared: Arc<LogShared>, handle: Arc<ShardHandle>, start: u64, queue: Arc<Queue>) {
    let shard = handle.id;
    let mut next = start;
    let mut failing_since: Option<tokio::time::Instant> = None;
    let mut ends = handle.end.subscribe();
    loop {
        if let Some(end) = *ends.borrow_and_update() {
            if next >= end {
                let entry =
                    Entry::End(ShardEnd { position: end, children: shared.children(shard) });
                queue.push(Item::Entry { entry, bytes: 0 }, end - 1);
                return;
            }
        }
        let config = pull::OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: next },
            ..Default::default()
        };
        let messages = match handle.stream.create_consumer(config).await {
            Ok(consumer) => consumer.messages().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let mut messages = match messages {
            Ok(messages) => messages,
            Err(why) => {
                let since = *failing_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() >= CONSUMER_PATIENCE {
                    let why = format!("reading shard {shard} of {}: {why}", shared.name);
                    queue.push(Item::Failed { seq: None, error: Failure::Unavailable(why) }, 0);
                    failing_since = None;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        failing_since = None;
        loop {
            let message = tokio::select! {
                message = messages.next() => message,
                // Closed meanwhile: at its end, stop following.
                changed = ends.changed() => match changed {
                    Ok(()) if ends.borrow().is_some_and(|end| next >= end) => break,
                    Ok(()) => continue,
                    Err(_) => std::future::pending().await,
                },
            };
            let Some(message) = message else { break };
            let message = match message {
                Ok(message) => message,
                Err(e) => {
                    tracing::warn!(stream = %shared.name, shard = shard.0, error = %e,
                        "jetstream reader lost its consumer, making a new one");
                    break;
                }
            };
            let (seq, pending, published) = match message.info() {
                Ok(info) => (info.stream_sequence, info.pending, unix_ms(info.published)),
                Err(e) => {
                    tracing::warn!(stream = %shared.name, shard = shard.0, error = %e,
                        "a jetstream message without its metadata, making a new consumer");
                    break;
                }
            };
            if seq < next {
                continue;
            }
            next = seq + 1;
            let item =
                match decode(seq, message.headers.as_ref(), message.payload.clone(), published) {
                    Err(why) => Item::Failed { seq: Some(seq), error: Failure::Damaged(why) },
                    Ok(Decoded::Seal(seal)) => Item::Entry { entry: Entry::Seal(seal), bytes: 0 },
                    Ok(Decoded::Record { arrival_ms, data, epoch }) => {
                        let data = match epoch {
                            None => Ok(data),
                            Some(epoch) => open_record(&shared, seq, &epoch, &data).await,
                        };
                        match data {
                            Ok(data) => Item::Entry {
                                bytes: data.len(),
                                entry: Entry::Record(Record { seq, arrival_ms, data }),
                            },
                            Err(e) => Item::Failed { seq: Some(seq), error: Failure::of(&e) },
                        }
                    }
                };
            while queue.is_full() {
                let space = queue.space.notified();
                tokio::pin!(space);
                space.as_mut().enable();
                if !queue.is_full() {
                    break;
                }
                space.await;
            }
            queue.push(item, seq + pending);
            if ends.borrow().is_some_and(|end| next >= end) {
                break;
            }
        }
    }
}

/// Opens a record encrypted at rest, waiting out a NATS that cannot give its key now.
async fn open_record(
    shared: &LogShared,
    seq: u64,
    epoch: &str,
    data: &[u8],
) -> Result<Bytes, ReadError> {
    let mut tries = 0;
    loop {
        match shared.at_rest.open(seq, epoch, data).await {
            Err(ReadError::Unavailable(e)) if tries < 10 => {
                tries += 1;
                tracing::warn!(stream = %shared.name, seq, error = %e,
                    "cannot read a record's data key now, trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
#[path = "reader_tests.rs"]
mod tests;
