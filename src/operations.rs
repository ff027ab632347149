//! The operations Hydrant serves, by service (Firehose's, and Kinesis Data Streams' on the same
//! port), and the IAM-style patterns that name them in `auth.credentials[].actions`:
//! `firehose:<Operation>` or `kinesis:<Operation>` with `*` wildcards (`firehose:*`,
//! `kinesis:Get*`, `firehose:Put*`), matched case-insensitively as IAM matches them.
//!
//! What the operations are is not HTTP: the API routes them and checks a key's rights with
//! them (`api::actions`), and configuration checks parse the patterns ([`ActionPattern::parse`]),
//! so a typo never silently grants nothing (or everything).

use std::fmt;

/// Every Firehose operation Hydrant serves.
pub const OPERATIONS: [&str; 12] = [
    "PutRecord",
    "PutRecordBatch",
    "ListDeliveryStreams",
    "DescribeDeliveryStream",
    "CreateDeliveryStream",
    "DeleteDeliveryStream",
    "UpdateDestination",
    "TagDeliveryStream",
    "UntagDeliveryStream",
    "ListTagsForDeliveryStream",
    "StartDeliveryStreamEncryption",
    "StopDeliveryStreamEncryption",
];

/// Every Kinesis Data Streams operation Hydrant serves.
pub const KINESIS_OPERATIONS: [&str; 21] = [
    "CreateStream",
    "DeleteStream",
    "DescribeStream",
    "DescribeStreamSummary",
    "ListStreams",
    "ListShards",
    "PutRecord",
    "PutRecords",
    "GetShardIterator",
    "GetRecords",
    "ListTagsForStream",
    "AddTagsToStream",
    "RemoveTagsFromStream",
    "IncreaseStreamRetentionPeriod",
    "DecreaseStreamRetentionPeriod",
    "SplitShard",
    "MergeShards",
    "UpdateShardCount",
    "UpdateStreamMode",
    "StartStreamEncryption",
    "StopStreamEncryption",
];

/// Hydrant's own operations, on the same port and in the same JSON protocol: replays
/// (`src/replay/`).
pub const HYDRANT_OPERATIONS: [&str; 4] =
    ["StartReplay", "DescribeReplay", "ListReplays", "DescribeReplayWindow"];

/// An AWS service whose API Hydrant serves (and Hydrant's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    Firehose,
    Kinesis,
    /// Hydrant's own operations (replays), signed for the service name `hydrant`.
    Hydrant,
}

impl Service {
    pub const ALL: [Service; 3] = [Service::Firehose, Service::Kinesis, Service::Hydrant];

    /// Its IAM prefix and SigV4 signing name (`firehose`, `kinesis`).
    pub fn id(self) -> &'static str {
        match self {
            Service::Firehose => "firehose",
            Service::Kinesis => "kinesis",
            Service::Hydrant => "hydrant",
        }
    }

    /// The operations Hydrant serves of it.
    pub fn operations(self) -> &'static [&'static str] {
        match self {
            Service::Firehose => &OPERATIONS,
            Service::Kinesis => &KINESIS_OPERATIONS,
            Service::Hydrant => &HYDRANT_OPERATIONS,
        }
    }

    /// The prefix of its JSON protocol's `X-Amz-Target` (`Firehose_20150804.`).
    pub fn target_prefix(self) -> &'static str {
        match self {
            Service::Firehose => "Firehose_20150804.",
            Service::Kinesis => "Kinesis_20131202.",
            Service::Hydrant => "Hydrant_20261208.",
        }
    }

    /// The service an `X-Amz-Target` value calls, and the operation it names (which may not be
    /// one Hydrant serves); `None` when it has neither prefix.
    pub fn of_target(target: &str) -> Option<(Service, &str)> {
        Service::ALL.into_iter().find_map(|s| Some((s, target.strip_prefix(s.target_prefix())?)))
    }

    /// `operation` as one of [`operations`](Self::operations) (`None` if it is not one).
    pub fn operation(self, operation: &str) -> Option<&'static str> {
        self.operations().iter().copied().find(|known| *known == operation)
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::Firehose => "Firehose",
            Service::Kinesis => "Kinesis",
            Service::Hydrant => "Hydrant",
        })
    }
}

/// One entry of `actions`: a service prefix (`firehose:`, `kinesis:`) and an operation name in
/// which `*` matches any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionPattern {
    pub service: Service,
    /// The part after the prefix, lowercased.
    operation: String,
}

impl ActionPattern {
    /// Parses `firehose:<Operation>` or `kinesis:<Operation>`; the error says what is wrong and
    /// what to write.
    pub fn parse(text: &str) -> Result<Self, String> {
        let example = "write firehose:<Operation>, kinesis:<Operation> or hydrant:<Operation>, \
                       e.g. firehose:PutRecordBatch, firehose:Describe*, kinesis:Get*, \
                       hydrant:StartReplay or firehose:*";
        let lower = text.trim().to_ascii_lowercase();
        let parsed = (Service::ALL.into_iter()).find_map(|service| {
            Some((service, lower.strip_prefix(service.id())?.strip_prefix(':')?))
        });
        let Some((service, operation)) = parsed else {
            return Err(format!(
                "{text:?} is not a Firehose or Kinesis action (nor a Hydrant one); {example}"
            ));
        };
        if operation.is_empty()
            || !operation.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'*')
        {
            return Err(format!(
                "{text:?} is not a {service} action: an operation name has only letters, and \
                 `*` as a wildcard; {example}"
            ));
        }
        let pattern = Self { service, operation: operation.to_owned() };
        if !service.operations().iter().any(|op| pattern.matches(service, op)) {
            return Err(format!(
                "{text:?} matches no {service} operation; the operations are {}",
                service.operations().join(", ")
            ));
        }
        Ok(pattern)
    }

    /// Whether this pattern allows `operation` of `service` (e.g. Firehose's `PutRecordBatch`).
    pub fn matches(&self, service: Service, operation: &str) -> bool {
        self.service == service
            && glob(self.operation.as_bytes(), operation.to_ascii_lowercase().as_bytes())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_that_name_no_operation_are_refused_with_the_fix() {
        for (text, needle) in [
            ("PutRecord", "is not a Firehose or Kinesis action"),
            ("*", "is not a Firehose or Kinesis action"),
            ("s3:PutObject", "is not a Firehose or Kinesis action"),
            ("firehosex:PutRecord", "is not a Firehose or Kinesis action"),
            ("firehose:", "only letters"),
            ("firehose:Put?ecord", "only letters"),
            ("firehose:PutRecords", "matches no Firehose operation"),
            ("firehose:Create*Stream*s", "matches no Firehose operation"),
            ("kinesis:PutRecordBatch", "matches no Kinesis operation"),
        ] {
            let e = ActionPattern::parse(text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
        let e = ActionPattern::parse("firehose:PutRecords").unwrap_err();
        assert!(e.contains("PutRecordBatch"), "the message lists the operations: {e}");
    }

    #[test]
    fn a_pattern_allows_operations_of_its_own_service_only() {
        let put = ActionPattern::parse("kinesis:Put*").unwrap();
        assert!(put.matches(Service::Kinesis, "PutRecords"));
        assert!(!put.matches(Service::Firehose, "PutRecord"));
        let all = ActionPattern::parse("firehose:*").unwrap();
        assert!(!all.matches(Service::Kinesis, "GetRecords"));
    }
}
