//! What an access key may call (`auth.credentials[].actions`): IAM-style action names,
//! `firehose:<Operation>` with `*` wildcards (`firehose:*`, `firehose:Describe*`,
//! `firehose:Put*`), matched case-insensitively as IAM matches them.
//!
//! A key without `actions` may call [`DEFAULT_ACTIONS`] only: send records and look streams
//! up. Creating, changing, tagging and deleting streams has to be granted explicitly, so a
//! producer key handed to many machines cannot re-point a stream or delete it.
//!
//! Patterns are resolved once, when the keys are loaded, into the set of operations they
//! allow; a pattern that names no operation is a configuration error
//! ([`ActionPattern::parse`]), so a typo never silently grants nothing (or everything).

use std::collections::BTreeSet;

use super::OPERATIONS;

/// The IAM service prefix of every Firehose action.
pub const SERVICE_PREFIX: &str = "firehose:";

/// What a key without `actions` may call.
pub const DEFAULT_ACTIONS: [&str; 4] =
    ["PutRecord", "PutRecordBatch", "DescribeDeliveryStream", "ListDeliveryStreams"];

/// One entry of `actions`: `firehose:` and an operation name in which `*` matches any run of
/// characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionPattern {
    /// The part after `firehose:`, lowercased.
    operation: String,
}

impl ActionPattern {
    /// Parses `firehose:<Operation>`; the error says what is wrong and what to write.
    pub fn parse(text: &str) -> Result<Self, String> {
        let example = "write firehose:<Operation>, e.g. firehose:PutRecordBatch, \
                       firehose:Describe* or firehose:*";
        let lower = text.trim().to_ascii_lowercase();
        let Some(operation) = lower.strip_prefix(SERVICE_PREFIX) else {
            return Err(format!("{text:?} is not a Firehose action; {example}"));
        };
        if operation.is_empty()
            || !operation.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'*')
        {
            return Err(format!(
                "{text:?} is not a Firehose action: an operation name has only letters, and `*` \
                 as a wildcard; {example}"
            ));
        }
        let pattern = Self { operation: operation.to_owned() };
        if !OPERATIONS.iter().any(|op| pattern.matches(op)) {
            return Err(format!(
                "{text:?} matches no Firehose operation; the operations are {}",
                OPERATIONS.join(", ")
            ));
        }
        Ok(pattern)
    }

    /// Whether this pattern allows `operation` (e.g. `PutRecordBatch`).
    pub fn matches(&self, operation: &str) -> bool {
        glob(self.operation.as_bytes(), operation.to_ascii_lowercase().as_bytes())
    }
}

/// `*` matches any run of bytes (also none); everything else matches itself. Linear
/// backtracking to the last `*` only, so no pattern can make matching slow.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                last_star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match last_star {
                // Let the last `*` swallow one more byte and try again from there.
                Some((star, from)) => {
                    p = star + 1;
                    t = from + 1;
                    last_star = Some((star, from + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// The operations one key may call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedActions {
    operations: BTreeSet<&'static str>,
}

impl AllowedActions {
    /// The operations `actions` allows; [`DEFAULT_ACTIONS`] when it is `None`. Patterns that do
    /// not parse allow nothing (configuration validation reports them before a key is used).
    pub fn from_config(actions: Option<&[String]>) -> Self {
        let operations = match actions {
            None => OPERATIONS.iter().copied().filter(|op| DEFAULT_ACTIONS.contains(op)).collect(),
            Some(patterns) => {
                let patterns: Vec<ActionPattern> =
                    patterns.iter().filter_map(|p| ActionPattern::parse(p).ok()).collect();
                OPERATIONS
                    .iter()
                    .copied()
                    .filter(|op| patterns.iter().any(|p| p.matches(op)))
                    .collect()
            }
        };
        Self { operations }
    }

    /// Whether `operation` (a name of [`OPERATIONS`]) is allowed.
    pub fn allows(&self, operation: &str) -> bool {
        self.operations.contains(operation)
    }

    /// The allowed operations, sorted, for messages.
    pub fn names(&self) -> Vec<&'static str> {
        self.operations.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(patterns: &[&str]) -> Vec<&'static str> {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        AllowedActions::from_config(Some(&patterns)).names()
    }

    #[test]
    fn a_key_without_actions_may_only_put_describe_and_list() {
        let default = AllowedActions::from_config(None);
        for op in OPERATIONS {
            assert_eq!(default.allows(op), DEFAULT_ACTIONS.contains(&op), "{op}");
        }
        assert!(!default.allows("UpdateDestination"));
        assert!(!default.allows("DeleteDeliveryStream"));
    }

    #[test]
    fn wildcards_match_any_run_of_characters() {
        assert_eq!(allowed(&["firehose:*"]).len(), OPERATIONS.len());
        assert_eq!(allowed(&["firehose:Put*"]), ["PutRecord", "PutRecordBatch"]);
        assert_eq!(allowed(&["firehose:Describe*"]), ["DescribeDeliveryStream"]);
        assert_eq!(
            allowed(&["firehose:*Tag*"]),
            ["ListTagsForDeliveryStream", "TagDeliveryStream", "UntagDeliveryStream"]
        );
        assert_eq!(
            allowed(&["firehose:*DeliveryStreamEncryption"]),
            ["StartDeliveryStreamEncryption", "StopDeliveryStreamEncryption"]
        );
        assert_eq!(allowed(&["firehose:PutRecord"]), ["PutRecord"]);
    }

    #[test]
    fn names_match_case_insensitively_as_in_iam() {
        assert_eq!(allowed(&["Firehose:putrecordbatch"]), ["PutRecordBatch"]);
        assert_eq!(allowed(&["FIREHOSE:UPDATEDESTINATION"]), ["UpdateDestination"]);
    }

    #[test]
    fn patterns_that_name_no_operation_are_refused_with_the_fix() {
        for (text, needle) in [
            ("PutRecord", "is not a Firehose action"),
            ("*", "is not a Firehose action"),
            ("s3:PutObject", "is not a Firehose action"),
            ("firehose:", "only letters"),
            ("firehose:Put?ecord", "only letters"),
            ("firehose:PutRecords", "matches no Firehose operation"),
            ("firehose:Create*Stream*s", "matches no Firehose operation"),
        ] {
            let e = ActionPattern::parse(text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
        let e = ActionPattern::parse("firehose:PutRecords").unwrap_err();
        assert!(e.contains("PutRecordBatch"), "the message lists the operations: {e}");
    }

    #[test]
    fn an_unparseable_pattern_grants_nothing() {
        assert!(allowed(&["firehose:Nope*"]).is_empty());
        assert_eq!(allowed(&["nope", "firehose:PutRecord"]), ["PutRecord"]);
    }
}
