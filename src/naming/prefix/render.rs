//! Evaluating a parsed [`PrefixTemplate`] for one object.

use super::{Namespace, PrefixTemplate, Segment};
use crate::naming::java_time::Moment;
use chrono_tz::Tz;
use md5::{Digest, Md5};
use std::collections::BTreeMap;

/// Firehose's limit on the length of an evaluated prefix (semantic rule 6), in characters.
pub const MAX_EVALUATED_PREFIX_CHARS: usize = 512;

/// Length of the value of `!{firehose:random-string}`.
pub const RANDOM_STRING_LEN: usize = 11;

/// Alphabet of `!{firehose:random-string}`.
///
/// Firehose's own alphabet is unconfirmed (the DG example `046b6c7f-0b` looks like a UUID
/// fragment; an emulator uses `[A-Za-z0-9]`). Lowercase letters and digits were chosen because
/// they are safe in every S3-compatible store, in URLs without escaping, in Hive-style partition
/// paths, and on case-insensitive file systems that back some local stores (mixed case could
/// make two distinct keys collide there).
pub const RANDOM_STRING_ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Why a template could not be evaluated for one object.
///
/// With dynamic partitioning, Firehose sends records whose prefix cannot be evaluated to the
/// error output; callers should do the same with these errors rather than fail the batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The record's partition keys do not contain a key the template references.
    #[error("partition key `{key}` required by !{{{namespace}:{key}}} is missing")]
    MissingPartitionKey { namespace: Namespace, key: String },
    /// The template contains `!{firehose:error-output-type}` but no type was given.
    #[error("!{{firehose:error-output-type}} is used but no error output type was given")]
    MissingErrorOutputType,
    /// The evaluated prefix is longer than Firehose allows (semantic rule 6).
    #[error("evaluated prefix is {chars} characters long; at most 512 are allowed")]
    PrefixTooLong { chars: usize },
    /// The arrival time cannot be represented as a calendar date.
    #[error("arrival time {arrival_ms} ms since the epoch is out of range")]
    ArrivalOutOfRange { arrival_ms: i64 },
}

/// Everything a template may need to evaluate its expressions for one object.
#[derive(Debug, Clone, Copy)]
pub struct KeyContext<'a> {
    /// Approximate arrival time of the OLDEST record in the object (epoch ms, UTC). Every
    /// timestamp expression of the prefix shows this one instant.
    pub arrival_ms: i64,
    /// `CustomTimeZone` (UTC by default).
    pub tz: Tz,
    /// Deterministic per batch (see `BatchIdentity::seed`); random-string values derive from it
    /// so that re-delivering a batch rewrites the same key.
    pub seed: [u8; 16],
    /// Value of `!{firehose:error-output-type}`, e.g. `processing-failed`.
    pub error_output_type: Option<&'a str>,
    /// Keys for `!{partitionKeyFromQuery:...}`.
    pub partition_keys_query: Option<&'a BTreeMap<String, String>>,
    /// Keys for `!{partitionKeyFromLambda:...}`.
    pub partition_keys_lambda: Option<&'a BTreeMap<String, String>>,
}

impl PrefixTemplate {
    /// Evaluates the template for one object.
    pub fn render(&self, ctx: &KeyContext<'_>) -> Result<String, RenderError> {
        let mut out = String::with_capacity(self.capacity_hint());
        self.render_into(ctx, &mut out)?;
        Ok(out)
    }

    /// Appends the evaluated template to `out` (so a whole object key is built in one buffer).
    /// On error `out` may hold a partial prefix.
    pub fn render_into(&self, ctx: &KeyContext<'_>, out: &mut String) -> Result<(), RenderError> {
        let moment = moment_at(ctx.arrival_ms, ctx.tz)?;
        self.render_moment(&moment, ctx, out)
    }

    pub(crate) fn render_moment(
        &self,
        moment: &Moment,
        ctx: &KeyContext<'_>,
        out: &mut String,
    ) -> Result<(), RenderError> {
        let start = out.len();
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Timestamp(pattern) => pattern.render_moment(moment, out),
                Segment::RandomString(index) => push_random_string(out, &ctx.seed, *index),
                Segment::ErrorOutputType => {
                    out.push_str(ctx.error_output_type.ok_or(RenderError::MissingErrorOutputType)?)
                }
                Segment::PartitionKey(namespace, key) => {
                    let keys = match namespace {
                        Namespace::PartitionKeyFromLambda => ctx.partition_keys_lambda,
                        _ => ctx.partition_keys_query,
                    };
                    let value = keys.and_then(|k| k.get(&**key)).ok_or_else(|| {
                        RenderError::MissingPartitionKey {
                            namespace: *namespace,
                            key: key.to_string(),
                        }
                    })?;
                    out.push_str(value);
                }
            }
        }
        let rendered = &out[start..];
        // chars <= bytes, so counting is only needed for long prefixes.
        if rendered.len() > MAX_EVALUATED_PREFIX_CHARS {
            let chars = rendered.chars().count();
            if chars > MAX_EVALUATED_PREFIX_CHARS {
                return Err(RenderError::PrefixTooLong { chars });
            }
        }
        Ok(())
    }

    pub(crate) fn capacity_hint(&self) -> usize {
        // Literals plus a generous allowance per expression (a timestamp is usually 4-20 bytes).
        self.literal_len + 24 * self.segments.len()
    }
}

pub(crate) fn moment_at(arrival_ms: i64, tz: Tz) -> Result<Moment, RenderError> {
    Moment::from_epoch_millis(arrival_ms, tz).ok_or(RenderError::ArrivalOutOfRange { arrival_ms })
}

/// Appends the `index`-th random string of a template for a batch `seed`.
///
/// Derivation (a compatibility contract: changing it changes keys of re-delivered batches):
/// `MD5("hydrant/random-string/v1" || seed || index as u32 big-endian)`, read as a big-endian
/// u128, written as 11 base-36 digits (least significant first) over
/// [`RANDOM_STRING_ALPHABET`]. 36^11 is far below 2^128, so the digits are uniform for all
/// practical purposes; the index makes every occurrence in one prefix different.
pub(super) fn push_random_string(out: &mut String, seed: &[u8; 16], index: u32) {
    let mut md5 = Md5::new();
    md5.update(b"hydrant/random-string/v1");
    md5.update(seed);
    md5.update(index.to_be_bytes());
    let mut n = u128::from_be_bytes(md5.finalize().into());
    for _ in 0..RANDOM_STRING_LEN {
        out.push(char::from(RANDOM_STRING_ALPHABET[(n % 36) as usize]));
        n /= 36;
    }
}
