//! What an access key may call (`auth.credentials[].actions`): IAM-style action names,
//! `firehose:<Operation>` and `kinesis:<Operation>` with `*` wildcards (`firehose:*`,
//! `firehose:Describe*`, `kinesis:Get*`), matched case-insensitively as IAM matches them.
//!
//! A key without `actions` may call [`DEFAULT_ACTIONS`] only: send records and look streams
//! up. Creating, changing, tagging and deleting streams, and reading Kinesis records, has to be
//! granted explicitly, so a producer key handed to many machines cannot re-point a stream,
//! delete it or read what others sent.
//!
//! Patterns are resolved once, when the keys are loaded, into the set of operations they
//! allow; a pattern that names no operation is a configuration error
//! ([`ActionPattern::parse`]), so a typo never silently grants nothing (or everything).

use std::collections::BTreeSet;

use crate::operations::{ActionPattern, Service};

/// What a key without `actions` may call, by service.
pub const DEFAULT_ACTIONS: [(Service, &str); 10] = [
    (Service::Firehose, "PutRecord"),
    (Service::Firehose, "PutRecordBatch"),
    (Service::Firehose, "DescribeDeliveryStream"),
    (Service::Firehose, "ListDeliveryStreams"),
    (Service::Kinesis, "PutRecord"),
    (Service::Kinesis, "PutRecords"),
    (Service::Kinesis, "DescribeStream"),
    (Service::Kinesis, "DescribeStreamSummary"),
    (Service::Kinesis, "ListStreams"),
    (Service::Kinesis, "ListShards"),
];

/// The operations one key may call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedActions {
    operations: BTreeSet<(Service, &'static str)>,
}

impl AllowedActions {
    /// The operations `actions` allows; [`DEFAULT_ACTIONS`] when it is `None`. Patterns that do
    /// not parse allow nothing (configuration validation reports them before a key is used).
    pub fn from_config(actions: Option<&[String]>) -> Self {
        let every = (Service::ALL.into_iter())
            .flat_map(|service| service.operations().iter().map(move |op| (service, *op)));
        let operations = match actions {
            None => every.filter(|action| DEFAULT_ACTIONS.contains(action)).collect(),
            Some(patterns) => {
                let patterns: Vec<ActionPattern> =
                    patterns.iter().filter_map(|p| ActionPattern::parse(p).ok()).collect();
                every
                    .filter(|(service, op)| patterns.iter().any(|p| p.matches(*service, op)))
                    .collect()
            }
        };
        Self { operations }
    }

    /// Whether `operation` (a name of `service`'s operations) is allowed.
    pub fn allows(&self, service: Service, operation: &str) -> bool {
        self.operations.iter().any(|(s, op)| *s == service && *op == operation)
    }

    /// The allowed operations of `service`, sorted, for messages.
    pub fn names(&self, service: Service) -> Vec<&'static str> {
        self.operations.iter().filter(|(s, _)| *s == service).map(|(_, op)| *op).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operations::{KINESIS_OPERATIONS, OPERATIONS};

    fn allowed_in(service: Service, patterns: &[&str]) -> Vec<&'static str> {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        AllowedActions::from_config(Some(&patterns)).names(service)
    }

    fn allowed(patterns: &[&str]) -> Vec<&'static str> {
        allowed_in(Service::Firehose, patterns)
    }

    #[test]
    fn a_key_without_actions_may_only_put_describe_and_list() {
        let default = AllowedActions::from_config(None);
        for service in Service::ALL {
            for op in service.operations() {
                let expected = DEFAULT_ACTIONS.contains(&(service, *op));
                assert_eq!(default.allows(service, op), expected, "{service} {op}");
            }
        }
        assert!(!default.allows(Service::Firehose, "UpdateDestination"));
        assert!(!default.allows(Service::Firehose, "DeleteDeliveryStream"));
        assert!(!default.allows(Service::Kinesis, "GetRecords"));
        assert!(!default.allows(Service::Kinesis, "DeleteStream"));
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
    fn a_service_grants_only_its_own_operations() {
        assert_eq!(allowed_in(Service::Kinesis, &["kinesis:*"]).len(), KINESIS_OPERATIONS.len());
        assert!(allowed_in(Service::Kinesis, &["firehose:*"]).is_empty());
        assert!(allowed(&["kinesis:*"]).is_empty());
        assert_eq!(
            allowed_in(Service::Kinesis, &["kinesis:Get*"]),
            ["GetRecords", "GetShardIterator"]
        );
        // PutRecord is both services' name: each prefix grants its own.
        let keys = AllowedActions::from_config(Some(&["kinesis:PutRecord".to_string()]));
        assert!(keys.allows(Service::Kinesis, "PutRecord"));
        assert!(!keys.allows(Service::Firehose, "PutRecord"));
    }

    #[test]
    fn names_match_case_insensitively_as_in_iam() {
        assert_eq!(allowed(&["Firehose:putrecordbatch"]), ["PutRecordBatch"]);
        assert_eq!(allowed(&["FIREHOSE:UPDATEDESTINATION"]), ["UpdateDestination"]);
        assert_eq!(allowed_in(Service::Kinesis, &["KINESIS:getrecords"]), ["GetRecords"]);
    }

    #[test]
    fn an_unparseable_pattern_grants_nothing() {
        assert!(allowed(&["firehose:Nope*"]).is_empty());
        assert_eq!(allowed(&["nope", "firehose:PutRecord"]), ["PutRecord"]);
    }
}
