//! A log's shards over time, Kinesis-style: each shard is an immutable hash-key range with its
//! parents; a split closes one open shard and opens two that share its range, a merge closes
//! two adjacent open shards and opens one over both. The open shards cover the 128-bit space
//! exactly once after every change. Pure data and rules, shared by every log that reshards;
//! where the shards' records live is the log's business.

use serde::{Deserialize, Serialize};

use super::{HashRange, ReshardError, ShardId, ShardInfo, ShardState, StreamLog};

/// A reshard a log is asked for ([`StreamLog::reshard`](super::StreamLog::reshard)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reshard {
    /// Splits `shard` in two: the first child takes `[start, at)`, the second `[at, end]`.
    Split { shard: ShardId, at: u128 },
    /// Merges two adjacent open shards into one; `shard` is the child's `parent`, `adjacent`
    /// its `adjacent_parent`.
    Merge { shard: ShardId, adjacent: ShardId },
}

impl Reshard {
    /// The shards this change closes.
    pub fn closes(&self) -> Vec<ShardId> {
        match *self {
            Reshard::Split { shard, .. } => vec![shard],
            Reshard::Merge { shard, adjacent } => vec![shard, adjacent],
        }
    }
}

/// Every shard a log ever had, indexed by id (ids are dense: a new shard gets the next one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lineage {
    shards: Vec<ShardInfo>,
}

impl Lineage {
    /// `n` open shards, each an equal part of the space ([`ShardInfo::fixed`]).
    pub fn fixed(n: u32) -> Self {
        Self { shards: ShardInfo::fixed(n) }
    }

    /// Shards as stored; `None` unless ids are dense from 0 and the open ones tile the space.
    pub fn from_shards(shards: Vec<ShardInfo>) -> Option<Self> {
        let lineage = Self { shards };
        let dense = lineage.shards.iter().enumerate().all(|(i, s)| s.id.0 as usize == i);
        (dense && lineage.tiles()).then_some(lineage)
    }

    pub fn shards(&self) -> &[ShardInfo] {
        &self.shards
    }

    pub fn get(&self, id: ShardId) -> Option<&ShardInfo> {
        self.shards.get(id.0 as usize)
    }

    /// Whether any shard was ever split or merged.
    pub fn resharded(&self) -> bool {
        self.shards.iter().any(|s| s.parent.is_some())
    }

    /// The open shards, by hash-key start.
    pub fn open(&self) -> Vec<&ShardInfo> {
        let mut open: Vec<_> = self.shards.iter().filter(|s| s.state == ShardState::Open).collect();
        open.sort_by_key(|s| s.hash_range.start);
        open
    }

    /// The open shard whose range holds `key` (the open shards tile the space, so one does).
    pub fn route(&self, key: u128) -> ShardId {
        let open = self.open();
        let i = open.partition_point(|s| s.hash_range.start <= key);
        open[i - 1].id
    }

    /// Applies `change`, closing each shard it closes at its `ends` (the shard's end position,
    /// in the order of [`Reshard::closes`]); returns the new shards' ids. Checks Kinesis' rules
    /// first and changes nothing when one fails.
    pub fn apply(&mut self, change: Reshard, ends: &[u64]) -> Result<Vec<ShardId>, ReshardError> {
        let next = ShardId(self.shards.len() as u32);
        let children = match change {
            Reshard::Split { shard, at } => {
                let range = self.open_range(shard)?;
                if at <= range.start || at > range.end {
                    return Err(ReshardError::SplitOutside { shard, at, range });
                }
                let parent = Some(shard);
                vec![
                    self.child(next, range.start, at - 1, parent, None),
                    self.child(ShardId(next.0 + 1), at, range.end, parent, None),
                ]
            }
            Reshard::Merge { shard, adjacent } => {
                let (a, b) = (self.open_range(shard)?, self.open_range(adjacent)?);
                let (low, high) = if a.start < b.start { (a, b) } else { (b, a) };
                if shard == adjacent || low.end.checked_add(1) != Some(high.start) {
                    return Err(ReshardError::NotAdjacent { shard, adjacent });
                }
                vec![self.child(next, low.start, high.end, Some(shard), Some(adjacent))]
            }
        };
        for (closed, end) in change.closes().into_iter().zip(ends) {
            self.shards[closed.0 as usize].state = ShardState::Closed { end: *end };
        }
        let ids = children.iter().map(|c| c.id).collect();
        self.shards.extend(children);
        debug_assert!(self.tiles(), "open shards tile the space after {change:?}");
        Ok(ids)
    }

    /// The children of `shard`: the shards that name it as a parent.
    pub fn children(&self, shard: ShardId) -> Vec<ShardId> {
        (self.shards.iter())
            .filter(|s| s.parent == Some(shard) || s.adjacent_parent == Some(shard))
            .map(|s| s.id)
            .collect()
    }

    fn open_range(&self, shard: ShardId) -> Result<HashRange, ReshardError> {
        let info = self.get(shard).ok_or(ReshardError::UnknownShard(shard))?;
        match info.state {
            ShardState::Open => Ok(info.hash_range),
            ShardState::Closed { .. } => Err(ReshardError::Closed(shard)),
        }
    }

    fn child(
        &self,
        id: ShardId,
        start: u128,
        end: u128,
        parent: Option<ShardId>,
        adjacent_parent: Option<ShardId>,
    ) -> ShardInfo {
        ShardInfo {
            id,
            hash_range: HashRange { start, end },
            parent,
            adjacent_parent,
            state: ShardState::Open,
        }
    }

    /// Whether the open shards cover the space exactly once.
    fn tiles(&self) -> bool {
        let open = self.open();
        let Some(first) = open.first() else { return false };
        first.hash_range.start == 0
            && open.last().is_some_and(|s| s.hash_range.end == u128::MAX)
            && open
                .windows(2)
                .all(|w| w[0].hash_range.end.checked_add(1) == Some(w[1].hash_range.start))
    }
}

/// One shard of a [`Lineage`] as logs store it (the embedded log's `shards.json`, the
/// JetStream log's registry entry). A closed shard's end is not stored: each log knows where
/// a closed shard ends from the shard itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredShard {
    id: u32,
    /// The hash-key range, in decimal (JSON numbers do not hold 128 bits).
    start: String,
    end: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parent: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    adjacent_parent: Option<u32>,
    closed: bool,
}

impl Lineage {
    /// The lineage as it is stored.
    pub fn to_stored(&self) -> Vec<StoredShard> {
        (self.shards.iter())
            .map(|s| StoredShard {
                id: s.id.0,
                start: s.hash_range.start.to_string(),
                end: s.hash_range.end.to_string(),
                parent: s.parent.map(|p| p.0),
                adjacent_parent: s.adjacent_parent.map(|p| p.0),
                closed: s.state != ShardState::Open,
            })
            .collect()
    }

    /// A stored lineage, each closed shard ending where `end_of` says; the error says what is
    /// wrong with it.
    pub fn from_stored(
        stored: &[StoredShard],
        end_of: impl Fn(ShardId) -> u64,
    ) -> Result<Self, String> {
        let key = |text: &str| text.parse::<u128>().map_err(|e| format!("{text:?}: {e}"));
        let mut shards = Vec::with_capacity(stored.len());
        for s in stored {
            let id = ShardId(s.id);
            shards.push(ShardInfo {
                id,
                hash_range: HashRange { start: key(&s.start)?, end: key(&s.end)? },
                parent: s.parent.map(ShardId),
                adjacent_parent: s.adjacent_parent.map(ShardId),
                state: if s.closed {
                    ShardState::Closed { end: end_of(id) }
                } else {
                    ShardState::Open
                },
            });
        }
        Self::from_shards(shards)
            .ok_or_else(|| "its open shards do not cover the hash-key space once".to_string())
    }
}

/// Takes `log` to `target` open shards of equal ranges with [`uniform_scaling`]'s changes;
/// returns how many it made (none when the log has them already). It plans again after every
/// change: on a cluster, another node may scale the same log at the same time, and a change
/// of the old plan that the other node's closed a shard under is planned anew, not failed.
pub async fn scale(log: &dyn StreamLog, target: u32) -> Result<usize, ReshardError> {
    let wanted: Vec<HashRange> = (0..target).map(|i| HashRange::part(i, target)).collect();
    let mut made = 0;
    let mut lost_races = 0;
    loop {
        let lineage = Lineage::from_shards(log.shards()).ok_or(ReshardError::Unsupported)?;
        let open: Vec<HashRange> = lineage.open().iter().map(|s| s.hash_range).collect();
        if open == wanted {
            return Ok(made);
        }
        let Some(&change) = uniform_scaling(&lineage, target).first() else { return Ok(made) };
        match log.reshard(change).await {
            Ok(_) => made += 1,
            Err(ReshardError::Closed(_) | ReshardError::UnknownShard(_)) if lost_races < 10 => {
                lost_races += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The changes that take `lineage`'s open shards to `target` equal parts of the space
/// (Kinesis' `UNIFORM_SCALING`): splits at every part boundary inside an open shard, then
/// merges of the pieces within each part. Apply them in order.
pub fn uniform_scaling(lineage: &Lineage, target: u32) -> Vec<Reshard> {
    let mut plan = lineage.clone();
    let mut changes = Vec::new();
    let boundaries: Vec<u128> = (1..target).map(|i| HashRange::part(i, target).start).collect();
    for shard in lineage.open().into_iter().map(|s| s.id) {
        let mut piece = shard;
        let range = lineage.get(shard).expect("open shard").hash_range;
        for &at in boundaries.iter().filter(|&&b| range.start < b && b <= range.end) {
            let change = Reshard::Split { shard: piece, at };
            let children = plan.apply(change, &[0]).expect("a boundary inside an open shard");
            changes.push(change);
            piece = children[1];
        }
    }
    for part in (0..target).map(|i| HashRange::part(i, target)) {
        loop {
            let inside: Vec<ShardId> = (plan.open().into_iter())
                .filter(|s| part.start <= s.hash_range.start && s.hash_range.end <= part.end)
                .map(|s| s.id)
                .collect();
            let [first, second, ..] = inside[..] else { break };
            let change = Reshard::Merge { shard: first, adjacent: second };
            plan.apply(change, &[0, 0]).expect("neighbours inside one part");
            changes.push(change);
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(lineage: &Lineage) -> Vec<HashRange> {
        lineage.open().into_iter().map(|s| s.hash_range).collect()
    }

    #[test]
    fn a_split_closes_the_parent_and_its_children_share_its_range() {
        let mut lineage = Lineage::fixed(2);
        let at = 1u128 << 100;
        let children = lineage.apply(Reshard::Split { shard: ShardId(0), at }, &[7]).unwrap();
        assert_eq!(children, vec![ShardId(2), ShardId(3)]);
        assert_eq!(lineage.get(ShardId(0)).unwrap().state, ShardState::Closed { end: 7 });
        assert_eq!(
            lineage.get(ShardId(2)).unwrap().hash_range,
            HashRange { start: 0, end: at - 1 }
        );
        assert_eq!(lineage.get(ShardId(3)).unwrap().parent, Some(ShardId(0)));
        assert_eq!(lineage.route(at - 1), ShardId(2));
        assert_eq!(lineage.route(at), ShardId(3));
        assert_eq!(lineage.route(u128::MAX), ShardId(1));
        assert_eq!(lineage.children(ShardId(0)), children);
    }

    #[test]
    fn kinesis_rules_refuse_and_change_nothing() {
        let mut lineage = Lineage::fixed(3);
        let before = lineage.clone();
        let start = lineage.get(ShardId(1)).unwrap().hash_range.start;
        for change in [
            Reshard::Split { shard: ShardId(1), at: start },
            Reshard::Split { shard: ShardId(1), at: 0 },
            Reshard::Split { shard: ShardId(9), at: 5 },
            Reshard::Merge { shard: ShardId(0), adjacent: ShardId(2) },
            Reshard::Merge { shard: ShardId(1), adjacent: ShardId(1) },
        ] {
            assert!(lineage.apply(change, &[0, 0]).is_err(), "{change:?}");
            assert_eq!(lineage, before);
        }
        lineage.apply(Reshard::Merge { shard: ShardId(2), adjacent: ShardId(1) }, &[1, 2]).unwrap();
        let merged = lineage.get(ShardId(3)).unwrap();
        assert_eq!((merged.parent, merged.adjacent_parent), (Some(ShardId(2)), Some(ShardId(1))));
        let closed = lineage.apply(Reshard::Split { shard: ShardId(1), at: start + 1 }, &[0]);
        assert!(matches!(closed, Err(ReshardError::Closed(ShardId(1)))), "{closed:?}");
    }

    #[test]
    fn uniform_scaling_reaches_equal_parts_from_any_shape() {
        for (from, to) in [(1, 2), (2, 1), (3, 5), (5, 3), (4, 8), (8, 4), (3, 3), (7, 13)] {
            let mut lineage = Lineage::fixed(from);
            // An uneven start: split the first shard off-centre.
            lineage.apply(Reshard::Split { shard: ShardId(0), at: 12345 }, &[0]).unwrap();
            for change in uniform_scaling(&lineage, to) {
                let ends = vec![0; change.closes().len()];
                lineage.apply(change, &ends).unwrap();
            }
            let expected: Vec<HashRange> = (0..to).map(|i| HashRange::part(i, to)).collect();
            assert_eq!(ranges(&lineage), expected, "{from} -> {to}");
        }
    }

    #[test]
    fn stored_shards_that_do_not_tile_are_refused() {
        let mut shards = ShardInfo::fixed(2);
        assert!(Lineage::from_shards(shards.clone()).is_some());
        shards[1].hash_range.start += 1;
        assert!(Lineage::from_shards(shards).is_none());
    }
}
