//! The names the log gives its objects in JetStream (§1.1 of the design): a stream's log is
//! known by an opaque random id, so that a log deleted and made again never meets the old one's
//! streams, and Firehose names (which may hold `.`) never become subjects or stream names.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::log::ShardId;

const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// 64 random bits in lowercase base32 (13 characters).
pub fn random_id() -> String {
    let mut bits: u64 = rand::random();
    let mut out = String::with_capacity(13);
    for _ in 0..13 {
        out.push(BASE32[(bits & 31) as usize] as char);
        bits >>= 5;
    }
    out
}

/// This process's incarnation: fresh random bits at every start, so message ids made from it
/// are unique across nodes and restarts without storing anything.
pub fn incarnation() -> &'static str {
    static INCARNATION: OnceLock<String> = OnceLock::new();
    INCARNATION.get_or_init(random_id)
}

/// A new number, unique within this process.
pub fn next_number() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// `name` as one token of a key-value key: `[A-Za-z0-9_-]` stays, every other byte is `=XX`
/// (`=` is a valid key character and never part of a name that stays), so distinct names give
/// distinct tokens and no token is empty or holds a `.`.
pub fn key_token(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    if out.is_empty() {
        out.push('=');
    }
    out
}

/// The name [`key_token`] made `token` from; `None` for a token it cannot have made.
pub fn key_name(token: &str) -> Option<String> {
    if token == "=" {
        return Some(String::new());
    }
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            let hex = token.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The JetStream stream of one shard.
pub fn stream_name(log_id: &str, shard: ShardId) -> String {
    format!("HYD_{log_id}_{shard}")
}

/// The subject the shard's stream takes.
pub fn subject(log_id: &str, shard: ShardId) -> String {
    format!("hyd.{log_id}.{shard}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_13_base32_characters_and_differ() {
        let (a, b) = (random_id(), random_id());
        assert_eq!(a.len(), 13);
        assert!(a.bytes().all(|c| BASE32.contains(&c)), "{a}");
        assert_ne!(a, b);
        assert_eq!(incarnation(), incarnation());
    }

    #[test]
    fn key_tokens_are_distinct_and_never_hold_a_dot() {
        assert_eq!(key_token("clicks"), "clicks");
        assert_eq!(key_token("a.b"), "a=2Eb");
        assert_eq!(key_token("."), "=2E");
        assert_eq!(key_token(""), "=");
        assert_ne!(key_token("a=2Eb"), key_token("a.b"));
        assert_eq!(key_token("a=2Eb"), "a=3D2Eb");
        for name in ["clicks", "a.b", ".", "", "a=2Eb", "x-y_z.9"] {
            assert_eq!(key_name(&key_token(name)).as_deref(), Some(name), "{name}");
        }
        assert_eq!(key_name("a=4"), None);
    }
}
