//! Dynamic partitioning from a transform: sets the partition key `customer_id` from the
//! record's JSON field of the same name, plus `year`, `month` and `day` from the record's
//! arrival time (UTC), for a prefix such as
//! `customer_id=!{partitionKeyFromLambda:customer_id}/dt=!{partitionKeyFromLambda:year}-!{partitionKeyFromLambda:month}-!{partitionKeyFromLambda:day}/`.
//! The data is delivered unchanged. A record without the field, or not JSON, fails.

use hydrant_transform_sdk::{Outcome, Record};
use serde_json::Value;

/// JSON field (top level) whose value becomes the partition key of the same name.
const KEY_FIELD: &str = "customer_id";

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

hydrant_transform_sdk::transform!(
    fn partition(record: Record) -> Outcome {
        let doc: Value = match serde_json::from_slice(record.data) {
            Ok(doc) => doc,
            Err(e) => return Outcome::failed(format!("record is not JSON: {e}")),
        };
        let key = match doc.get(KEY_FIELD) {
            Some(Value::String(s)) => s.clone(),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
            _ => return Outcome::failed(format!("record has no scalar field {KEY_FIELD}")),
        };
        let (y, m, d) =
            civil_from_days(record.approximate_arrival_timestamp.div_euclid(86_400_000));
        Outcome::unchanged(&record)
            .with_partition_key(KEY_FIELD, key)
            .with_partition_key("year", format!("{y:04}"))
            .with_partition_key("month", format!("{m:02}"))
            .with_partition_key("day", format!("{d:02}"))
    }
);
