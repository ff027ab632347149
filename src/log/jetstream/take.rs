//! Which leases a node takes in one round (§2.2 of the design), after the Kinesis Client
//! Library's lease taker (`DynamoDBLeaseTaker`): pure functions over what the node observed,
//! so that the rules are tested with a fake clock.
//!
//! - A lease is **expired** when its counter has not changed for a lease duration on *this
//!   node's* clock ([`Table`]): every write bumps the counter, so no clocks are compared across
//!   nodes. Time does not count while this node's own writes fail ([`Table::thaw`]): during an
//!   election of the bucket nobody can renew, and every lease would look expired after it.
//! - **target** = ceil(leases / live nodes); a node takes free or expired leases up to it,
//!   very old ones (unchanged for 3 lease durations) first.
//! - With nothing free or expired and fewer than target, it **steals at most one** lease per
//!   round from the most loaded node, and only from a node above target (or at target while
//!   this node needs more than one), so leases spread without flapping.
//! - A **child** is not taken before every parent is finished ([`Candidate::ready`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use rand::seq::{IndexedRandom, SliceRandom};

/// Very old: unchanged for this many lease durations (the KCL's multiplier).
const VERY_OLD: u32 = 3;

/// Per key, the last counter seen and since when (this node's clock).
#[derive(Debug, Default)]
pub struct Table {
    seen: HashMap<String, (u64, Instant)>,
}

impl Table {
    /// Records that `key`'s counter is `counter` at `now`; the clock restarts when it changed.
    pub fn observe(&mut self, key: &str, counter: u64, now: Instant) {
        match self.seen.get_mut(key) {
            Some((seen, _)) if *seen == counter => {}
            Some(entry) => *entry = (counter, now),
            None => {
                self.seen.insert(key.to_string(), (counter, now));
            }
        }
    }

    pub fn forget(&mut self, key: &str) {
        self.seen.remove(key);
    }

    /// How long `key`'s counter has not changed (zero for a key never seen).
    pub fn unchanged_for(&self, key: &str, now: Instant) -> Duration {
        self.seen
            .get(key)
            .map_or(Duration::ZERO, |(_, since)| now.saturating_duration_since(*since))
    }

    /// This node's writes work again after failing: what passed meanwhile does not count
    /// toward anyone's expiry (nobody could renew), so every clock restarts at `now`.
    pub fn thaw(&mut self, now: Instant) {
        for (_, since) in self.seen.values_mut() {
            *since = now;
        }
    }
}

/// A lease as one round sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub key: String,
    /// Its owner's node id; `None` when released or never owned.
    pub owner: Option<String>,
    /// How long its counter has not changed ([`Table::unchanged_for`]).
    pub unchanged_for: Duration,
    /// Every parent shard is finished (always, for a shard without parents).
    pub ready: bool,
}

/// How a lease is taken, for the log and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Released or never owned.
    Free,
    /// Its owner stopped renewing it.
    Expired,
    /// From a live owner with more than its share.
    Stolen,
}

impl Take {
    pub fn label(self) -> &'static str {
        match self {
            Take::Free => "free",
            Take::Expired => "expired",
            Take::Stolen => "stolen",
        }
    }
}

/// The leases `me` takes this round, and how. `live` are the nodes whose registry key moved
/// within a lease duration (owners of unexpired leases and `me` count as live too).
pub fn choose(
    me: &str,
    leases: &[Candidate],
    live: &BTreeSet<String>,
    duration: Duration,
    rng: &mut impl rand::Rng,
) -> Vec<(String, Take)> {
    if leases.is_empty() {
        return Vec::new();
    }
    let expired = |c: &Candidate| c.unchanged_for >= duration;
    // Unexpired leases per owner (every live node, with or without leases).
    let mut held: BTreeMap<&str, Vec<&Candidate>> = BTreeMap::new();
    for node in live.iter().map(String::as_str).chain([me]) {
        held.entry(node).or_default();
    }
    for c in leases {
        match &c.owner {
            Some(owner) if owner == me || !expired(c) => held.entry(owner).or_default().push(c),
            _ => {}
        }
    }
    let target = leases.len().div_ceil(held.len());
    let mine = held.get(me).map_or(0, Vec::len);
    if mine >= target {
        // Progress before balance: a lease that stayed free for a whole lease duration is one
        // no other node wants (a replay's consumer, which only the node running the replay asks
        // for), so this node takes it whatever its share.
        return (leases.iter())
            .filter(|c| c.ready && c.owner.is_none() && expired(c))
            .map(|c| (c.key.clone(), Take::Free))
            .collect();
    }
    let needed = target - mine;

    let mut available: Vec<&Candidate> = (leases.iter())
        .filter(|c| c.ready && c.owner.as_deref() != Some(me))
        .filter(|c| c.owner.is_none() || expired(c))
        .collect();
    available.shuffle(rng);
    // Very old first (a dead node's leases), then the rest in random order.
    available.sort_by_key(|c| c.unchanged_for < duration * VERY_OLD);
    let how = |c: &Candidate| if c.owner.is_none() { Take::Free } else { Take::Expired };
    if !available.is_empty() {
        return available.into_iter().take(needed).map(|c| (c.key.clone(), how(c))).collect();
    }

    // Steal one from the most loaded node (ties: the first by id, so rounds agree).
    let Some((&victim, theirs)) = (held.iter())
        .filter(|(node, _)| **node != me)
        .max_by_key(|(node, leases)| (leases.len(), std::cmp::Reverse(**node)))
    else {
        return Vec::new();
    };
    let count = theirs.len();
    if count > target || (count == target && needed > 1) {
        let stealable: Vec<&&Candidate> = theirs.iter().filter(|c| c.ready).collect();
        if let Some(c) = stealable.choose(rng) {
            tracing::debug!(from = victim, key = %c.key, "stealing a lease");
            return vec![(c.key.clone(), Take::Stolen)];
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const LEASE: Duration = Duration::from_secs(12);

    fn rng() -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(7)
    }

    fn lease(key: &str, owner: Option<&str>, unchanged_secs: u64) -> Candidate {
        Candidate {
            key: key.into(),
            owner: owner.map(str::to_string),
            unchanged_for: Duration::from_secs(unchanged_secs),
            ready: true,
        }
    }

    fn nodes(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    fn keys(taken: &[(String, Take)]) -> Vec<&str> {
        let mut keys: Vec<&str> = taken.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort();
        keys
    }

    #[test]
    fn the_counter_clock_is_this_nodes_and_restarts_when_the_counter_moves() {
        let start = Instant::now();
        let mut table = Table::default();
        table.observe("l", 5, start);
        table.observe("l", 5, start + Duration::from_secs(4));
        assert_eq!(
            table.unchanged_for("l", start + Duration::from_secs(10)),
            Duration::from_secs(10)
        );
        table.observe("l", 6, start + Duration::from_secs(11));
        assert_eq!(
            table.unchanged_for("l", start + Duration::from_secs(13)),
            Duration::from_secs(2)
        );
        assert_eq!(table.unchanged_for("never", start), Duration::ZERO);
    }

    #[test]
    fn time_while_this_nodes_writes_failed_does_not_count_toward_expiry() {
        let start = Instant::now();
        let mut table = Table::default();
        table.observe("l", 5, start);
        // An election of the bucket: nobody renews for 20 s, then writes work again.
        let back = start + Duration::from_secs(20);
        table.thaw(back);
        assert_eq!(table.unchanged_for("l", back + Duration::from_secs(3)), Duration::from_secs(3));
    }

    #[test]
    fn a_node_takes_free_leases_up_to_its_share() {
        let leases: Vec<_> = (0..5).map(|i| lease(&format!("l{i}"), None, 0)).collect();
        // Alone: all five.
        assert_eq!(choose("a", &leases, &nodes(&[]), LEASE, &mut rng()).len(), 5);
        // With two other live nodes: ceil(5 / 3) = 2.
        let taken = choose("a", &leases, &nodes(&["b", "c"]), LEASE, &mut rng());
        assert_eq!(taken.len(), 2);
        assert!(taken.iter().all(|(_, how)| *how == Take::Free));
        // Holding two already, nothing more.
        let mut held = leases.clone();
        held[0].owner = Some("a".into());
        held[1].owner = Some("a".into());
        assert!(choose("a", &held, &nodes(&["b", "c"]), LEASE, &mut rng()).is_empty());
    }

    #[test]
    fn a_lease_nobody_took_for_a_lease_duration_is_taken_beyond_the_share() {
        // `a` holds its share; one lease of a consumer only `a` wants stayed free.
        let leases = vec![
            lease("a1", Some("a"), 0),
            lease("b1", Some("b"), 0),
            lease("new", None, 3),
            lease("lonely", None, 12),
        ];
        let taken = choose("a", &leases, &nodes(&["b"]), LEASE, &mut rng());
        assert_eq!(taken, vec![("lonely".to_string(), Take::Free)]);
    }

    #[test]
    fn a_lease_whose_counter_stood_still_for_the_lease_duration_is_taken() {
        let leases = vec![
            lease("fresh", Some("b"), 11),
            lease("expired", Some("b"), 12),
            lease("mine", Some("a"), 30),
        ];
        let taken = choose("a", &leases, &nodes(&["b"]), LEASE, &mut rng());
        assert_eq!(taken, vec![("expired".to_string(), Take::Expired)]);
    }

    #[test]
    fn very_old_leases_go_first() {
        // a needs one (target ceil(4 / 2) = 2, holds one): of two expired, the very old one.
        let leases = vec![
            lease("mine", Some("a"), 0),
            lease("expired", Some("dead"), 13),
            lease("very-old", Some("dead"), 40),
            lease("b's", Some("b"), 0),
        ];
        for seed in 0..20 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let taken = choose("a", &leases, &nodes(&["b"]), LEASE, &mut rng);
            assert_eq!(keys(&taken), vec!["very-old"], "seed {seed}");
        }
    }

    #[test]
    fn at_most_one_lease_is_stolen_per_round_from_the_most_loaded_node() {
        // b holds all six, c holds none; a joins: target ceil(6 / 3) = 2, a needs two.
        let leases: Vec<_> = (0..6).map(|i| lease(&format!("l{i}"), Some("b"), 1)).collect();
        let taken = choose("a", &leases, &nodes(&["b", "c"]), LEASE, &mut rng());
        assert_eq!(taken.len(), 1, "{taken:?}");
        assert_eq!(taken[0].1, Take::Stolen);

        // Rounds until nobody moves: the leases end spread 2 / 2 / 2, one move per round each.
        let mut owners: Vec<String> = vec!["b".to_string(); 6];
        let mut rounds = 0;
        loop {
            let mut moved = false;
            for me in ["a", "c", "b"] {
                let view: Vec<_> = (owners.iter().enumerate())
                    .map(|(i, o)| lease(&format!("l{i}"), Some(o), 1))
                    .collect();
                let taken = choose(me, &view, &nodes(&["a", "b", "c"]), LEASE, &mut rng());
                assert!(taken.len() <= 1, "one steal per round: {taken:?}");
                for (key, _) in taken {
                    let i: usize = key[1..].parse().unwrap();
                    owners[i] = me.to_string();
                    moved = true;
                }
            }
            rounds += 1;
            if !moved {
                break;
            }
            assert!(rounds < 10, "leases keep moving: {owners:?}");
        }
        for node in ["a", "b", "c"] {
            assert_eq!(owners.iter().filter(|o| *o == node).count(), 2, "{owners:?}");
        }
    }

    #[test]
    fn no_steal_from_a_node_at_its_share_when_one_more_would_only_move_the_imbalance() {
        // 3 leases, 2 nodes: target 2. b holds 2 (== target), a holds 1 and needs 1: no steal.
        let leases =
            vec![lease("l0", Some("a"), 0), lease("l1", Some("b"), 0), lease("l2", Some("b"), 0)];
        assert!(choose("a", &leases, &nodes(&["b"]), LEASE, &mut rng()).is_empty());
    }

    #[test]
    fn expired_leases_are_taken_before_anything_is_stolen() {
        let leases = vec![
            lease("l0", Some("b"), 0),
            lease("l1", Some("b"), 0),
            lease("l2", Some("b"), 0),
            lease("dead", Some("c"), 20),
        ];
        // c's lease expired, so c is not live: target ceil(4 / 2) = 2, a needs 2, takes the
        // expired one only (no steal in a round that found something available).
        let taken = choose("a", &leases, &nodes(&["b"]), LEASE, &mut rng());
        assert_eq!(taken, vec![("dead".to_string(), Take::Expired)]);
    }

    #[test]
    fn children_wait_for_their_parents() {
        let mut child = lease("child", None, 0);
        child.ready = false;
        let leases = vec![lease("parent", None, 0), child.clone()];
        assert_eq!(keys(&choose("a", &leases, &nodes(&[]), LEASE, &mut rng())), vec!["parent"]);
        child.ready = true;
        let leases = vec![lease("parent", Some("a"), 0), child];
        assert_eq!(keys(&choose("a", &leases, &nodes(&[]), LEASE, &mut rng())), vec!["child"]);
    }

    /// A fake bucket (owner and counter per key) and a fake clock, one round per second: a
    /// and b hold one lease each (their share: nothing to steal); b renews its lease every
    /// 3 s and dies at 10 s; a takes it once its counter stood still for the lease duration on
    /// a's clock, not before. A stretch where a's own
    /// writes fail (an election) does not count.
    #[test]
    fn a_dead_nodes_leases_are_taken_one_lease_duration_after_its_last_renewal() {
        for election in [false, true] {
            let start = Instant::now();
            let mut bucket: BTreeMap<String, (String, u64)> =
                BTreeMap::from([("l0".into(), ("b".into(), 0)), ("l1".into(), ("a".into(), 0))]);
            let mut table = Table::default();
            let mut taken_at = None;
            for second in 0..40u64 {
                let now = start + Duration::from_secs(second);
                if second < 10 && second % 3 == 0 {
                    bucket.get_mut("l0").unwrap().1 += 1;
                }
                // a's writes fail from 15 s to 20 s: it takes nothing, and thaws after.
                let frozen = election && (15..20).contains(&second);
                if election && second == 20 {
                    table.thaw(now);
                }
                for (key, (_, counter)) in &bucket {
                    table.observe(key, *counter, now);
                }
                if frozen {
                    continue;
                }
                let view: Vec<Candidate> = (bucket.iter())
                    .map(|(key, (owner, _))| Candidate {
                        key: key.clone(),
                        owner: Some(owner.clone()),
                        unchanged_for: table.unchanged_for(key, now),
                        ready: true,
                    })
                    .collect();
                let live = if second < 10 { nodes(&["b"]) } else { nodes(&[]) };
                for (key, how) in choose("a", &view, &live, LEASE, &mut rng()) {
                    assert_eq!(how, Take::Expired);
                    let entry = bucket.get_mut(&key).unwrap();
                    *entry = ("a".into(), entry.1 + 1);
                    taken_at.get_or_insert(second);
                }
            }
            // The last renewal was at 9 s.
            let expected = if election { 20 + 12 } else { 9 + 12 };
            assert_eq!(taken_at, Some(expected), "election {election}");
            assert!(bucket.values().all(|(owner, _)| owner == "a"));
        }
    }
}
