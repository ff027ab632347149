//! The streams' upkeep, on one task: the on-demand scaler every tick and retention every
//! minute ([`super::super::on_demand`], [`super::super::retention`]).
//!
//! In a cluster (a shared catalog) every node runs it:
//! - Retention commits through the log's leases, so each node lets go of records in the
//!   shards whose `kinesis-retention` lease it holds: the work is spread, and done once.
//! - The on-demand scaler decides on one node at a time, the holder of the catalog's lead
//!   ([`super::super::catalog::Catalog::lead`]): decisions from every node at once would
//!   split one hot shard several times. It needs the cluster's write rates, and what a node
//!   admitted is only its own part: it takes each shard's records from the log's positions
//!   (`stats().next_seq`, which the JetStream log refreshes from the shard streams' state every
//!   5 s, so they count every node's appends), and their bytes as those records times the
//!   size of the records this node admitted to the shard (a load balancer gives every node the
//!   same mix). A new lead's first look only notes the positions.
//! - Streams removed from the catalog while a node's watch was broken are closed there at the
//!   next minute.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{KinesisStream, KinesisStreams, StreamMode};
use crate::kinesis::on_demand::{self, Decision, Scaler};
use crate::log::retention::{self, Retention};
use crate::log::{ShardId, ShardInfo};

/// A stream's shard positions at the scaler's last look (cluster mode).
#[derive(Debug)]
struct Positions {
    at: Instant,
    next: BTreeMap<ShardId, u64>,
}

/// The scaler's memory between ticks.
#[derive(Debug, Default)]
struct Scaling {
    scalers: BTreeMap<String, Scaler>,
    /// By stream and creation time (cluster mode).
    positions: BTreeMap<(String, i64), Positions>,
}

impl KinesisStreams {
    /// Starts the streams' upkeep: the on-demand scaler ([`super::on_demand`]) every tick, in
    /// which each `ON_DEMAND` stream may split a hot shard or merge two cold ones (`report`
    /// hears each change made), and retention ([`super::retention`]) every minute. It stops at
    /// [`close`](Self::close) or when the streams are dropped.
    pub fn start_upkeep(self: &Arc<Self>, report: on_demand::Report) {
        let streams = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            let mut scaling = Scaling::default();
            let mut retentions: BTreeMap<(String, i64), Retention> = BTreeMap::new();
            let mut ticks = tokio::time::interval(on_demand::TICK);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            let (mut last, mut last_retention) = (Instant::now(), Instant::now());
            loop {
                ticks.tick().await;
                let Some(streams) = streams.upgrade() else { return };
                let elapsed = last.elapsed();
                last = Instant::now();
                streams.scale_on_demand(&mut scaling, elapsed, report.as_ref()).await;
                // Retention holds new streams at once, so that no other consumer's commits
                // let the log delete records before their period ends.
                streams.hold_retention(&mut retentions);
                if last_retention.elapsed() >= retention::EVERY {
                    last_retention = Instant::now();
                    streams.forget_removed().await;
                    streams.expire(&mut retentions, crate::clock::now_ms()).await;
                }
            }
        });
        self.tasks.lock().unwrap_or_else(|e| e.into_inner()).push(task);
    }

    /// Registers retention as a consumer of the streams that do not have it yet, and forgets
    /// the streams that are gone.
    fn hold_retention(&self, retentions: &mut BTreeMap<(String, i64), Retention>) {
        let streams = self.all();
        retentions.retain(|(name, created), _| {
            streams.iter().any(|s| &s.name == name && s.created_ms == *created)
        });
        for stream in streams {
            let key = (stream.name.clone(), stream.created_ms);
            if let std::collections::btree_map::Entry::Vacant(entry) = retentions.entry(key) {
                match Retention::new(stream.log.as_ref()) {
                    Ok(r) => drop(entry.insert(r)),
                    Err(e) => {
                        tracing::warn!(stream = %stream.name, error = %e, "cannot start retention")
                    }
                }
            }
        }
    }

    /// Lets go of each stream's records older than its retention period.
    async fn expire(&self, retentions: &mut BTreeMap<(String, i64), Retention>, now_ms: i64) {
        self.hold_retention(retentions);
        for stream in self.all() {
            let key = (stream.name.clone(), stream.created_ms);
            let Some(retention) = retentions.get_mut(&key) else { continue };
            let period_ms = i64::from(stream.settings().retention_hours) * 3_600_000;
            match retention.expire(stream.log.as_ref(), now_ms - period_ms).await {
                Ok(0) => {}
                Ok(expired) => tracing::info!(stream = %stream.name, expired,
                    "records past the retention period let go"),
                Err(e) => tracing::warn!(stream = %stream.name, error = %e,
                    "retention could not advance; it tries again in a minute"),
            }
        }
    }

    /// One tick of the on-demand scaler.
    async fn scale_on_demand(
        &self,
        scaling: &mut Scaling,
        elapsed: Duration,
        report: &(dyn Fn(&str, &Decision) + Send + Sync),
    ) {
        let streams = self.all();
        // What each shard took here since the last tick (also keeps the counters small).
        let admitted: Vec<_> = streams.iter().map(|s| s.take_writes()).collect();
        let on_demand = streams.iter().any(|s| s.settings().mode == StreamMode::OnDemand);
        if !on_demand || !self.catalog.lead().await {
            // Another node decides (a cluster), or nothing to decide: start afresh when
            // this node decides again.
            *scaling = Scaling::default();
            return;
        }
        scaling.scalers.retain(|name, _| streams.iter().any(|s| &s.name == name));
        scaling.positions.retain(|(name, created), _| {
            streams.iter().any(|s| &s.name == name && s.created_ms == *created)
        });
        for (stream, admitted) in streams.iter().zip(admitted) {
            if stream.settings().mode != StreamMode::OnDemand {
                scaling.scalers.remove(&stream.name);
                continue;
            }
            let (writes, elapsed) = if self.catalog.shared() {
                let key = (stream.name.clone(), stream.created_ms);
                let (now, writes) = stored_writes(stream, &admitted, scaling.positions.get(&key));
                scaling.positions.insert(key, now);
                let Some(writes) = writes else { continue };
                writes
            } else {
                (admitted, elapsed)
            };
            let mut open = stream.open_shards();
            open.sort_by_key(|s| s.hash_range.start);
            let loads: Vec<(ShardInfo, f64)> = (open.into_iter())
                .map(|s| {
                    let (records, bytes) = writes.get(&s.id).copied().unwrap_or_default();
                    (s, on_demand::share(records, bytes, elapsed))
                })
                .collect();
            let may_grow = self.check_shard_limits(&stream.name, loads.len() as u32 + 1).is_ok();
            let scaler = scaling.scalers.entry(stream.name.clone()).or_default();
            let Some(decision) = scaler.tick(&loads, may_grow) else { continue };
            match self.reshard(&stream.name, decision.change).await {
                Ok(children) => {
                    tracing::info!(stream = %stream.name, change = ?decision.change, ?children,
                        reason = decision.reason, detail = %decision.detail,
                        "on-demand stream resharded");
                    report(&stream.name, &decision);
                }
                Err(e) => tracing::warn!(stream = %stream.name, change = ?decision.change,
                    error = %e, "on-demand reshard failed; it is tried again while the load lasts"),
            }
        }
    }
}

/// The records and (estimated) bytes each shard of `stream` stored since `last` (the whole
/// cluster's), from the log's positions and the sizes of what this node `admitted`; `None`
/// on the first look. Returns the positions now too, and the time since `last`.
#[allow(clippy::type_complexity)]
fn stored_writes(
    stream: &KinesisStream,
    admitted: &BTreeMap<ShardId, (u64, u64)>,
    last: Option<&Positions>,
) -> (Positions, Option<(BTreeMap<ShardId, (u64, u64)>, Duration)>) {
    let now = Positions {
        at: Instant::now(),
        next: stream.log.stats().into_iter().map(|s| (s.shard, s.next_seq)).collect(),
    };
    let Some(last) = last else { return (now, None) };
    let writes = (now.next.iter())
        .map(|(shard, next)| {
            let records = next.saturating_sub(last.next.get(shard).copied().unwrap_or(*next));
            let bytes = match admitted.get(shard) {
                Some(&(count, bytes)) if count > 0 => records.saturating_mul(bytes / count),
                _ => 0,
            };
            (*shard, (records, bytes))
        })
        .collect();
    let elapsed = now.at.duration_since(last.at);
    (now, Some((writes, elapsed)))
}
