//! What the uploader keeps so that a replay skips what was delivered: per buffer key, the
//! position of the last record delivered ([`Markers`]), and the order in which markers and
//! checkpoint are made durable ([`Progress`]).

use std::collections::HashMap;

use super::buffers::{BufferKey, Pos, Unit, PARTITIONING_FAILED};
use super::error_output::output_type;
use crate::log::{self, MarkerKey};
use crate::naming::Partition;

/// Per buffer key, the position of the last record delivered: what a replay skips.
///
/// The log stores them with the checkpoint (`ShardLease::commit`), written *before* the
/// checkpoint moves, so a crash between the two leaves markers that are newer than the
/// checkpoint (harmless: they only skip delivered records), never older.
#[derive(Debug, Default, Clone)]
pub struct Markers {
    delivered: HashMap<BufferKey, Pos>,
    /// Highest marked sequence number: records past it need no lookup.
    max_seq: Option<u64>,
}

impl Markers {
    /// The markers the log stored. Error-output types this version does not write are left
    /// out (their buffers never come back).
    pub fn from_log(stored: &log::Markers) -> Markers {
        let mut markers = Markers::default();
        for (key, pos) in stored {
            let key = match key {
                MarkerKey::Partition { query, lambda } => {
                    BufferKey::Data(Partition { query: query.clone(), lambda: lambda.clone() })
                }
                MarkerKey::Errors(kind) => match known_output_type(kind) {
                    Some(kind) => BufferKey::Errors(kind),
                    None => continue,
                },
            };
            markers.record(key, *pos);
        }
        markers
    }

    /// The markers as the log stores them.
    pub fn to_log(&self) -> log::Markers {
        self.delivered
            .iter()
            .map(|(key, pos)| {
                let key = match key {
                    BufferKey::Data(p) => {
                        MarkerKey::Partition { query: p.query.clone(), lambda: p.lambda.clone() }
                    }
                    BufferKey::Errors(kind) => MarkerKey::Errors(kind.to_string()),
                };
                (key, *pos)
            })
            .collect()
    }

    /// Notes that everything of `key` up to `pos` is delivered.
    pub fn record(&mut self, key: BufferKey, pos: Pos) {
        self.max_seq = self.max_seq.max(Some(pos.seq));
        self.delivered.insert(key, pos);
    }

    /// Whether `pos` of `key` is delivered.
    pub fn covers(&self, key: &BufferKey, pos: Pos) -> bool {
        match self.max_seq {
            Some(max) if pos.seq <= max => self.delivered.get(key).is_some_and(|&m| pos <= m),
            _ => false,
        }
    }

    /// Drops the markers a replay from `checkpoint` cannot need: they cover only records
    /// before it, which the replay never reads.
    fn prune(&mut self, checkpoint: u64) {
        self.delivered.retain(|_, pos| pos.seq >= checkpoint);
        self.max_seq = self.delivered.values().map(|p| p.seq).max();
    }
}

fn known_output_type(kind: &str) -> Option<&'static str> {
    [
        output_type::PROCESSING_FAILED,
        output_type::FORMAT_CONVERSION_FAILED,
        output_type::DECOMPRESSION_FAILED,
        PARTITIONING_FAILED,
    ]
    .into_iter()
    .find(|k| *k == kind)
}

/// The uploader's bookkeeping: after each delivered object, what must be made durable, in
/// order (markers first, then the checkpoint), so that a crash anywhere replays into exactly
/// the objects already delivered.
pub struct Progress {
    markers: Markers,
    checkpoint: u64,
}

/// What one delivery changes on disk.
pub struct Step {
    /// Markers to store (already pruned for the checkpoint that is durable now).
    pub markers: Option<Markers>,
    /// The checkpoint to store after them.
    pub checkpoint: Option<u64>,
}

impl Progress {
    pub fn new(markers: Markers, checkpoint: u64) -> Self {
        Self { markers, checkpoint }
    }

    /// The latest checkpoint handed out.
    pub fn checkpoint(&self) -> u64 {
        self.checkpoint
    }

    /// `unit` is delivered (and every unit sealed before it).
    pub fn delivered(&mut self, unit: &Unit) -> Step {
        // A replay reads this object's last record again only if the checkpoint stays at or
        // below it; only then must the replay learn that the record is delivered.
        let markers = (unit.last.seq >= unit.checkpoint_after).then(|| {
            self.markers.record(unit.key.clone(), unit.last);
            // Prune by the checkpoint that is durable now, not the one about to be stored: a
            // crash between the two writes must still find every marker it needs.
            self.markers.prune(self.checkpoint);
            self.markers.clone()
        });
        let checkpoint = (unit.checkpoint_after > self.checkpoint).then(|| {
            self.checkpoint = unit.checkpoint_after;
            unit.checkpoint_after
        });
        Step { markers, checkpoint }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn partition(p: u8) -> Partition {
        Partition { query: BTreeMap::from([("k".into(), p.to_string())]), lambda: BTreeMap::new() }
    }

    #[test]
    fn markers_go_to_the_log_and_back_and_unknown_error_types_are_left_out() {
        let mut markers = Markers::default();
        markers.record(BufferKey::Data(partition(3)), Pos { seq: 10, sub: 2 });
        markers.record(BufferKey::Errors(PARTITIONING_FAILED), Pos { seq: 11, sub: 0 });
        let mut stored = markers.to_log();
        assert_eq!(stored.len(), 2);
        stored
            .insert(log::MarkerKey::Errors("from-a-later-version".into()), Pos { seq: 12, sub: 0 });
        let back = Markers::from_log(&stored);
        assert_eq!(back.max_seq, Some(11));
        assert!(back.covers(&BufferKey::Data(partition(3)), Pos { seq: 10, sub: 2 }));
        assert!(!back.covers(&BufferKey::Data(partition(3)), Pos { seq: 10, sub: 3 }));
        assert!(!back.covers(&BufferKey::Data(partition(4)), Pos { seq: 1, sub: 0 }));
        assert!(back.covers(&BufferKey::Errors(PARTITIONING_FAILED), Pos { seq: 5, sub: 0 }));
        assert_eq!(back.to_log(), markers.to_log());
    }
}
