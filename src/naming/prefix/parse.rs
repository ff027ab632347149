//! Text to [`PrefixTemplate`]: the one parser of the `!{namespace:value}` language.
//!
//! An invalid expression is reported with the text of the expression and where it starts;
//! [`PrefixTemplate::parse_all`] keeps going after one, so a configuration check can report
//! every invalid expression of a prefix at once.

use super::{Namespace, PrefixTemplate, Segment};
use crate::naming::java_time::{JavaDateTimePattern, PatternError};

/// The namespaces, as listed in messages.
const NAMESPACES: &str = "timestamp, firehose, partitionKeyFromQuery or partitionKeyFromLambda";

/// Why a template was rejected (semantic rule 1: `!{` may appear only as the start of a valid
/// expression). `expression` is the offending text and `position` the 0-based character index
/// of the `!` that starts it.
///
/// Each message completes a sentence that starts with the field's name: `Prefix {error}` reads
/// "Prefix has an invalid expression `!{foo:x}`: unknown namespace `foo`; ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrefixError {
    /// `!{` without a closing `}`; `expression` runs to the end of the text.
    #[error(
        "has `!{{` without a closing `}}` in {expression:?}; an expression has the form \
         !{{namespace:value}} with namespace {namespaces}",
        namespaces = NAMESPACES
    )]
    Unterminated { expression: String, position: usize },
    /// `!{` inside an expression.
    #[error("has an invalid expression `{expression}`: expressions cannot be nested")]
    Nested { expression: String, position: usize },
    /// `!{...}` without a `:` between namespace and value.
    #[error(
        "has an invalid expression `{expression}`: expected !{{namespace:value}} with namespace \
         {namespaces}",
        namespaces = NAMESPACES
    )]
    Malformed { expression: String, position: usize },
    /// `!{namespace:}`, or a value of white space only: a timestamp pattern or partition key
    /// name is required.
    #[error(
        "has an invalid expression `{expression}`: the value after `{namespace}:` is empty; e.g. \
         !{{timestamp:yyyy/MM/dd}} or !{{partitionKeyFromQuery:customer_id}}"
    )]
    EmptyValue { expression: String, position: usize, namespace: String },
    /// A namespace other than the four Firehose defines.
    #[error(
        "has an invalid expression `{expression}`: unknown namespace `{namespace}`; use \
         {namespaces} (names are case-sensitive)",
        namespaces = NAMESPACES
    )]
    UnknownNamespace { expression: String, position: usize, namespace: String },
    /// `!{firehose:...}` with something other than `random-string` or `error-output-type`.
    #[error(
        "has an invalid expression `{expression}`: the firehose namespace has only \
         `random-string` and `error-output-type`, not `{value}`"
    )]
    UnknownFirehoseValue { expression: String, position: usize, value: String },
    /// The Java pattern of a `!{timestamp:...}` expression is invalid, or one Hydrant cannot
    /// render as Java would.
    #[error(
        "has an invalid expression `{expression}`: the pattern `{pattern}` is not a Java \
         DateTimeFormatter pattern: {source}; e.g. !{{timestamp:yyyy/MM/dd}} or \
         !{{timestamp:yyyy'-'MM'-'dd}}"
    )]
    InvalidTimestampPattern {
        expression: String,
        position: usize,
        pattern: String,
        source: PatternError,
    },
}

impl PrefixTemplate {
    /// Splits `s` into literal text and `!{namespace:value}` expressions, validating each.
    /// Fails on the first invalid expression.
    pub fn parse(s: &str) -> Result<Self, PrefixError> {
        let (template, mut errors) = Self::parse_all(s);
        if errors.is_empty() {
            Ok(template)
        } else {
            Err(errors.swap_remove(0))
        }
    }

    /// Like [`parse`](Self::parse), but goes on after an invalid expression and returns every
    /// error, in order. Each invalid expression stays in the template as literal text, so the
    /// other rules can still be checked on the valid ones; such a template is for checking
    /// only, never for naming objects.
    pub(super) fn parse_all(s: &str) -> (Self, Vec<PrefixError>) {
        let mut template =
            PrefixTemplate { source: s.to_owned(), segments: Vec::new(), literal_len: 0 };
        let mut errors = Vec::new();
        let mut random_strings = 0u32;
        let mut rest = s;
        let mut offset = 0; // byte offset of `rest` in `s`
        while let Some(start) = rest.find("!{") {
            template.push_literal(&rest[..start]);
            let position = s[..offset + start].chars().count();
            let body_and_tail = &rest[start + 2..];
            let Some(end) = body_and_tail.find('}') else {
                errors.push(PrefixError::Unterminated {
                    expression: rest[start..].to_owned(),
                    position,
                });
                template.push_literal(&rest[start..]);
                return (template, errors);
            };
            let expression = &rest[start..start + 2 + end + 1];
            let body = &body_and_tail[..end];
            match parse_expression(body, expression, position, &mut random_strings) {
                Ok(segment) => template.segments.push(segment),
                Err(error) => {
                    errors.push(error);
                    template.push_literal(expression);
                }
            }
            let consumed = start + 2 + end + 1;
            rest = &rest[consumed..];
            offset += consumed;
        }
        template.push_literal(rest);
        (template, errors)
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
                pattern: pattern.to_owned(),
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

/// One expression's body (the text between `!{` and `}`). The checks run in this order, so
/// that each text gets one message: nesting, the `:`, an empty value, the namespace, then the
/// value.
fn parse_expression(
    body: &str,
    expression: &str,
    position: usize,
    random_strings: &mut u32,
) -> Result<Segment, PrefixError> {
    let expression_text = || expression.to_owned();
    if body.contains("!{") {
        return Err(PrefixError::Nested { expression: expression_text(), position });
    }
    let Some((namespace, value)) = body.split_once(':') else {
        return Err(PrefixError::Malformed { expression: expression_text(), position });
    };
    // A value of white space only names nothing, whatever the namespace (the firehose
    // namespace has its own message for a wrong value).
    if value.trim().is_empty() && namespace != Namespace::Firehose.as_str() {
        return Err(PrefixError::EmptyValue {
            expression: expression_text(),
            position,
            namespace: namespace.to_owned(),
        });
    }
    let namespace = match namespace {
        "timestamp" => Namespace::Timestamp,
        "firehose" => Namespace::Firehose,
        "partitionKeyFromQuery" => Namespace::PartitionKeyFromQuery,
        "partitionKeyFromLambda" => Namespace::PartitionKeyFromLambda,
        other => {
            return Err(PrefixError::UnknownNamespace {
                expression: expression_text(),
                position,
                namespace: other.to_owned(),
            })
        }
    };
    match namespace {
        Namespace::Timestamp => {
            JavaDateTimePattern::parse(value).map(Segment::Timestamp).map_err(|source| {
                PrefixError::InvalidTimestampPattern {
                    expression: expression_text(),
                    position,
                    pattern: value.to_owned(),
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
            other => Err(PrefixError::UnknownFirehoseValue {
                expression: expression_text(),
                position,
                value: other.to_owned(),
            }),
        },
        _ => Ok(Segment::PartitionKey(namespace, value.into())),
    }
}
