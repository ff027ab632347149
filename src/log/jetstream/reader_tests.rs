//! Unit tests of `reader.rs`: the queue.
use super::*;

#[test]
fn entries_before_the_position_are_skipped_and_their_bytes_released() {
    let mut state = QueueState::default();
    for seq in 1..=3 {
        let record = Record { seq, arrival_ms: 0, data: Bytes::from_static(b"abc") };
        state.items.push_back(Item::Entry { entry: Entry::Record(record), bytes: 3 });
        state.bytes += 3;
    }
    state.skip_before(3);
    assert_eq!((state.items.len(), state.bytes), (1, 3));
}
