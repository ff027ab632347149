//! Firehose's "General Firehose Processing" blueprint (`kinesis-firehose-process-record`): the
//! starting point for a transform of your own. As shipped it is the identity, like the AWS
//! blueprint, for text records: every UTF-8 record is delivered unchanged, and a record that
//! is not UTF-8 is `ProcessingFailed` (decoding it is the template's first step).
//!
//! To write your own, copy this crate (`cp -r examples/process-record examples/my-transform`,
//! rename the package in its Cargo.toml), change [`change`], and build with `./build.sh`. The
//! three steps, per record:
//!
//! 1. [`decode`]: bytes to the value you work on (here `&str`; parse JSON, CSV, ... there);
//! 2. [`change`]: your logic, deciding the record's fate: [`Change::Keep`] (with the new
//!    value and optional partition keys for `!{partitionKeyFromLambda:key}` prefixes),
//!    [`Change::Drop`] (discarded, counts as success) or [`Change::Fail`] (the original
//!    record goes to the `processing-failed` error output with your message);
//! 3. [`encode`]: the value back to bytes (add the newline your destination expects here).
//!
//! Never panic for one bad record: a panic fails the whole batch (retried, then every record
//! of it goes to the error output as `Lambda.FunctionError`).

use hydrant_transform_sdk::{Outcome, Record};

/// What [`change`] decided for one record.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// Deliver this value, with these partition keys (may be empty).
    Keep(String, Vec<(String, String)>),
    /// Discard the record.
    Drop,
    /// Send the original record to the error output, with this message.
    Fail(String),
}

/// Step 1: the record's bytes as the value `change` works on.
fn decode(data: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(data)
        .map_err(|e| format!("record is not UTF-8 (at byte {})", e.valid_up_to()))
}

/// Step 2: your logic. `arrival_ms` is when Hydrant accepted the record (epoch milliseconds).
/// As shipped: the identity.
fn change(text: &str, _arrival_ms: i64) -> Change {
    // Examples of what goes here:
    //   if text.trim().is_empty() { return Change::Drop; }
    //   let Ok(doc) = serde_json::from_str::<serde_json::Value>(text) else {
    //       return Change::Fail("not JSON".into());
    //   };
    //   Change::Keep(text.to_uppercase(), vec![("customer".into(), "acme".into())])
    Change::Keep(text.to_owned(), Vec::new())
}

/// Step 3: the changed value as the bytes to deliver.
fn encode(value: String) -> Vec<u8> {
    value.into_bytes()
}

fn process_record(record: Record) -> Outcome {
    let text = match decode(record.data) {
        Ok(text) => text,
        Err(message) => return Outcome::failed(message),
    };
    match change(text, record.approximate_arrival_timestamp) {
        Change::Keep(value, keys) => keys
            .into_iter()
            .fold(Outcome::ok(encode(value)), |o, (k, v)| o.with_partition_key(k, v)),
        Change::Drop => Outcome::dropped(),
        Change::Fail(message) => Outcome::failed(message),
    }
}

hydrant_transform_sdk::transform!(process_record);

#[cfg(test)]
mod tests {
    use super::*;

    fn run(data: &[u8]) -> Outcome<'_> {
        process_record(Record { record_id: "1", approximate_arrival_timestamp: 0, data })
    }

    #[test]
    fn as_shipped_it_is_the_identity_for_text() {
        for data in [&b"{\"a\":1}\n"[..], b"plain text", b"", b"\xc3\xa9\n"] {
            assert_eq!(run(data), Outcome::ok(data.to_vec()));
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_fail_the_record() {
        assert_eq!(run(b"ok \xff"), Outcome::failed("record is not UTF-8 (at byte 3)"));
    }

    #[test]
    fn every_change_maps_to_its_outcome() {
        assert_eq!(change("x", 0), Change::Keep("x".into(), vec![]));
        let keep = Change::Keep("y".into(), vec![("k".into(), "v".into())]);
        let outcome = match keep {
            Change::Keep(v, keys) => keys
                .into_iter()
                .fold(Outcome::ok(encode(v)), |o, (k, v)| o.with_partition_key(k, v)),
            _ => unreachable!(),
        };
        assert_eq!(outcome, Outcome::ok(b"y".to_vec()).with_partition_key("k", "v"));
    }
}
