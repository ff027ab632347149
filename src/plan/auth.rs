//! `auth:`: the access keys of `mode: sigv4`.

use std::collections::HashMap;

use crate::config::{AuthConfig, Config, Issue};

/// `auth:` with `mode: sigv4`: at least one key, unique ids that fit in a SigV4 `Credential=`,
/// non-empty secrets, and allow-lists of valid stream names.
pub(super) fn check_auth(config: &Config, issues: &mut Vec<Issue>) {
    let AuthConfig::Sigv4 { credentials } = &config.auth else { return };
    if credentials.is_empty() {
        issues.push(Issue::new(
            "auth.credentials",
            "sigv4 needs at least one access key: add credentials: [{ access_key_id: ..., \
             secret_access_key: ${HYDRANT_SECRET} }]",
        ));
    }
    let mut first_use: HashMap<&str, usize> = HashMap::new();
    for (i, credential) in credentials.iter().enumerate() {
        let path = format!("auth.credentials[{i}]");
        let id = credential.access_key_id.as_str();
        if id.is_empty()
            || !id.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'/' | b',' | b'='))
        {
            issues.push(Issue::new(
                format!("{path}.access_key_id"),
                format!(
                    "{id:?} cannot appear in a SigV4 Credential; use letters and digits, e.g. \
                     AKIAHYDRANTEXAMPLE1"
                ),
            ));
        } else if let Some(first) = first_use.insert(id, i) {
            issues.push(Issue::new(
                format!("{path}.access_key_id"),
                format!(
                    "{id:?} is already the access key of auth.credentials[{first}]; access key \
                     ids must be unique"
                ),
            ));
        }
        if credential.secret_access_key.expose().is_empty() {
            // Never echo the value, not even an empty one's surroundings.
            issues.push(Issue::new(
                format!("{path}.secret_access_key"),
                "is empty; give the secret, preferably as ${ENV_VAR}",
            ));
        }
        if let Some(streams) = &credential.streams {
            if streams.is_empty() {
                issues.push(Issue::new(
                    format!("{path}.streams"),
                    "is empty, so this key could not use any stream; list the streams it may \
                     use, or remove `streams` to allow every stream",
                ));
            }
            for (j, name) in streams.iter().enumerate() {
                if !crate::names::is_valid_stream_name(name) {
                    issues.push(Issue::new(
                        format!("{path}.streams[{j}]"),
                        format!(
                            "{name:?} is not a delivery stream name; names are 1-64 characters \
                             of letters, digits, `_`, `.` and `-`"
                        ),
                    ));
                }
            }
        }
        if let Some(actions) = &credential.actions {
            if actions.is_empty() {
                issues.push(Issue::new(
                    format!("{path}.actions"),
                    "is empty, so this key could call nothing; list what it may call (e.g. \
                     [\"firehose:Put*\"]), or remove `actions` for the default (Firehose's \
                     PutRecord, PutRecordBatch, DescribeDeliveryStream, ListDeliveryStreams; \
                     Kinesis' PutRecord, PutRecords, DescribeStream, DescribeStreamSummary, \
                     ListStreams, ListShards)",
                ));
            }
            for (j, action) in actions.iter().enumerate() {
                if let Err(message) = crate::operations::ActionPattern::parse(action) {
                    issues.push(Issue::new(format!("{path}.actions[{j}]"), message));
                }
            }
        }
    }
}
