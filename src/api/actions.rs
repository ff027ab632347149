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

use crate::operations::{ActionPattern, OPERATIONS};

/// What a key without `actions` may call.
pub const DEFAULT_ACTIONS: [&str; 4] =
    ["PutRecord", "PutRecordBatch", "DescribeDeliveryStream", "ListDeliveryStreams"];

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
    fn an_unparseable_pattern_grants_nothing() {
        assert!(allowed(&["firehose:Nope*"]).is_empty());
        assert_eq!(allowed(&["nope", "firehose:PutRecord"]), ["PutRecord"]);
    }
}
