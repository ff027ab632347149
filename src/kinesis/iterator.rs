//! Shard iterators: where a `GetRecords` reads next, as an opaque token the client hands back.
//! The server keeps nothing per iterator, so any number of consumers cost nothing between
//! calls; the token is base64 (URL-safe, no padding) of a small JSON object. Like AWS's, a
//! token expires 5 minutes after it was made.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::log::ShardId;

/// How long an iterator may be used (Kinesis: 5 minutes).
pub const ITERATOR_LIFETIME_MS: i64 = 5 * 60 * 1000;
/// Longest token Kinesis accepts (`ShardIterator` is 1..=512 characters).
pub const MAX_TOKEN_CHARS: usize = 512;

/// A position in one shard of one stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardIterator {
    /// The stream's name, and when it was created: an iterator of a deleted stream does not
    /// read a new stream of the same name.
    #[serde(rename = "n")]
    pub stream: String,
    #[serde(rename = "c")]
    pub created_ms: i64,
    #[serde(rename = "s")]
    pub shard: u32,
    /// The next position to read.
    #[serde(rename = "p")]
    pub position: u64,
    /// `AT_TIMESTAMP`: records that arrived before this are skipped.
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub not_before_ms: Option<i64>,
    #[serde(rename = "e")]
    pub expires_ms: i64,
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IteratorError {
    #[error("the shard iterator is not one this server made")]
    Invalid,
    #[error("the shard iterator expired {0} ms ago; iterators last 5 minutes, get a new one with GetShardIterator")]
    Expired(i64),
}

impl ShardIterator {
    pub fn shard_id(&self) -> ShardId {
        ShardId(self.shard)
    }

    /// The same iterator at `position`, valid for another 5 minutes from `now_ms`.
    pub fn moved_to(&self, position: u64, now_ms: i64) -> Self {
        Self { position, expires_ms: now_ms + ITERATOR_LIFETIME_MS, ..self.clone() }
    }

    pub fn token(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("plain fields serialize"))
    }

    /// The iterator of `token`, if it has not expired at `now_ms`.
    pub fn parse(token: &str, now_ms: i64) -> Result<Self, IteratorError> {
        let json = URL_SAFE_NO_PAD.decode(token).map_err(|_| IteratorError::Invalid)?;
        let iterator: Self = serde_json::from_slice(&json).map_err(|_| IteratorError::Invalid)?;
        if now_ms > iterator.expires_ms {
            return Err(IteratorError::Expired(now_ms - iterator.expires_ms));
        }
        Ok(iterator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iterator() -> ShardIterator {
        ShardIterator {
            stream: "s".repeat(128),
            created_ms: 1_700_000_000_000,
            shard: u32::MAX,
            position: u64::MAX,
            not_before_ms: Some(1_700_000_000_000),
            expires_ms: 1_700_000_300_000,
        }
    }

    #[test]
    fn a_token_reads_back_until_it_expires() {
        let it = iterator();
        let token = it.token();
        assert!(token.len() <= MAX_TOKEN_CHARS, "{} characters", token.len());
        assert_eq!(ShardIterator::parse(&token, it.expires_ms), Ok(it.clone()));
        assert_eq!(ShardIterator::parse(&token, it.expires_ms + 7), Err(IteratorError::Expired(7)));
    }

    #[test]
    fn other_tokens_are_invalid() {
        for token in ["", "abc", "AAAA", &URL_SAFE_NO_PAD.encode(b"{\"n\":\"x\"}")] {
            assert_eq!(ShardIterator::parse(token, 0), Err(IteratorError::Invalid), "{token}");
        }
    }

    #[test]
    fn a_moved_iterator_lasts_another_five_minutes() {
        let moved = iterator().moved_to(9, 1_000);
        assert_eq!((moved.position, moved.expires_ms), (9, 1_000 + ITERATOR_LIFETIME_MS));
    }
}
