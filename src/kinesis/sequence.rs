//! Kinesis sequence numbers: decimal strings of up to 56 digits that strictly increase within a
//! shard. Hydrant's is the shard's log position and the shard id, so a sequence number names
//! the one record it was given to, and a reader can start from it without a lookup:
//!
//! ```text
//! 49 * 10^54  +  shard << 64  +  position        (always 56 digits, as AWS's are)
//! ```
//!
//! The leading `49` is what AWS's numbers start with today; tools that sort them as strings or
//! check their length keep working.

use std::fmt;

use crate::log::ShardId;

/// The first 18 digits of every sequence number: 49 * 10^54 does not fit a u128, so the number
/// is written as this text and [`LOW_DIGITS`] digits of shard and position.
const PREFIX: &str = "490000000000000000";
/// 2^96 < 10^29: the shard and position always fit, and never carry into the prefix.
const LOW_DIGITS: usize = 38;

/// A record's place in a Kinesis stream: its shard and its position in the shard's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SequenceNumber {
    pub shard: ShardId,
    pub position: u64,
}

impl SequenceNumber {
    pub fn new(shard: ShardId, position: u64) -> Self {
        Self { shard, position }
    }

    /// Parses a sequence number this server gave; `None` for any other text.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != PREFIX.len() + LOW_DIGITS || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let low: u128 = text.strip_prefix(PREFIX)?.parse().ok()?;
        let shard = u32::try_from(low >> 64).ok()?;
        Some(Self { shard: ShardId(shard), position: low as u64 })
    }

    fn low(&self) -> u128 {
        ((self.shard.0 as u128) << 64) | self.position as u128
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{:0width$}", self.low(), width = LOW_DIGITS)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_sequence_number_has_56_digits_and_starts_with_49() {
        let text = SequenceNumber::new(ShardId(0), 0).to_string();
        assert_eq!(text.len(), 56);
        assert!(text.starts_with("49"));
        let largest = SequenceNumber::new(ShardId(u32::MAX), u64::MAX).to_string();
        assert_eq!(largest.len(), 56);
    }

    #[test]
    fn other_texts_are_not_sequence_numbers() {
        for text in ["", "49", "abc", &"9".repeat(56), &"4".repeat(57)] {
            assert_eq!(SequenceNumber::parse(text), None, "{text}");
        }
        // Digits that would name a shard above u32::MAX.
        let too_high = format!("490000000000000000{:038}", 1u128 << 96);
        assert_eq!(SequenceNumber::parse(&too_high), None);
    }

    proptest! {
        #[test]
        fn sequence_numbers_round_trip_and_increase_with_the_position(
            shard in any::<u32>(), a in any::<u64>(), b in any::<u64>()
        ) {
            let (x, y) = (SequenceNumber::new(ShardId(shard), a), SequenceNumber::new(ShardId(shard), b));
            prop_assert_eq!(SequenceNumber::parse(&x.to_string()), Some(x));
            // Kinesis compares sequence numbers as numbers; equal lengths make that the
            // string order too.
            prop_assert_eq!(a.cmp(&b), x.to_string().cmp(&y.to_string()));
        }
    }
}
