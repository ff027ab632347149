//! Firehose's "Syslog to JSON" blueprint (`kinesis-firehose-syslog-to-json`): each record is
//! one BSD syslog line (RFC 3164) and becomes one JSON object followed by a newline:
//!
//! ```text
//! Dec  8 02:14:33 web-1 CRON[4242]: (root) CMD (run-parts /etc/cron.hourly)
//! {"timestamp":"Dec  8 02:14:33","hostname":"web-1","program":"CRON","processid":"4242","message":"(root) CMD (run-parts /etc/cron.hourly)"}
//! ```
//!
//! A line starting with `<PRI>` also gets `"facility"` and `"severity"`. A line that is not
//! RFC 3164 syslog is `ProcessingFailed` with the reason. Details:
//! `log-formats/src/rfc3164.rs` and docs/transforms.md ("Blueprints").

use hydrant_transform_sdk::{Outcome, Record};

hydrant_transform_sdk::transform!(
    fn syslog_rfc3164_to_json(record: Record) -> Outcome {
        log_formats::transform(record, log_formats::rfc3164::to_json)
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    fn run(data: &[u8]) -> Outcome<'_> {
        syslog_rfc3164_to_json(Record { record_id: "1", approximate_arrival_timestamp: 0, data })
    }

    #[test]
    fn a_line_becomes_a_json_object_and_garbage_fails() {
        assert_eq!(
            run(b"<13>Feb  5 17:32:18 10.0.0.99 myapp[77]: Use the Force\n"),
            Outcome::ok(
                b"{\"timestamp\":\"Feb  5 17:32:18\",\"hostname\":\"10.0.0.99\",\"program\":\"myapp\",\"processid\":\"77\",\"message\":\"Use the Force\",\"facility\":\"user\",\"severity\":\"notice\"}\n"
                    .to_vec()
            )
        );
        assert!(matches!(run(b"Feb  5 17:32:18\n"), Outcome::ProcessingFailed { .. }));
    }
}
