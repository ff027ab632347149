//! Turns one CSV line per record (no header line) into a JSON object per record, followed by
//! a newline. Column names come from `COLUMNS`; a field that looks like a JSON number is
//! written as a number, every other field as a string. Quoted fields (`"a, b"`, with `""` for
//! a quote) are understood. A line with the wrong number of fields fails the record.

use hydrant_transform_sdk::{Outcome, Record};
use serde_json::{Map, Number, Value};

/// Names of the columns, in order.
const COLUMNS: &[&str] = &["id", "name", "amount", "currency"];

/// Splits one CSV line (RFC 4180 quoting) into fields.
fn split(line: &str) -> Result<Vec<String>, &'static str> {
    let mut fields = Vec::with_capacity(COLUMNS.len());
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
            }
            (false, ',') => {
                fields.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field");
    }
    fields.push(field);
    Ok(fields)
}

fn to_value(field: String) -> Value {
    match field.parse::<Number>() {
        Ok(n) if !field.starts_with('+') => Value::Number(n),
        _ => Value::String(field),
    }
}

hydrant_transform_sdk::transform!(
    fn csv_to_json(record: Record) -> Outcome {
        let Ok(text) = std::str::from_utf8(record.data) else {
            return Outcome::failed("record is not UTF-8");
        };
        let line = text.trim_end_matches(['\r', '\n']);
        let fields = match split(line) {
            Ok(f) => f,
            Err(e) => return Outcome::failed(e),
        };
        if fields.len() != COLUMNS.len() {
            return Outcome::failed(format!(
                "expected {} fields, got {}",
                COLUMNS.len(),
                fields.len()
            ));
        }
        let object: Map<String, Value> =
            COLUMNS.iter().map(|c| c.to_string()).zip(fields.into_iter().map(to_value)).collect();
        let mut out =
            serde_json::to_vec(&Value::Object(object)).expect("a Value always serialises");
        out.push(b'\n');
        Outcome::ok(out)
    }
);
