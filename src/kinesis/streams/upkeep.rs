//! The streams' upkeep, on one task: the on-demand scaler every tick and retention every
//! minute ([`super::super::on_demand`], [`super::super::retention`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use super::{KinesisStreams, StreamMode};
use crate::kinesis::on_demand::{self, Decision, Scaler};
use crate::kinesis::retention::{self, Retention};
use crate::log::ShardInfo;

impl KinesisStreams {
    /// Starts the streams' upkeep: the on-demand scaler ([`super::on_demand`]) every tick, in
    /// which each `ON_DEMAND` stream may split a hot shard or merge two cold ones (`report`
    /// hears each change made), and retention ([`super::retention`]) every minute. It stops at
    /// [`close`](Self::close) or when the streams are dropped.
    pub fn start_upkeep(self: &Arc<Self>, report: on_demand::Report) {
        let streams = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            let mut scalers: BTreeMap<String, Scaler> = BTreeMap::new();
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
                streams.scale_on_demand(&mut scalers, elapsed, report.as_ref()).await;
                if last_retention.elapsed() >= retention::EVERY {
                    last_retention = Instant::now();
                    streams.expire(&mut retentions, crate::clock::now_ms()).await;
                }
            }
        });
        *self.scaler.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
    }

    /// Lets go of each stream's records older than its retention period.
    async fn expire(&self, retentions: &mut BTreeMap<(String, i64), Retention>, now_ms: i64) {
        let streams = self.all();
        retentions.retain(|(name, created), _| {
            streams.iter().any(|s| &s.name == name && s.created_ms == *created)
        });
        for stream in streams {
            let key = (stream.name.clone(), stream.created_ms);
            if !retentions.contains_key(&key) {
                match Retention::new(stream.log.as_ref()) {
                    Ok(r) => drop(retentions.insert(key.clone(), r)),
                    Err(e) => {
                        tracing::warn!(stream = %stream.name, error = %e, "cannot start retention");
                        continue;
                    }
                }
            }
            let period_ms = i64::from(stream.settings().retention_hours) * 3_600_000;
            let retention = retentions.get_mut(&key).expect("inserted above");
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
        scalers: &mut BTreeMap<String, Scaler>,
        elapsed: std::time::Duration,
        report: &(dyn Fn(&str, &Decision) + Send + Sync),
    ) {
        let streams = self.all();
        scalers.retain(|name, _| streams.iter().any(|s| &s.name == name));
        for stream in streams {
            let writes = stream.take_writes();
            if stream.settings().mode != StreamMode::OnDemand {
                scalers.remove(&stream.name);
                continue;
            }
            let mut open = stream.open_shards();
            open.sort_by_key(|s| s.hash_range.start);
            let loads: Vec<(ShardInfo, f64)> = (open.into_iter())
                .map(|s| {
                    let (records, bytes) = writes.get(&s.id).copied().unwrap_or_default();
                    (s, on_demand::share(records, bytes, elapsed))
                })
                .collect();
            let may_grow = self.check_shard_limits(&stream.name, loads.len() as u32 + 1).is_ok();
            let scaler = scalers.entry(stream.name.clone()).or_default();
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
