//! Firehose prefix templates: literal text mixed with `!{namespace:value}` expressions
//! (FIREHOSE.md 3.3).
//!
//! A template is parsed once when the stream is configured; [`PrefixTemplate::render`] then only
//! walks pre-parsed segments and appends to one `String`, because it runs for every object (and,
//! with dynamic partitioning, for every partition).
//!
//! Parsing rules, chosen to match Firehose's "`!{` may appear only as part of a valid
//! expression": an expression starts at `!{` and ends at the first `}` after it; the namespace
//! is the text before the first `:` and the value everything after it (so `!{timestamp:HH:mm}`
//! works). Namespaces and values are case-sensitive and not trimmed. A `!` not followed by `{`,
//! and a `{` or `}` outside an expression, are ordinary text.

use super::java_time::{JavaDateTimePattern, Moment, PatternError};
use chrono_tz::Tz;
use md5::{Digest, Md5};
use std::collections::BTreeMap;
use std::fmt;

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

/// The four `!{namespace:...}` namespaces Firehose defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Namespace {
    /// `!{timestamp:<Java DateTimeFormatter pattern>}`
    Timestamp,
    /// `!{firehose:random-string}` and `!{firehose:error-output-type}`
    Firehose,
    /// `!{partitionKeyFromQuery:<key>}` (dynamic partitioning, jq metadata extraction)
    PartitionKeyFromQuery,
    /// `!{partitionKeyFromLambda:<key>}` (dynamic partitioning, transform metadata)
    PartitionKeyFromLambda,
}

impl Namespace {
    /// The namespace as written in a template.
    pub fn as_str(self) -> &'static str {
        match self {
            Namespace::Timestamp => "timestamp",
            Namespace::Firehose => "firehose",
            Namespace::PartitionKeyFromQuery => "partitionKeyFromQuery",
            Namespace::PartitionKeyFromLambda => "partitionKeyFromLambda",
        }
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One expression of a template, as seen by callers that need to inspect a template (config
/// validation, the dynamic-partitioning stage deciding which keys it must extract).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expression<'a> {
    /// `!{timestamp:<pattern>}` with the pattern text.
    Timestamp(&'a str),
    /// `!{firehose:random-string}`
    RandomString,
    /// `!{firehose:error-output-type}`
    ErrorOutputType,
    /// `!{partitionKeyFromQuery:<key>}` with the key.
    PartitionKeyFromQuery(&'a str),
    /// `!{partitionKeyFromLambda:<key>}` with the key.
    PartitionKeyFromLambda(&'a str),
}

impl Expression<'_> {
    /// The namespace this expression belongs to.
    pub fn namespace(&self) -> Namespace {
        match self {
            Expression::Timestamp(_) => Namespace::Timestamp,
            Expression::RandomString | Expression::ErrorOutputType => Namespace::Firehose,
            Expression::PartitionKeyFromQuery(_) => Namespace::PartitionKeyFromQuery,
            Expression::PartitionKeyFromLambda(_) => Namespace::PartitionKeyFromLambda,
        }
    }
}

/// Why a template was rejected. `position` is the 0-based character index of the `!` that starts
/// the offending expression, and `expression` its text, so a config error can point at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrefixError {
    /// `!{` without a closing `}`.
    #[error("expression `{expression}` at position {position} is not closed with '}}'")]
    Unterminated { expression: String, position: usize },
    /// `!{...}` without a `:` between namespace and value.
    #[error(
        "expression `{expression}` at position {position} is not of the form !{{namespace:value}}"
    )]
    Malformed { expression: String, position: usize },
    /// A namespace other than the four Firehose defines.
    #[error(
        "expression `{expression}` at position {position} uses unknown namespace `{namespace}` \
         (expected timestamp, firehose, partitionKeyFromQuery or partitionKeyFromLambda)"
    )]
    UnknownNamespace { expression: String, position: usize, namespace: String },
    /// `!{firehose:...}` with something other than `random-string` or `error-output-type`.
    #[error(
        "expression `{expression}` at position {position}: the firehose namespace has only \
         random-string and error-output-type"
    )]
    UnknownFirehoseValue { expression: String, position: usize },
    /// `!{namespace:}`: a timestamp pattern or partition key name is required.
    #[error("expression `{expression}` at position {position} has an empty value")]
    EmptyValue { expression: String, position: usize },
    /// The Java pattern of a `!{timestamp:...}` expression is invalid.
    #[error("expression `{expression}` at position {position}: {source}")]
    InvalidTimestampPattern { expression: String, position: usize, source: PatternError },
}

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

/// A parsed prefix template (Firehose `Prefix` or `ErrorOutputPrefix`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixTemplate {
    source: String,
    segments: Vec<Segment>,
    /// Sum of literal lengths, to size the output buffer once.
    literal_len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(Box<str>),
    Timestamp(JavaDateTimePattern),
    /// The n-th random-string of the template (0-based), so each occurrence differs.
    RandomString(u32),
    ErrorOutputType,
    PartitionKey(Namespace, Box<str>),
}

impl PrefixTemplate {
    /// Splits `s` into literal text and `!{namespace:value}` expressions, validating each.
    pub fn parse(s: &str) -> Result<Self, PrefixError> {
        let mut template =
            PrefixTemplate { source: s.to_owned(), segments: Vec::new(), literal_len: 0 };
        let mut random_strings = 0u32;
        let mut rest = s;
        let mut offset = 0; // byte offset of `rest` in `s`
        while let Some(start) = rest.find("!{") {
            template.push_literal(&rest[..start]);
            let position = s[..offset + start].chars().count();
            let body_and_tail = &rest[start + 2..];
            let Some(end) = body_and_tail.find('}') else {
                return Err(PrefixError::Unterminated {
                    expression: rest[start..].to_owned(),
                    position,
                });
            };
            let expression = &rest[start..start + 2 + end + 1];
            let body = &body_and_tail[..end];
            let segment = parse_expression(body, expression, position, &mut random_strings)?;
            template.segments.push(segment);
            let consumed = start + 2 + end + 1;
            rest = &rest[consumed..];
            offset += consumed;
        }
        template.push_literal(rest);
        Ok(template)
    }

    /// The template text as configured.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the template contains at least one `!{...}` expression; Firehose treats a
    /// prefix without any differently (it appends the default timestamp).
    pub fn has_expressions(&self) -> bool {
        self.segments.iter().any(|s| !matches!(s, Segment::Literal(_)))
    }

    /// True when an expression of `namespace` occurs in the template.
    pub fn uses(&self, namespace: Namespace) -> bool {
        self.expressions().any(|e| e.namespace() == namespace)
    }

    /// The template's expressions in order of appearance.
    pub fn expressions(&self) -> impl Iterator<Item = Expression<'_>> + '_ {
        self.segments.iter().filter_map(|segment| match segment {
            Segment::Literal(_) => None,
            Segment::Timestamp(p) => Some(Expression::Timestamp(p.as_str())),
            Segment::RandomString(_) => Some(Expression::RandomString),
            Segment::ErrorOutputType => Some(Expression::ErrorOutputType),
            Segment::PartitionKey(Namespace::PartitionKeyFromLambda, key) => {
                Some(Expression::PartitionKeyFromLambda(key))
            }
            Segment::PartitionKey(_, key) => Some(Expression::PartitionKeyFromQuery(key)),
        })
    }

    /// True when `!{firehose:error-output-type}` occurs (semantic rules 3 and 4 need this).
    pub fn uses_error_output_type(&self) -> bool {
        self.segments.iter().any(|s| matches!(s, Segment::ErrorOutputType))
    }

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

    /// A template equal to `self` followed by the expression `!{timestamp:<pattern>}`, without
    /// any separator (Firehose's rule for prefixes that have no expression).
    pub(crate) fn with_timestamp_appended(mut self, pattern: &str) -> Result<Self, PrefixError> {
        let expression = format!("!{{timestamp:{pattern}}}");
        let position = self.source.chars().count();
        let parsed = JavaDateTimePattern::parse(pattern).map_err(|source| {
            PrefixError::InvalidTimestampPattern {
                expression: expression.clone(),
                position,
                source,
            }
        })?;
        self.source.push_str(&expression);
        self.segments.push(Segment::Timestamp(parsed));
        Ok(self)
    }

    /// A template equal to `self` followed by `!{firehose:error-output-type}`.
    pub(crate) fn with_error_output_type_appended(mut self) -> Self {
        self.source.push_str("!{firehose:error-output-type}");
        self.segments.push(Segment::ErrorOutputType);
        self
    }

    /// A template equal to `self` followed by literal text.
    pub(crate) fn with_literal_appended(mut self, text: &str) -> Self {
        self.source.push_str(text);
        self.push_literal(text);
        self
    }

    pub(crate) fn capacity_hint(&self) -> usize {
        // Literals plus a generous allowance per expression (a timestamp is usually 4-20 bytes).
        self.literal_len + 24 * self.segments.len()
    }

    fn push_literal(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.literal_len += text.len();
        if let Some(Segment::Literal(last)) = self.segments.last_mut() {
            let mut joined = String::with_capacity(last.len() + text.len());
            joined.push_str(last);
            joined.push_str(text);
            *last = joined.into();
        } else {
            self.segments.push(Segment::Literal(text.into()));
        }
    }
}

impl fmt::Display for PrefixTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl std::str::FromStr for PrefixTemplate {
    type Err = PrefixError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PrefixTemplate::parse(s)
    }
}

fn parse_expression(
    body: &str,
    expression: &str,
    position: usize,
    random_strings: &mut u32,
) -> Result<Segment, PrefixError> {
    let Some((namespace, value)) = body.split_once(':') else {
        return Err(PrefixError::Malformed { expression: expression.to_owned(), position });
    };
    let namespace = match namespace {
        "timestamp" => Namespace::Timestamp,
        "firehose" => Namespace::Firehose,
        "partitionKeyFromQuery" => Namespace::PartitionKeyFromQuery,
        "partitionKeyFromLambda" => Namespace::PartitionKeyFromLambda,
        other => {
            return Err(PrefixError::UnknownNamespace {
                expression: expression.to_owned(),
                position,
                namespace: other.to_owned(),
            })
        }
    };
    if value.is_empty() {
        return Err(PrefixError::EmptyValue { expression: expression.to_owned(), position });
    }
    match namespace {
        Namespace::Timestamp => {
            JavaDateTimePattern::parse(value).map(Segment::Timestamp).map_err(|source| {
                PrefixError::InvalidTimestampPattern {
                    expression: expression.to_owned(),
                    position,
                    source,
                }
            })
        }
        Namespace::Firehose => match value {
            "random-string" => {
                let index = *random_strings;
                *random_strings += 1;
                Ok(Segment::RandomString(index))
            }
            "error-output-type" => Ok(Segment::ErrorOutputType),
            _ => Err(PrefixError::UnknownFirehoseValue {
                expression: expression.to_owned(),
                position,
            }),
        },
        _ => Ok(Segment::PartitionKey(namespace, value.into())),
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
fn push_random_string(out: &mut String, seed: &[u8; 16], index: u32) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::UTC;

    /// 10:30 UTC, 27 Aug 2018: the instant of the DG examples.
    const DG_MS: i64 = 1_535_365_800_000;

    fn ctx(arrival_ms: i64) -> KeyContext<'static> {
        KeyContext {
            arrival_ms,
            tz: UTC,
            seed: [7; 16],
            error_output_type: None,
            partition_keys_query: None,
            partition_keys_lambda: None,
        }
    }

    fn render(template: &str, ctx: &KeyContext<'_>) -> String {
        PrefixTemplate::parse(template)
            .unwrap_or_else(|e| panic!("{template}: {e}"))
            .render(ctx)
            .unwrap_or_else(|e| panic!("{template}: {e}"))
    }

    #[test]
    fn timestamp_expressions_render_java_patterns_at_the_arrival_instant() {
        assert_eq!(render("!{timestamp:yyyy}", &ctx(DG_MS)), "2018");
        assert_eq!(
            render("dt=!{timestamp:yyyy'-'MM'-'dd}/h=!{timestamp:HH}/", &ctx(DG_MS)),
            "dt=2018-08-27/h=10/"
        );
        assert_eq!(render("!{timestamp:HH:mm}", &ctx(DG_MS)), "10:30");
    }

    #[test]
    fn text_without_expressions_is_kept_verbatim_including_lone_braces_and_bangs() {
        let t = PrefixTemplate::parse("a!b{c}/!/{").unwrap();
        assert!(!t.has_expressions());
        assert_eq!(t.render(&ctx(DG_MS)).unwrap(), "a!b{c}/!/{");
        assert_eq!(t.to_string(), "a!b{c}/!/{");
    }

    #[test]
    fn has_expressions_and_uses_report_what_the_template_contains() {
        let t = PrefixTemplate::parse(
            "!{partitionKeyFromQuery:c}/!{firehose:random-string}/!{timestamp:yyyy}",
        )
        .unwrap();
        assert!(t.has_expressions());
        assert!(t.uses(Namespace::PartitionKeyFromQuery));
        assert!(t.uses(Namespace::Firehose));
        assert!(t.uses(Namespace::Timestamp));
        assert!(!t.uses(Namespace::PartitionKeyFromLambda));
        assert_eq!(
            t.expressions().collect::<Vec<_>>(),
            [
                Expression::PartitionKeyFromQuery("c"),
                Expression::RandomString,
                Expression::Timestamp("yyyy"),
            ]
        );
    }

    #[test]
    fn random_string_is_eleven_lowercase_alphanumerics_and_differs_per_occurrence() {
        let s = render("!{firehose:random-string}/!{firehose:random-string}", &ctx(DG_MS));
        let (a, b) = s.split_once('/').unwrap();
        for part in [a, b] {
            assert_eq!(part.len(), RANDOM_STRING_LEN, "{part}");
            assert!(part.bytes().all(|c| RANDOM_STRING_ALPHABET.contains(&c)), "{part}");
        }
        assert_ne!(a, b);
    }

    #[test]
    fn random_string_depends_only_on_the_seed_and_occurrence() {
        let t = PrefixTemplate::parse("!{firehose:random-string}").unwrap();
        let mut c = ctx(DG_MS);
        let first = t.render(&c).unwrap();
        c.arrival_ms += 3_600_000;
        assert_eq!(t.render(&c).unwrap(), first, "time must not matter");
        c.seed[0] ^= 1;
        assert_ne!(t.render(&c).unwrap(), first, "the seed must matter");
    }

    #[test]
    fn partition_keys_come_from_their_own_namespace_and_missing_ones_are_named() {
        let query = BTreeMap::from([("customer_id".to_owned(), "42".to_owned())]);
        let lambda = BTreeMap::from([("device".to_owned(), "phone".to_owned())]);
        let t = PrefixTemplate::parse(
            "customer_id=!{partitionKeyFromQuery:customer_id}/device=!{partitionKeyFromLambda:device}/",
        )
        .unwrap();
        let mut c = ctx(DG_MS);
        c.partition_keys_query = Some(&query);
        c.partition_keys_lambda = Some(&lambda);
        assert_eq!(t.render(&c).unwrap(), "customer_id=42/device=phone/");

        c.partition_keys_lambda = Some(&query);
        let err = t.render(&c).unwrap_err();
        assert_eq!(
            err,
            RenderError::MissingPartitionKey {
                namespace: Namespace::PartitionKeyFromLambda,
                key: "device".into()
            }
        );
        assert!(err.to_string().contains("!{partitionKeyFromLambda:device}"), "{err}");
        c.partition_keys_query = None;
        assert!(matches!(
            t.render(&c),
            Err(RenderError::MissingPartitionKey {
                namespace: Namespace::PartitionKeyFromQuery,
                ..
            })
        ));
    }

    #[test]
    fn error_output_type_renders_every_occurrence_and_is_required() {
        let t =
            PrefixTemplate::parse("!{firehose:error-output-type}/x/!{firehose:error-output-type}")
                .unwrap();
        let mut c = ctx(DG_MS);
        assert_eq!(t.render(&c), Err(RenderError::MissingErrorOutputType));
        c.error_output_type = Some("processing-failed");
        assert_eq!(t.render(&c).unwrap(), "processing-failed/x/processing-failed");
    }

    #[test]
    fn evaluated_prefix_longer_than_512_characters_is_rejected() {
        let ok = "é".repeat(512);
        assert_eq!(render(&ok, &ctx(DG_MS)), ok, "512 two-byte chars are 512 chars");
        let t = PrefixTemplate::parse(&format!("{}!{{timestamp:yyyy}}", "a".repeat(509))).unwrap();
        assert_eq!(t.render(&ctx(DG_MS)), Err(RenderError::PrefixTooLong { chars: 513 }));
    }

    #[test]
    fn arrival_time_outside_the_calendar_is_an_error_not_a_panic() {
        let t = PrefixTemplate::parse("!{timestamp:yyyy}").unwrap();
        assert_eq!(
            t.render(&ctx(i64::MAX)),
            Err(RenderError::ArrivalOutOfRange { arrival_ms: i64::MAX })
        );
    }

    fn parse_err(s: &str) -> PrefixError {
        PrefixTemplate::parse(s).expect_err(s)
    }

    #[test]
    fn unknown_namespace_is_rejected_naming_the_expression_and_position() {
        let err = parse_err("logs/!{foo:bar}/");
        assert_eq!(
            err,
            PrefixError::UnknownNamespace {
                expression: "!{foo:bar}".into(),
                position: 5,
                namespace: "foo".into()
            }
        );
        let msg = err.to_string();
        assert!(msg.contains("!{foo:bar}") && msg.contains("position 5"), "{msg}");
    }

    #[test]
    fn unterminated_expression_is_rejected_naming_it() {
        let err = parse_err("x/!{timestamp:yyyy");
        assert_eq!(
            err,
            PrefixError::Unterminated { expression: "!{timestamp:yyyy".into(), position: 2 }
        );
        assert!(err.to_string().contains("!{timestamp:yyyy"), "{err}");
    }

    #[test]
    fn unknown_firehose_value_is_rejected_naming_it() {
        let err = parse_err("!{firehose:nope}");
        assert!(matches!(err, PrefixError::UnknownFirehoseValue { position: 0, .. }));
        assert!(err.to_string().contains("!{firehose:nope}"), "{err}");
    }

    #[test]
    fn malformed_and_empty_expressions_are_rejected() {
        assert!(matches!(parse_err("!{timestamp}"), PrefixError::Malformed { .. }));
        assert!(matches!(parse_err("!{}"), PrefixError::Malformed { .. }));
        assert!(matches!(parse_err("!{timestamp:}"), PrefixError::EmptyValue { .. }));
        assert!(matches!(parse_err("!{partitionKeyFromQuery:}"), PrefixError::EmptyValue { .. }));
        assert!(matches!(parse_err("!{Timestamp:yyyy}"), PrefixError::UnknownNamespace { .. }));
        assert!(matches!(
            parse_err("!{firehose:Random-String}"),
            PrefixError::UnknownFirehoseValue { .. }
        ));
    }

    #[test]
    fn invalid_timestamp_patterns_are_rejected_naming_the_letter_and_expression() {
        let err = parse_err("ü/!{timestamp:yyyy-bb}");
        assert!(
            matches!(
                &err,
                PrefixError::InvalidTimestampPattern {
                    position: 2,
                    source: PatternError::UnknownLetter { letter: 'b', position: 5 },
                    ..
                }
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("!{timestamp:yyyy-bb}") && msg.contains("'b'"), "{msg}");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parsing_any_text_never_panics(s in "(\\PC|!\\{|\\}|:){0,30}") {
                let _ = PrefixTemplate::parse(&s);
            }

            #[test]
            fn text_without_bang_brace_renders_to_itself(s in "[^!]{0,100}") {
                let t = PrefixTemplate::parse(&s).unwrap();
                prop_assert!(!t.has_expressions());
                prop_assert_eq!(t.render(&ctx(DG_MS)).unwrap(), s);
            }

            #[test]
            fn random_strings_are_always_eleven_alphabet_characters(seed in any::<[u8; 16]>(), index in any::<u32>()) {
                let mut out = String::new();
                push_random_string(&mut out, &seed, index);
                prop_assert_eq!(out.len(), RANDOM_STRING_LEN);
                prop_assert!(out.bytes().all(|c| RANDOM_STRING_ALPHABET.contains(&c)));
            }
        }
    }
}
