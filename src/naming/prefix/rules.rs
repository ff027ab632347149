//! Firehose's rules for a destination's `Prefix` and `ErrorOutputPrefix` (developer guide,
//! "Custom prefixes for Amazon S3 objects", semantic rules; FIREHOSE.md 3.3):
//!
//! 1. `!{` may appear only as the start of a valid `!{namespace:value}` expression with one of
//!    the four namespaces (for `firehose`, one of its two values; for `timestamp`, a pattern
//!    Java's `DateTimeFormatter` and Hydrant both accept), see [`PrefixError`].
//! 2. If Prefix contains an expression, ErrorOutputPrefix must be set.
//! 3. A non-empty ErrorOutputPrefix with expressions must contain
//!    `!{firehose:error-output-type}`.
//! 4. Prefix must not contain `!{firehose:error-output-type}`.
//! 5. `partitionKeyFrom*` expressions are not allowed in ErrorOutputPrefix, and in Prefix
//!    only when dynamic partitioning is enabled.
//! 6. Each prefix is at most 1024 characters as configured. (Firehose also limits the
//!    *evaluated* prefix to 512 characters; that is checked when an object is named,
//!    [`RenderError::PrefixTooLong`](super::RenderError::PrefixTooLong).)

use super::{PrefixError, PrefixTemplate};
use std::fmt;

/// Maximum length of Prefix and ErrorOutputPrefix as configured, in characters.
pub const MAX_PREFIX_CHARS: usize = 1024;

/// Which of the two prefixes a problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixField {
    /// `Prefix`.
    Prefix,
    /// `ErrorOutputPrefix`.
    ErrorOutputPrefix,
}

impl PrefixField {
    /// The Firehose field name.
    pub fn as_str(&self) -> &'static str {
        match self {
            PrefixField::Prefix => "Prefix",
            PrefixField::ErrorOutputPrefix => "ErrorOutputPrefix",
        }
    }
}

impl fmt::Display for PrefixField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A broken rule. The message starts with the name of the field to fix ([`Self::field`]) and
/// says what is wrong, quoting the prefix, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrefixProblem {
    /// Rule 6.
    #[error(
        "{field} is {chars} characters long, at most {max} are allowed; shorten it",
        max = MAX_PREFIX_CHARS
    )]
    TooLong { field: PrefixField, chars: usize },
    /// Rule 1.
    #[error("{field} {error}")]
    Invalid { field: PrefixField, error: PrefixError },
    /// Rule 2.
    #[error(
        "ErrorOutputPrefix is required because Prefix {prefix:?} contains expressions (Firehose: \
         \"ErrorOutputPrefix can't be null when Prefix contains expressions\"); add e.g. \
         ErrorOutputPrefix: \"errors/!{{firehose:error-output-type}}/\""
    )]
    ErrorOutputPrefixRequired { prefix: String },
    /// Rule 3.
    #[error(
        "ErrorOutputPrefix {error_output_prefix:?} contains expressions but not \
         !{{firehose:error-output-type}}; add it so failures of different kinds land apart, \
         e.g. \"errors/!{{firehose:error-output-type}}/!{{timestamp:yyyy/MM/dd}}/\""
    )]
    ErrorOutputTypeRequired { error_output_prefix: String },
    /// Rule 4.
    #[error(
        "Prefix {prefix:?} contains !{{firehose:error-output-type}}, which is allowed only in \
         ErrorOutputPrefix; remove it from Prefix"
    )]
    ErrorOutputTypeInPrefix { prefix: String },
    /// Rule 5, ErrorOutputPrefix.
    #[error(
        "ErrorOutputPrefix {error_output_prefix:?} uses a \
         partitionKeyFromQuery/partitionKeyFromLambda expression, which is allowed only in \
         Prefix; remove it"
    )]
    PartitionKeyInErrorOutputPrefix { error_output_prefix: String },
    /// Rule 5, Prefix.
    #[error(
        "Prefix {prefix:?} uses a partitionKeyFromQuery/partitionKeyFromLambda expression, \
         which needs dynamic partitioning; set DynamicPartitioningConfiguration.Enabled to true \
         or remove the expression"
    )]
    PartitionKeyWithoutDynamicPartitioning { prefix: String },
}

impl PrefixProblem {
    /// The field to fix.
    pub fn field(&self) -> PrefixField {
        match self {
            PrefixProblem::TooLong { field, .. } | PrefixProblem::Invalid { field, .. } => *field,
            PrefixProblem::ErrorOutputTypeInPrefix { .. }
            | PrefixProblem::PartitionKeyWithoutDynamicPartitioning { .. } => PrefixField::Prefix,
            PrefixProblem::ErrorOutputPrefixRequired { .. }
            | PrefixProblem::ErrorOutputTypeRequired { .. }
            | PrefixProblem::PartitionKeyInErrorOutputPrefix { .. } => {
                PrefixField::ErrorOutputPrefix
            }
        }
    }
}

/// A destination's two prefixes, parsed, that keep every rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedPrefixes {
    /// `Prefix` as configured (empty when unset).
    pub prefix: PrefixTemplate,
    /// `ErrorOutputPrefix` as configured (empty when unset).
    pub error_output_prefix: PrefixTemplate,
}

/// Parses `Prefix` and `ErrorOutputPrefix` (`None` and `""` mean unset) and checks rules 1 to
/// 6 on them. `dynamic_partitioning` says whether Prefix may use partition keys (rule 5).
///
/// Every problem is reported, in rule order (6, 1, 2, 3, 4, 5), not only the first.
pub fn check_prefixes(
    prefix: Option<&str>,
    error_output_prefix: Option<&str>,
    dynamic_partitioning: bool,
) -> Result<CheckedPrefixes, Vec<PrefixProblem>> {
    use PrefixField::{ErrorOutputPrefix, Prefix};

    let prefix_text = prefix.unwrap_or("");
    let error_text = error_output_prefix.unwrap_or("");
    let (prefix, prefix_errors) = PrefixTemplate::parse_all(prefix_text);
    let (error_prefix, error_errors) = PrefixTemplate::parse_all(error_text);
    let mut problems = Vec::new();

    // Rule 6: length as configured.
    for (field, text) in [(Prefix, prefix_text), (ErrorOutputPrefix, error_text)] {
        let chars = text.chars().count();
        if chars > MAX_PREFIX_CHARS {
            problems.push(PrefixProblem::TooLong { field, chars });
        }
    }

    // Rule 1: every `!{` starts a valid expression. Invalid ones are literal text in the
    // templates, so the rules below see only the valid expressions.
    let invalid = |field| move |error| PrefixProblem::Invalid { field, error };
    problems.extend(prefix_errors.into_iter().map(invalid(Prefix)));
    problems.extend(error_errors.into_iter().map(invalid(ErrorOutputPrefix)));

    // Rule 2: expressions in Prefix need an ErrorOutputPrefix.
    if prefix.has_expressions() && error_text.is_empty() {
        problems.push(PrefixProblem::ErrorOutputPrefixRequired { prefix: prefix_text.into() });
    }

    // Rule 3: an ErrorOutputPrefix with expressions names the error type.
    if error_prefix.has_expressions() && !error_prefix.uses_error_output_type() {
        problems.push(PrefixProblem::ErrorOutputTypeRequired {
            error_output_prefix: error_text.into(),
        });
    }

    // Rule 4: the error type belongs to ErrorOutputPrefix only.
    if prefix.uses_error_output_type() {
        problems.push(PrefixProblem::ErrorOutputTypeInPrefix { prefix: prefix_text.into() });
    }

    // Rule 5: partition keys only in Prefix, and only with dynamic partitioning.
    if error_prefix.uses_partition_keys() {
        problems.push(PrefixProblem::PartitionKeyInErrorOutputPrefix {
            error_output_prefix: error_text.into(),
        });
    }
    if !dynamic_partitioning && prefix.uses_partition_keys() {
        problems.push(PrefixProblem::PartitionKeyWithoutDynamicPartitioning {
            prefix: prefix_text.into(),
        });
    }

    if problems.is_empty() {
        Ok(CheckedPrefixes { prefix, error_output_prefix: error_prefix })
    } else {
        Err(problems)
    }
}
