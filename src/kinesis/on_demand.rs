//! On-demand capacity: a stream in `ON_DEMAND` mode splits a shard whose write rate stays high
//! and merges two neighbours that stay cold, as Kinesis' on-demand mode does on its own.
//!
//! Every [`TICK`] the scaler takes each open shard's writes since the last tick (records and
//! bytes admitted, [`super::KinesisStream::admit`]) as a share of the shard's limits
//! (1,000 records and 1 MiB a second). A shard above [`HOT_SHARE`] for [`HOT_TICKS`] ticks in
//! a row splits at the middle of its range; two adjacent shards both below [`COLD_SHARE`] for
//! [`COLD_TICKS`] ticks merge. Hysteresis: the hot threshold is five times the cold one, so
//! a merged shard (under twice the cold share) is far from hot, and the two halves of a split
//! shard (about half its load each) are far from cold unless its load fell; one change a
//! stream per tick. Bounded by `limits.max_shards_per_stream`
//! and `limits.max_shards` (a split they refuse waits) and [`MIN_SHARDS`].

use std::collections::BTreeMap;
use std::time::Duration;

use crate::log::{Reshard, ShardId, ShardInfo};

/// How often the scaler looks at the streams.
pub const TICK: Duration = Duration::from_secs(5);
/// A shard busier than this share of its limits is hot.
pub const HOT_SHARE: f64 = 0.5;
/// Hot this many ticks in a row: split.
pub const HOT_TICKS: u32 = 2;
/// A shard below this share of its limits is cold.
pub const COLD_SHARE: f64 = 0.1;
/// Two neighbours cold this many ticks in a row: merge.
pub const COLD_TICKS: u32 = 6;
/// An on-demand stream never merges below this many open shards.
pub const MIN_SHARDS: u32 = 1;
/// Open shards of a new on-demand stream (AWS starts with 4).
pub const INITIAL_SHARDS: u32 = 4;

/// Hears each change the scaler made, with the stream's name (the server counts them).
pub type Report = std::sync::Arc<dyn Fn(&str, &Decision) + Send + Sync>;

/// What one tick decided for a stream, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub change: Reshard,
    /// `hot` or `cold`: the label of `hydrant_kinesis_reshards_total{reason}`.
    pub reason: &'static str,
    /// For the log: the shares that decided it.
    pub detail: String,
}

/// One stream's memory between ticks: how long each shard has been hot or cold.
#[derive(Debug, Default)]
pub struct Scaler {
    hot: BTreeMap<ShardId, u32>,
    cold: BTreeMap<ShardId, u32>,
}

impl Scaler {
    /// Takes this tick's load of each open shard (`open` by hash-key start, each with its
    /// busiest share of the limits) and decides at most one change.
    pub fn tick(&mut self, open: &[(ShardInfo, f64)], may_grow: bool) -> Option<Decision> {
        let count = |streaks: &mut BTreeMap<ShardId, u32>, id: ShardId, now: bool| {
            let streak = streaks.entry(id).or_default();
            *streak = if now { *streak + 1 } else { 0 };
            *streak
        };
        let mut hottest: Option<(&ShardInfo, f64)> = None;
        for (info, share) in open {
            let hot = count(&mut self.hot, info.id, *share > HOT_SHARE);
            count(&mut self.cold, info.id, *share < COLD_SHARE);
            if hot >= HOT_TICKS && hottest.is_none_or(|(_, s)| *share > s) {
                hottest = Some((info, *share));
            }
        }
        // Shards that closed are forgotten.
        let ids: Vec<ShardId> = open.iter().map(|(s, _)| s.id).collect();
        self.hot.retain(|id, _| ids.contains(id));
        self.cold.retain(|id, _| ids.contains(id));
        if let (Some((info, share)), true) = (hottest, may_grow) {
            let range = info.hash_range;
            let at = range.start + (range.end - range.start) / 2 + 1;
            return Some(Decision {
                change: Reshard::Split { shard: info.id, at },
                reason: "hot",
                detail: format!(
                    "{:.0}% of its limits for {HOT_TICKS} ticks of {}s",
                    share * 100.0,
                    TICK.as_secs()
                ),
            });
        }
        if (open.len() as u32) <= MIN_SHARDS {
            return None;
        }
        let cold = |id: ShardId| self.cold.get(&id).is_some_and(|n| *n >= COLD_TICKS);
        let pair = open.windows(2).find(|w| cold(w[0].0.id) && cold(w[1].0.id))?;
        let (a, b) = (&pair[0], &pair[1]);
        self.cold.remove(&a.0.id);
        self.cold.remove(&b.0.id);
        Some(Decision {
            change: Reshard::Merge { shard: a.0.id, adjacent: b.0.id },
            reason: "cold",
            detail: format!(
                "{:.0}% and {:.0}% of their limits for {COLD_TICKS} ticks of {}s",
                a.1 * 100.0,
                b.1 * 100.0,
                TICK.as_secs()
            ),
        })
    }
}

/// The busier of a shard's record and byte shares of its limits over `elapsed`.
pub fn share(records: u64, bytes: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64().max(0.001);
    let records = records as f64 / seconds / super::throughput::RECORDS_PER_SECOND;
    let bytes = bytes as f64 / seconds / super::throughput::BYTES_PER_SECOND;
    records.max(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shards(loads: &[f64]) -> Vec<(ShardInfo, f64)> {
        ShardInfo::fixed(loads.len() as u32).into_iter().zip(loads.iter().copied()).collect()
    }

    #[test]
    fn a_shard_hot_for_long_enough_splits_at_its_middle() {
        let mut scaler = Scaler::default();
        assert_eq!(scaler.tick(&shards(&[0.9, 0.2]), true), None, "one hot tick is not enough");
        let decision = scaler.tick(&shards(&[0.9, 0.2]), true).expect("splits");
        let Reshard::Split { shard, at } = decision.change else { panic!("{decision:?}") };
        assert_eq!((shard, at), (ShardId(0), 1u128 << 126));
        assert_eq!(decision.reason, "hot");
        // A dip resets the streak.
        let mut scaler = Scaler::default();
        scaler.tick(&shards(&[0.9]), true);
        scaler.tick(&shards(&[0.3]), true);
        assert_eq!(scaler.tick(&shards(&[0.9]), true), None);
        // Limits that refuse growth hold the split back.
        let mut scaler = Scaler::default();
        scaler.tick(&shards(&[0.9]), false);
        assert_eq!(scaler.tick(&shards(&[0.9]), false), None);
    }

    #[test]
    fn two_neighbours_cold_for_long_enough_merge_and_a_lone_shard_stays() {
        let mut scaler = Scaler::default();
        let load = shards(&[0.01, 0.5, 0.02, 0.0]);
        for _ in 1..COLD_TICKS {
            assert_eq!(scaler.tick(&load, true), None);
        }
        let decision = scaler.tick(&load, true).expect("merges");
        assert_eq!(decision.change, Reshard::Merge { shard: ShardId(2), adjacent: ShardId(3) });
        assert_eq!(decision.reason, "cold");
        let mut scaler = Scaler::default();
        for _ in 0..COLD_TICKS * 2 {
            assert_eq!(scaler.tick(&shards(&[0.0]), true), None, "MIN_SHARDS");
        }
    }

    #[test]
    fn shares_are_of_the_busier_limit() {
        let second = Duration::from_secs(1);
        assert!((share(500, 0, second) - 0.5).abs() < 1e-9);
        assert!((share(10, 1 << 20, second) - 1.0).abs() < 1e-9);
        assert!((share(5000, 0, Duration::from_secs(10)) - 0.5).abs() < 1e-9);
    }
}
