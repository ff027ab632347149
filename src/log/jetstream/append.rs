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

use std::sync::atomic::Ordering;
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
use crate::log::{AppendError, Appended, Cause};

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
}

/// Appends `records` (each with the index of its shard), one result per record in order.
pub(super) async fn append(
    shared: &LogShared,
    records: Vec<(usize, Bytes)>,
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
    let mut groups: Vec<Vec<Prepared>> = (0..shared.shards.len()).map(|_| Vec::new()).collect();
    for (index, (shard, data)) in records.into_iter().enumerate() {
        let data = match &epoch {
            None => data,
            Some(epoch) => match epoch.seal(&data) {
                Ok(sealed) => sealed,
                Err(e) => {
                    results[index] = Some(Err(AppendError::Unavailable(e)));
                    continue;
                }
            },
        };
        let id = format!("{}.{}", names::incarnation(), names::next_number());
        let epoch = epoch.as_ref().map(|e| e.name.clone());
        groups[shard].push(Prepared { index, id, data, epoch });
    }
    let published = join_all(
        (shared.shards.iter().zip(groups))
            .filter(|(_, group)| !group.is_empty())
            .map(|(shard, group)| publish_group(shared, shard, group, arrival_ms, deadline)),
    )
    .await;
    for (index, result) in published.into_iter().flatten() {
        results[index] = Some(result);
    }
    results.into_iter().map(|r| r.expect("every record answered")).collect()
}

/// What one publish came to.
enum Outcome {
    Stored(u64),
    Failed(PublishFailure, Cause),
}

/// Publishes one shard's records of a call, in call order, retrying as the module says.
async fn publish_group(
    shared: &LogShared,
    shard: &ShardHandle,
    group: Vec<Prepared>,
    arrival_ms: i64,
    deadline: Instant,
) -> Vec<(usize, Result<Appended, AppendError>)> {
    let mut results: Vec<Option<Result<Appended, AppendError>>> =
        group.iter().map(|_| None).collect();
    let mut pending: Vec<usize> = (0..group.len()).collect();
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = Instant::now();
        let outcomes = publish_all(shared, shard, &group, &pending, arrival_ms, deadline).await;
        metrics::histogram!("hydrant_jetstream_publish_latency_seconds", "stream" => shared.name.clone())
            .record(started.elapsed().as_secs_f64());
        let mut retry = Vec::new();
        for (&at, outcome) in pending.iter().zip(outcomes) {
            let record = &group[at];
            if let Outcome::Failed(failure, _) = &outcome {
                metrics::counter!("hydrant_jetstream_publish_errors_total",
                    "stream" => shared.name.clone(), "kind" => failure.as_str())
                .increment(1);
            }
            results[at] = match outcome {
                Outcome::Stored(seq) => {
                    shard.acked_end.fetch_max(seq, Ordering::AcqRel);
                    shard.full.store(false, Ordering::Release);
                    Some(Ok(Appended {
                        shard: shard.id,
                        seq,
                        arrival_ms,
                        encrypted: record.epoch.is_some(),
                    }))
                }
                Outcome::Failed(PublishFailure::Full, why) => {
                    shard.full.store(true, Ordering::Release);
                    Some(Err(AppendError::Full(why)))
                }
                Outcome::Failed(PublishFailure::Fatal, why) => {
                    Some(Err(AppendError::Unavailable(why)))
                }
                Outcome::Failed(PublishFailure::Retry, why) => {
                    retry.push(at);
                    Some(Err(AppendError::Unavailable(why)))
                }
            };
        }
        // A record stored after a failed one: retrying the failed one would store it after.
        let last_stored = results.iter().rposition(|r| matches!(r, Some(Ok(_))));
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
    (group.iter().zip(results))
        .map(|(record, result)| (record.index, result.expect("answered")))
        .collect()
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
