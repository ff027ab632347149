//! Appending on JetStream (§1.3 of the design): every record of a call is published at once,
//! each with a message id (`<incarnation>.<counter>`) that is fixed when the record is accepted
//! and reused by every retry, so a publish retried within the stream's duplicate window is
//! stored once. Publishes that may succeed later (no leader during an election, a lost
//! connection, no answer in time) are retried until the call's deadline; then the record is
//! `Unavailable`, which the API answers 503.
//!
//! Order: records of one call that go to one shard are stored in call order. A failed record
//! is retried only when no later record of its shard in the call was stored; otherwise it is
//! answered `Unavailable` at once (its retry would be stored after the later one).
//!
//! A shard that closed (a reshard, on this node or another) refuses every publish: those
//! records are routed again to its children once this node followed the reshard. Readers
//! finish a parent before its children, so the order of a key holds. A record whose earlier
//! publish had no answer may have been stored before the shard closed: it is looked for there
//! first, so it is not stored twice.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::context::PublishError;
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use futures::future::join_all;
use tokio::time::Instant;

use super::errors::{cause, classify, PublishFailure};
use super::message::{ARRIVAL, EPOCH};
use super::names;
use super::stream_log::{LogShared, ShardHandle};
use super::topology::fence_closed;
use crate::log::{Append, AppendError, Appended, Cause, Route, ShardId};

/// The first wait before a retry; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Retries stop this long before the deadline, so the answer is in time.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// One record, ready to publish (and to publish again, identically).
struct Prepared {
    index: usize,
    id: String,
    data: Bytes,
    epoch: Option<String>,
    route: Route,
    /// An attempt failed in a way that may have stored it (no answer in time).
    uncertain: bool,
}

/// How many times records refused by closed shards are routed again in one call (each time
/// after following a reshard).
const REROUTES: usize = 5;

/// Appends `records`, one result per record in order.
pub(super) async fn append(
    shared: &LogShared,
    records: Vec<Append>,
) -> Vec<Result<Appended, AppendError>> {
    let closed = || AppendError::Unavailable(cause("append", "the log is closed"));
    if shared.closed.load(Ordering::Acquire) {
        return records.iter().map(|_| Err(closed())).collect();
    }
    let _appending = shared.appending.read().await;
    if shared.closed.load(Ordering::Acquire) {
        return records.iter().map(|_| Err(closed())).collect();
    }
    let deadline = Instant::now() + shared.options.append_deadline;
    let arrival_ms = crate::clock::now_ms();
    let epoch = shared.at_rest.current();
    let mut results: Vec<Option<Result<Appended, AppendError>>> = vec![None; records.len()];
    let mut pending = Vec::with_capacity(records.len());
    for (index, record) in records.into_iter().enumerate() {
        let data = match &epoch {
            None => record.data,
            Some(epoch) => match epoch.seal(&record.data) {
                Ok(sealed) => sealed,
                Err(e) => {
                    results[index] = Some(Err(AppendError::Unavailable(e)));
                    continue;
                }
            },
        };
        let id = format!("{}.{}", names::incarnation(), names::next_number());
        let epoch = epoch.as_ref().map(|e| e.name.clone());
        pending.push(Prepared { index, id, data, epoch, route: record.route, uncertain: false });
    }
    for round in 0..=REROUTES {
        let groups = route(shared, pending);
        let published = join_all(
            (groups.into_iter())
                .map(|(shard, group)| publish_group(shared, shard, group, arrival_ms, deadline)),
        )
        .await;
        let mut refused = Vec::new();
        for (record, outcome) in published.into_iter().flatten() {
            match outcome {
                Some(result) => results[record.index] = Some(result),
                None => refused.push(record),
            }
        }
        if refused.is_empty() {
            break;
        }
        // Their shard closed: follow the reshard, then route them to its children.
        refused.sort_by_key(|r| r.index);
        let followed = shared.reload().await;
        if round == REROUTES || followed.is_err() || Instant::now() + DEADLINE_MARGIN >= deadline {
            let why = match followed {
                Err(e) => e,
                Ok(()) => cause("append", "its shard kept closing (a reshard in progress)"),
            };
            for record in &refused {
                results[record.index] = Some(Err(AppendError::Unavailable(why.clone())));
            }
            break;
        }
        pending = refused;
    }
    results.into_iter().map(|r| r.expect("every record answered")).collect()
}

/// `records` grouped by the open shard of the current topology that takes each, in call order.
fn route(shared: &LogShared, records: Vec<Prepared>) -> Vec<(Arc<ShardHandle>, Vec<Prepared>)> {
    let topology = shared.topology();
    let single = topology.lineage.open().len() == 1;
    let mut groups: BTreeMap<ShardId, (Arc<ShardHandle>, Vec<Prepared>)> = BTreeMap::new();
    for record in records {
        let key = match record.route {
            Route::Implicit if single => 0,
            Route::Implicit => rand::random::<u128>(),
            Route::HashKey(key) => key,
        };
        let shard = topology.route(key);
        groups.entry(shard.id).or_insert_with(|| (shard.clone(), Vec::new())).1.push(record);
    }
    groups.into_values().collect()
}

/// What one publish came to.
enum Outcome {
    Stored(u64),
    Failed(PublishFailure, Cause),
}

/// Publishes one shard's records of a call, in call order, retrying as the module says. A
/// record answered `None` was refused because the shard closed (and is not stored in it).
async fn publish_group(
    shared: &LogShared,
    shard: Arc<ShardHandle>,
    mut group: Vec<Prepared>,
    arrival_ms: i64,
    deadline: Instant,
) -> Vec<(Prepared, Option<Result<Appended, AppendError>>)> {
    // Where the first of them can be stored at the earliest.
    let floor = shard.acked_end.load(Ordering::Acquire) + 1;
    let mut results: Vec<Option<Option<Result<Appended, AppendError>>>> =
        group.iter().map(|_| None).collect();
    let mut pending: Vec<usize> = (0..group.len()).collect();
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = Instant::now();
        let mut outcomes =
            publish_all(shared, &shard, &group, &pending, arrival_ms, deadline).await;
        let no_stream = |o: &Outcome| matches!(o, Outcome::Failed(PublishFailure::NoStream, _));
        if outcomes.iter().any(no_stream) {
            // A closed shard's stream moved away, or a stream is being made: which one?
            let _ = shared.reload().await;
            let now =
                if shard.is_closed() { PublishFailure::Closed } else { PublishFailure::Retry };
            for outcome in outcomes.iter_mut().filter(|o| no_stream(o)) {
                if let Outcome::Failed(failure, _) = outcome {
                    *failure = now;
                }
            }
        }
        metrics::histogram!("hydrant_jetstream_publish_latency_seconds", "stream" => shared.name.clone())
            .record(started.elapsed().as_secs_f64());
        let mut retry = Vec::new();
        for (&at, outcome) in pending.iter().zip(outcomes) {
            let record = &mut group[at];
            if let Outcome::Failed(failure, _) = &outcome {
                metrics::counter!("hydrant_jetstream_publish_errors_total",
                    "stream" => shared.name.clone(), "kind" => failure.as_str())
                .increment(1);
            }
            let encrypted = record.epoch.is_some();
            let stored = |seq| Ok(Appended { shard: shard.id, seq, arrival_ms, encrypted });
            results[at] = Some(match outcome {
                Outcome::Stored(seq) => {
                    shard.acked_end.fetch_max(seq, Ordering::AcqRel);
                    shard.full.store(false, Ordering::Release);
                    Some(stored(seq))
                }
                Outcome::Failed(PublishFailure::Full, why) => {
                    shard.full.store(true, Ordering::Release);
                    Some(Err(AppendError::Full(why)))
                }
                Outcome::Failed(PublishFailure::Fatal | PublishFailure::NoStream, why) => {
                    Some(Err(AppendError::Unavailable(why)))
                }
                Outcome::Failed(PublishFailure::Closed, _) if !record.uncertain => None,
                Outcome::Failed(PublishFailure::Closed, _) => {
                    // An earlier attempt may have been stored before the shard closed.
                    match stored_before_the_end(shared, &shard, &record.id, floor).await {
                        Ok(Some(seq)) => Some(stored(seq)),
                        Ok(None) => None,
                        Err(why) => Some(Err(AppendError::Unavailable(why))),
                    }
                }
                Outcome::Failed(PublishFailure::Retry, why) => {
                    record.uncertain = true;
                    retry.push(at);
                    Some(Err(AppendError::Unavailable(why)))
                }
            });
        }
        // A record stored after a failed one: retrying the failed one would store it after.
        let last_stored = results.iter().rposition(|r| matches!(r, Some(Some(Ok(_)))));
        retry.retain(|&at| last_stored.is_none_or(|stored| at > stored));
        if retry.is_empty() || Instant::now() + backoff + DEADLINE_MARGIN >= deadline {
            if !retry.is_empty() {
                tracing::warn!(stream = %shared.name, shard = shard.id.0, records = retry.len(),
                    "jetstream publishes still failing at the append deadline");
            }
            break;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        pending = retry;
    }
    (group.into_iter().zip(results))
        .map(|(record, result)| (record, result.expect("answered")))
        .collect()
}

/// Most positions of a closed shard looked through for a record whose publish had no answer.
const MOST_LOOKED_THROUGH: u64 = 100_000;

/// The position of the message with id `id` in `shard`'s fenced stream at or after `floor`,
/// if an earlier publish of it was stored before the shard closed.
async fn stored_before_the_end(
    shared: &LogShared,
    shard: &ShardHandle,
    id: &str,
    floor: u64,
) -> Result<Option<u64>, Cause> {
    let end = fence_closed(&shared.js, shard).await?;
    if end.saturating_sub(floor) > MOST_LOOKED_THROUGH {
        return Err(cause("append", "its shard closed while its publish had no answer"));
    }
    for seq in floor..end {
        let message = (shard.stream.get_raw_message(seq).await)
            .map_err(|e| cause("looking for a record in a closed shard", e))?;
        if message
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .is_some_and(|h| h.as_str() == id)
        {
            return Ok(Some(seq));
        }
    }
    Ok(None)
}

/// Publishes `group[at]` for every `at` of `pending` without waiting in between, then waits
/// for every acknowledgement (or the deadline).
async fn publish_all(
    shared: &LogShared,
    shard: &ShardHandle,
    group: &[Prepared],
    pending: &[usize],
    arrival_ms: i64,
    deadline: Instant,
) -> Vec<Outcome> {
    let arrival = arrival_ms.to_string();
    let mut acks = Vec::with_capacity(pending.len());
    for &at in pending {
        let record = &group[at];
        let mut message = PublishMessage::build()
            .payload(record.data.clone())
            .message_id(&record.id)
            .header(ARRIVAL, arrival.as_str());
        if let Some(epoch) = &record.epoch {
            message = message.header(EPOCH, epoch.as_str());
        }
        let sent = tokio::time::timeout_at(
            deadline,
            shared.js.send_publish(shard.subject.clone(), message),
        )
        .await;
        acks.push(match sent {
            Ok(Ok(ack)) => Ok(ack),
            Ok(Err(e)) => Err(failure(&e)),
            Err(_) => Err(timed_out()),
        });
    }
    let waits = acks.into_iter().map(|ack| async move {
        match ack {
            Err(outcome) => outcome,
            Ok(ack) => match tokio::time::timeout_at(deadline, ack).await {
                Ok(Ok(ack)) => Outcome::Stored(ack.sequence),
                Ok(Err(e)) => failure(&e),
                Err(_) => timed_out(),
            },
        }
    });
    join_all(waits).await
}

fn failure(e: &PublishError) -> Outcome {
    Outcome::Failed(classify(e), cause("publishing to NATS JetStream", e))
}

fn timed_out() -> Outcome {
    Outcome::Failed(
        PublishFailure::Retry,
        cause("publishing to NATS JetStream", "no acknowledgement before the append deadline"),
    )
}
