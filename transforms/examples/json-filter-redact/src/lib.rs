//! Drops JSON records whose `DROP_FIELD` has one of `DROP_VALUES`, and replaces the fields in
//! `REDACT_FIELDS` with `"[REDACTED]"`. A record that is not a JSON object fails
//! (`ProcessingFailed`). A record with nothing to redact is passed through byte for byte;
//! otherwise it is re-serialised compactly, key order kept, trailing newline kept.
//!
//! Edit the constants and rebuild: a module is its own configuration.

use hydrant_transform_sdk::{Outcome, Record};
use serde_json::Value;

/// Field whose value decides whether a record is dropped (`a.b` reaches into objects).
const DROP_FIELD: &str = "level";
/// Values of `DROP_FIELD` that drop the record.
const DROP_VALUES: &[&str] = &["debug", "trace"];
/// Fields to redact (`a.b` reaches into objects). Missing fields are ignored.
const REDACT_FIELDS: &[&str] = &["password", "user.email", "card_number"];
/// What a redacted field is set to.
const REDACTED: &str = "[REDACTED]";

fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

fn lookup_mut<'v>(value: &'v mut Value, path: &str) -> Option<&'v mut Value> {
    path.split('.').try_fold(value, |v, key| v.get_mut(key))
}

hydrant_transform_sdk::transform!(
    fn filter_redact(record: Record) -> Outcome {
        let mut doc: Value = match serde_json::from_slice(record.data) {
            Ok(doc @ Value::Object(_)) => doc,
            Ok(_) => return Outcome::failed("record is not a JSON object"),
            Err(e) => return Outcome::failed(format!("record is not JSON: {e}")),
        };
        if let Some(Value::String(v)) = lookup(&doc, DROP_FIELD) {
            if DROP_VALUES.contains(&v.as_str()) {
                return Outcome::dropped();
            }
        }
        let mut redacted = false;
        for path in REDACT_FIELDS {
            if let Some(field) = lookup_mut(&mut doc, path) {
                *field = Value::String(REDACTED.to_string());
                redacted = true;
            }
        }
        if !redacted {
            return Outcome::unchanged(&record);
        }
        let mut out = Vec::with_capacity(record.data.len());
        serde_json::to_writer(&mut out, &doc).expect("a Value always serialises");
        if record.data.ends_with(b"\n") {
            out.push(b'\n');
        }
        Outcome::ok(out)
    }
);
