//! Appends `\n` to every record that does not already end with one, so the delivered
//! objects are newline-delimited (what `AppendDelimiterToRecord` does in Firehose).

use hydrant_transform_sdk::{Outcome, Record};

hydrant_transform_sdk::transform!(
    fn append_newline(record: Record) -> Outcome {
        if record.data.ends_with(b"\n") {
            return Outcome::unchanged(&record);
        }
        let mut data = Vec::with_capacity(record.data.len() + 1);
        data.extend_from_slice(record.data);
        data.push(b'\n');
        Outcome::ok(data)
    }
);
