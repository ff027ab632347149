//! Unit tests of `lease.rs`: the stored record.
use super::*;

fn partition(value: &str) -> MarkerKey {
    MarkerKey::Partition {
        query: BTreeMap::from([("k".to_string(), value.to_string())]),
        lambda: BTreeMap::new(),
    }
}

#[test]
fn progress_reads_back_as_it_was_stored() {
    let markers = BTreeMap::from([
        (partition("a"), Position { seq: 4, sub: 2 }),
        (MarkerKey::Errors("processing-failed".into()), Position { seq: 5, sub: 0 }),
    ]);
    let mut stored = Stored { next_seq: Some(3), ..Default::default() };
    stored.set_markers(&markers);
    let json = serde_json::to_vec(&stored).unwrap();
    let back = parse("k", &json).unwrap();
    assert_eq!(back.state(), ConsumerState { next_seq: 3, markers });
}

#[test]
fn markers_at_or_past_the_end_are_lowered_below_it() {
    let markers = BTreeMap::from([
        (partition("in"), Position { seq: 3, sub: 1 }),
        (partition("past"), Position { seq: 9, sub: 2 }),
        (partition("end"), Position { seq: 5, sub: 0 }),
    ]);
    let mut stored = Stored { next_seq: Some(1), ..Default::default() };
    stored.set_markers(&markers);
    assert!(stored.lower_markers(5));
    let lowered = Position { seq: 4, sub: u32::MAX };
    assert_eq!(
        stored.state().markers,
        BTreeMap::from([
            (partition("in"), Position { seq: 3, sub: 1 }),
            (partition("past"), lowered),
            (partition("end"), lowered),
        ])
    );
    assert!(!stored.lower_markers(5), "nothing more to lower");
    assert!(stored.lower_markers(1), "an empty shard keeps no markers");
    assert!(stored.markers.is_empty());
}
