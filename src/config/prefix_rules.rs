//! Firehose's rules for S3 `Prefix` and `ErrorOutputPrefix` (Firehose developer guide,
//! "Custom prefixes for Amazon S3 objects", semantic rules; FIREHOSE.md 3.3).
//!
//! A prefix is literal text with `!{namespace:value}` expressions:
//!
//! | expression | meaning |
//! |---|---|
//! | `!{timestamp:<Java DateTimeFormatter pattern>}` | arrival time of the oldest record, e.g. `!{timestamp:yyyy/MM/dd}` |
//! | `!{firehose:random-string}` | 11 random characters (Prefix and ErrorOutputPrefix) |
//! | `!{firehose:error-output-type}` | why records failed, e.g. `processing-failed` (ErrorOutputPrefix only) |
//! | `!{partitionKeyFromQuery:<key>}` | dynamic partitioning key from the jq query (Prefix only) |
//! | `!{partitionKeyFromLambda:<key>}` | dynamic partitioning key from the transform (Prefix only) |
//!
//! The rules checked by [`check_prefixes`]:
//! 1. `!{` may appear only as the start of a valid `!{namespace:value}` expression with one of
//!    the namespaces above (and, for `firehose`, one of its two values; for `timestamp`, a
//!    pattern Java's `DateTimeFormatter` and Hydrant both accept).
//! 2. If Prefix contains an expression, ErrorOutputPrefix must be set.
//! 3. A non-empty ErrorOutputPrefix with expressions must contain
//!    `!{firehose:error-output-type}`.
//! 4. Prefix must not contain `!{firehose:error-output-type}`.
//! 5. `partitionKeyFrom*` expressions are not allowed in ErrorOutputPrefix, and in Prefix
//!    only when dynamic partitioning is enabled.
//! 6. Each prefix is at most 1024 characters as configured. (Firehose also limits the
//!    *evaluated* prefix to 512 characters; that is checked at delivery time.)

use std::fmt;

use crate::naming::JavaDateTimePattern;

/// Maximum length of Prefix and ErrorOutputPrefix as configured, in characters.
pub const MAX_PREFIX_CHARS: usize = 1024;

/// One piece of a parsed prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrefixPart {
    /// Text copied as is.
    Literal(String),
    /// `!{timestamp:<pattern>}`: the pattern, in Java DateTimeFormatter syntax (checked).
    Timestamp(String),
    /// `!{firehose:random-string}`.
    RandomString,
    /// `!{firehose:error-output-type}`.
    ErrorOutputType,
    /// `!{partitionKeyFromQuery:<key>}`: the key name.
    PartitionKeyFromQuery(String),
    /// `!{partitionKeyFromLambda:<key>}`: the key name.
    PartitionKeyFromLambda(String),
}

impl PrefixPart {
    /// Whether this part is an expression (anything but literal text).
    pub fn is_expression(&self) -> bool {
        !matches!(self, PrefixPart::Literal(_))
    }

    fn is_partition_key(&self) -> bool {
        matches!(self, PrefixPart::PartitionKeyFromQuery(_) | PrefixPart::PartitionKeyFromLambda(_))
    }
}

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

/// A broken rule, with the field it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixProblem {
    /// The field to fix.
    pub field: PrefixField,
    /// What is wrong, with the offending text and the fix. Starts with the field name.
    pub message: String,
}

/// Parses a prefix into literal text and expressions. Fails with a message (rule 1) on the
/// first `!{` that does not start a valid expression.
pub fn parse_prefix(prefix: &str) -> Result<Vec<PrefixPart>, String> {
    let (parts, mut errors) = scan(prefix);
    if errors.is_empty() {
        Ok(parts)
    } else {
        Err(errors.swap_remove(0))
    }
}

/// Checks rules 1 to 6 and returns one message per broken rule (without the field's path:
/// the caller adds it). Each message begins with the name of the field to fix.
pub fn check_prefixes(
    prefix: Option<&str>,
    error_output_prefix: Option<&str>,
    dynamic_partitioning: bool,
) -> Vec<String> {
    prefix_problems(prefix, error_output_prefix, dynamic_partitioning)
        .into_iter()
        .map(|p| p.message)
        .collect()
}

/// Like [`check_prefixes`], but tells which field each problem is about, so a caller can
/// report it at the precise path.
pub fn prefix_problems(
    prefix: Option<&str>,
    error_output_prefix: Option<&str>,
    dynamic_partitioning: bool,
) -> Vec<PrefixProblem> {
    use PrefixField::{ErrorOutputPrefix, Prefix};

    let mut problems = Vec::new();
    let mut push = |field: PrefixField, message: String| {
        problems.push(PrefixProblem { field, message: format!("{field} {message}") })
    };

    let prefix = prefix.unwrap_or("");
    let error_prefix = error_output_prefix.unwrap_or("");
    let (prefix_parts, prefix_errors) = scan(prefix);
    let (error_parts, error_errors) = scan(error_prefix);

    // Rule 6: length as configured.
    for (field, text) in [(Prefix, prefix), (ErrorOutputPrefix, error_prefix)] {
        let chars = text.chars().count();
        if chars > MAX_PREFIX_CHARS {
            push(
                field,
                format!(
                    "is {chars} characters long, at most {MAX_PREFIX_CHARS} are allowed; shorten it"
                ),
            );
        }
    }

    // Rule 1: every `!{` starts a valid expression.
    for e in prefix_errors {
        push(Prefix, e);
    }
    for e in error_errors {
        push(ErrorOutputPrefix, e);
    }

    let prefix_has_expressions = prefix_parts.iter().any(PrefixPart::is_expression);
    let error_has_expressions = error_parts.iter().any(PrefixPart::is_expression);

    // Rule 2: expressions in Prefix need an ErrorOutputPrefix.
    if prefix_has_expressions && error_prefix.is_empty() {
        push(
            ErrorOutputPrefix,
            format!(
                "is required because Prefix {prefix:?} contains expressions (Firehose: \
                 \"ErrorOutputPrefix can't be null when Prefix contains expressions\"); add e.g. \
                 ErrorOutputPrefix: \"errors/!{{firehose:error-output-type}}/\""
            ),
        );
    }

    // Rule 3: an ErrorOutputPrefix with expressions names the error type.
    if error_has_expressions
        && !error_parts.iter().any(|p| matches!(p, PrefixPart::ErrorOutputType))
    {
        push(
            ErrorOutputPrefix,
            format!(
                "{error_prefix:?} contains expressions but not !{{firehose:error-output-type}}; \
                 add it so failures of different kinds land apart, e.g. \
                 \"errors/!{{firehose:error-output-type}}/!{{timestamp:yyyy/MM/dd}}/\""
            ),
        );
    }

    // Rule 4: the error type belongs to ErrorOutputPrefix only.
    if prefix_parts.iter().any(|p| matches!(p, PrefixPart::ErrorOutputType)) {
        push(
            Prefix,
            format!(
                "{prefix:?} contains !{{firehose:error-output-type}}, which is allowed only in \
                 ErrorOutputPrefix; remove it from Prefix"
            ),
        );
    }

    // Rule 5: partition keys only in Prefix, and only with dynamic partitioning.
    if error_parts.iter().any(PrefixPart::is_partition_key) {
        push(
            ErrorOutputPrefix,
            format!(
                "{error_prefix:?} uses a partitionKeyFromQuery/partitionKeyFromLambda \
                 expression, which is allowed only in Prefix; remove it"
            ),
        );
    }
    if !dynamic_partitioning && prefix_parts.iter().any(PrefixPart::is_partition_key) {
        push(
            Prefix,
            format!(
                "{prefix:?} uses a partitionKeyFromQuery/partitionKeyFromLambda expression, \
                 which needs dynamic partitioning; set DynamicPartitioningConfiguration.Enabled \
                 to true or remove the expression"
            ),
        );
    }

    problems
}

const NAMESPACES: &str = "timestamp, firehose, partitionKeyFromQuery or partitionKeyFromLambda";

/// Splits a prefix into parts, collecting one message per invalid `!{` (rule 1). Invalid
/// expressions are kept as literal text in the parts.
fn scan(text: &str) -> (Vec<PrefixPart>, Vec<String>) {
    let mut parts = Vec::new();
    let mut errors = Vec::new();
    let mut literal = String::new();
    let mut rest = text;

    while let Some(start) = rest.find("!{") {
        literal.push_str(&rest[..start]);
        let after_open = &rest[start + 2..];
        let Some(close) = after_open.find('}') else {
            errors.push(format!(
                "has `!{{` without a closing `}}` in {:?}; an expression has the form \
                 !{{namespace:value}} with namespace {NAMESPACES}",
                &rest[start..]
            ));
            literal.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let body = &after_open[..close];
        let whole = &rest[start..start + 2 + close + 1];
        match expression(body) {
            Ok(part) => {
                if !literal.is_empty() {
                    parts.push(PrefixPart::Literal(std::mem::take(&mut literal)));
                }
                parts.push(part);
            }
            Err(why) => {
                errors.push(format!("has an invalid expression `{whole}`: {why}"));
                literal.push_str(whole);
            }
        }
        rest = &after_open[close + 1..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(PrefixPart::Literal(literal));
    }
    (parts, errors)
}

fn expression(body: &str) -> Result<PrefixPart, String> {
    if body.contains("!{") {
        return Err("expressions cannot be nested".to_owned());
    }
    let Some((namespace, value)) = body.split_once(':') else {
        return Err(format!("expected !{{namespace:value}} with namespace {NAMESPACES}"));
    };
    if value.trim().is_empty() && namespace != "firehose" {
        return Err(format!(
            "the value after `{namespace}:` is empty; e.g. !{{timestamp:yyyy/MM/dd}} or \
             !{{partitionKeyFromQuery:customer_id}}"
        ));
    }
    match namespace {
        "timestamp" => match JavaDateTimePattern::parse(value) {
            Ok(_) => Ok(PrefixPart::Timestamp(value.to_owned())),
            Err(e) => Err(format!(
                "the pattern `{value}` is not a Java DateTimeFormatter pattern: {e}; e.g. \
                 !{{timestamp:yyyy/MM/dd}} or !{{timestamp:yyyy'-'MM'-'dd}}"
            )),
        },
        "firehose" => match value {
            "random-string" => Ok(PrefixPart::RandomString),
            "error-output-type" => Ok(PrefixPart::ErrorOutputType),
            other => Err(format!(
                "the firehose namespace has only `random-string` and `error-output-type`, not \
                 `{other}`"
            )),
        },
        "partitionKeyFromQuery" => Ok(PrefixPart::PartitionKeyFromQuery(value.to_owned())),
        "partitionKeyFromLambda" => Ok(PrefixPart::PartitionKeyFromLambda(value.to_owned())),
        other => {
            Err(format!("unknown namespace `{other}`; use {NAMESPACES} (names are case-sensitive)"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DG_TIMESTAMP_PREFIX: &str =
        "myPrefix/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/";
    const DG_ERROR_PREFIX: &str = "myFirehoseFailures/!{firehose:error-output-type}/";

    fn ok(prefix: Option<&str>, error: Option<&str>, dp: bool) {
        let problems = check_prefixes(prefix, error, dp);
        assert!(problems.is_empty(), "{prefix:?} / {error:?}: {problems:#?}");
    }

    fn bad(
        prefix: Option<&str>,
        error: Option<&str>,
        dp: bool,
        expect: &str,
    ) -> Vec<PrefixProblem> {
        let problems = prefix_problems(prefix, error, dp);
        assert!(
            problems.iter().any(|p| p.message.contains(expect)),
            "{prefix:?} / {error:?}: expected a problem containing {expect:?}, got {problems:#?}"
        );
        problems
    }

    #[test]
    fn the_dg_examples_are_accepted() {
        ok(None, Some(DG_ERROR_PREFIX), false);
        ok(Some(DG_TIMESTAMP_PREFIX), Some(DG_ERROR_PREFIX), false);
        ok(
            Some("dt=!{timestamp:yyyy'-'MM'-'dd}/"),
            Some("errors/!{firehose:error-output-type}/"),
            false,
        );
        ok(Some("myFirehosePrefix/"), None, false);
        ok(None, None, false);
    }

    #[test]
    fn rule_1_accepts_every_known_expression() {
        let parts = parse_prefix(
            "a/!{timestamp:yyyy}/!{firehose:random-string}/!{partitionKeyFromQuery:k}/!{partitionKeyFromLambda:l}",
        )
        .unwrap();
        assert_eq!(
            parts,
            vec![
                PrefixPart::Literal("a/".into()),
                PrefixPart::Timestamp("yyyy".into()),
                PrefixPart::Literal("/".into()),
                PrefixPart::RandomString,
                PrefixPart::Literal("/".into()),
                PrefixPart::PartitionKeyFromQuery("k".into()),
                PrefixPart::Literal("/".into()),
                PrefixPart::PartitionKeyFromLambda("l".into()),
            ]
        );
        ok(
            Some("r/!{firehose:random-string}/"),
            Some("e/!{firehose:random-string}/!{firehose:error-output-type}/"),
            false,
        );
        // `{`, `}` and `!` on their own are plain text.
        ok(Some("a{b}!c/!x{/"), None, false);
    }

    #[test]
    fn rule_1_rejects_a_bang_brace_that_is_not_a_valid_expression() {
        let e = Some(DG_ERROR_PREFIX);
        bad(Some("data/!{timestamp:yyyy"), e, false, "without a closing");
        bad(Some("data/!{yyyy}/"), e, false, "expected !{namespace:value}");
        bad(Some("data/!{Timestamp:yyyy}/"), e, false, "unknown namespace `Timestamp`");
        bad(Some("data/!{firehose:uuid}/"), e, false, "not `uuid`");
        bad(Some("data/!{timestamp:}/"), e, false, "is empty");
        bad(Some("data/!{timestamp:!{x}}/"), e, false, "cannot be nested");
        bad(Some("data/!{timestamp:yyyy-bb}/"), e, false, "unknown pattern letter 'b'");
        bad(Some("data/!{timestamp:yyyy'}/"), e, false, "is not closed");
        let problems = bad(None, Some("errors/!{oops:x}/"), false, "unknown namespace");
        assert_eq!(problems[0].field, PrefixField::ErrorOutputPrefix);
        assert!(parse_prefix("data/!{nope:x}/").is_err());
    }

    #[test]
    fn rule_1_reports_every_invalid_expression() {
        let problems = prefix_problems(Some("!{a:b}/!{c:d}/"), Some(DG_ERROR_PREFIX), false);
        let invalid: Vec<_> =
            problems.iter().filter(|p| p.message.contains("invalid expression")).collect();
        assert_eq!(invalid.len(), 2, "{problems:#?}");
        assert!(invalid[0].message.contains("`!{a:b}`"));
        assert!(invalid[1].message.contains("`!{c:d}`"));
    }

    #[test]
    fn rule_2_prefix_with_expressions_needs_an_error_output_prefix() {
        let problems = bad(Some(DG_TIMESTAMP_PREFIX), None, false, "is required because Prefix");
        assert_eq!(problems[0].field, PrefixField::ErrorOutputPrefix);
        bad(Some(DG_TIMESTAMP_PREFIX), Some(""), false, "is required");
        ok(Some(DG_TIMESTAMP_PREFIX), Some(DG_ERROR_PREFIX), false);
        // A prefix without expressions needs no error prefix.
        ok(Some("myFirehosePrefix/"), None, false);
    }

    #[test]
    fn rule_3_error_output_prefix_with_expressions_names_the_error_type() {
        bad(None, Some("errors/!{timestamp:yyyy}/"), false, "not !{firehose:error-output-type}");
        ok(None, Some("errors/"), false);
        ok(None, Some("errors/!{firehose:error-output-type}/!{timestamp:yyyy}/"), false);
    }

    #[test]
    fn rule_4_prefix_must_not_contain_the_error_type() {
        let problems = bad(
            Some("data/!{firehose:error-output-type}/"),
            Some(DG_ERROR_PREFIX),
            false,
            "allowed only in ErrorOutputPrefix",
        );
        assert_eq!(problems[0].field, PrefixField::Prefix);
        ok(Some("data/!{firehose:random-string}/"), Some(DG_ERROR_PREFIX), false);
    }

    #[test]
    fn rule_5_partition_keys_need_dynamic_partitioning_and_stay_out_of_the_error_prefix() {
        let prefix = Some("data/customer_id=!{partitionKeyFromQuery:customer_id}/");
        ok(prefix, Some(DG_ERROR_PREFIX), true);
        bad(prefix, Some(DG_ERROR_PREFIX), false, "needs dynamic partitioning");
        bad(
            Some("data/!{partitionKeyFromLambda:k}/"),
            Some(DG_ERROR_PREFIX),
            false,
            "needs dynamic partitioning",
        );
        bad(
            prefix,
            Some("errors/!{firehose:error-output-type}/!{partitionKeyFromQuery:customer_id}/"),
            true,
            "allowed only in Prefix",
        );
    }

    #[test]
    fn rule_6_prefixes_are_at_most_1024_characters() {
        let max = "a".repeat(1024);
        ok(Some(&max), Some(&max), false);
        let long = "a".repeat(1025);
        let problems = bad(Some(&long), None, false, "is 1025 characters long");
        assert_eq!(problems[0].field, PrefixField::Prefix);
        let problems = bad(None, Some(&long), false, "is 1025 characters long");
        assert_eq!(problems[0].field, PrefixField::ErrorOutputPrefix);
    }

    #[test]
    fn messages_start_with_the_field_name() {
        let messages = check_prefixes(Some("!{firehose:error-output-type}"), None, false);
        assert!(messages.iter().any(|m| m.starts_with("Prefix ")), "{messages:?}");
        assert!(messages.iter().any(|m| m.starts_with("ErrorOutputPrefix ")), "{messages:?}");
    }
}
