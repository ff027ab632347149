//! Firehose prefix templates: literal text mixed with `!{namespace:value}` expressions
//! (Firehose developer guide, "Custom prefixes for Amazon S3 objects"; FIREHOSE.md 3.3).
//!
//! | expression | meaning |
//! |---|---|
//! | `!{timestamp:<Java DateTimeFormatter pattern>}` | arrival time of the oldest record, e.g. `!{timestamp:yyyy/MM/dd}` |
//! | `!{firehose:random-string}` | 11 random characters (Prefix and ErrorOutputPrefix) |
//! | `!{firehose:error-output-type}` | why records failed, e.g. `processing-failed` (ErrorOutputPrefix only) |
//! | `!{partitionKeyFromQuery:<key>}` | dynamic partitioning key from the jq query (Prefix only) |
//! | `!{partitionKeyFromLambda:<key>}` | dynamic partitioning key from the transform (Prefix only) |
//!
//! This is the one parser of the language: configuration checks and object naming both use it.
//! - [`parse`](PrefixTemplate::parse) (`parse.rs`) turns the text into a [`PrefixTemplate`],
//!   once, when a stream is configured. An expression starts at `!{` and ends at the first `}`
//!   after it; the namespace is the text before the first `:` and the value everything after
//!   it (so `!{timestamp:HH:mm}` works). Namespaces and values are case-sensitive and not
//!   trimmed. A `!` not followed by `{`, and a `{` or `}` outside an expression, are ordinary
//!   text.
//! - [`check_prefixes`] (`rules.rs`) applies Firehose's rules to a destination's `Prefix` and
//!   `ErrorOutputPrefix` and reports every broken one ([`PrefixProblem`]).
//! - [`render`](PrefixTemplate::render) (`render.rs`) evaluates a template for one object. It
//!   only walks pre-parsed segments and appends to one `String`, because it runs for every
//!   object (and, with dynamic partitioning, for every partition).

mod parse;
mod render;
mod rules;
#[cfg(test)]
mod tests;

pub use parse::PrefixError;
pub(crate) use render::moment_at;
pub use render::{
    KeyContext, RenderError, MAX_EVALUATED_PREFIX_CHARS, RANDOM_STRING_ALPHABET, RANDOM_STRING_LEN,
};
pub use rules::{check_prefixes, CheckedPrefixes, PrefixField, PrefixProblem, MAX_PREFIX_CHARS};

use super::java_time::JavaDateTimePattern;
use std::fmt;

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

/// One expression of a template, as seen by callers that need to inspect a template (the
/// prefix rules, the dynamic-partitioning stage deciding which keys it must extract).
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

    /// True when a `partitionKeyFromQuery` or `partitionKeyFromLambda` expression occurs.
    pub fn uses_partition_keys(&self) -> bool {
        self.uses(Namespace::PartitionKeyFromQuery) || self.uses(Namespace::PartitionKeyFromLambda)
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
