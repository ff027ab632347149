//! The Firehose operations Hydrant serves, and the IAM-style patterns that name them in
//! `auth.credentials[].actions`: `firehose:<Operation>` with `*` wildcards (`firehose:*`,
//! `firehose:Describe*`, `firehose:Put*`), matched case-insensitively as IAM matches them.
//!
//! What the operations are is not HTTP: the API routes them and checks a key's rights with
//! them (`api::actions`), and configuration checks parse the patterns ([`ActionPattern::parse`]),
//! so a typo never silently grants nothing (or everything).

/// Every operation Hydrant serves.
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

/// The IAM service prefix of every Firehose action.
pub const SERVICE_PREFIX: &str = "firehose:";

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
