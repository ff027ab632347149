//! Firehose's "Syslog to CSV" blueprint (`kinesis-firehose-syslog-to-csv`): each record is one
//! BSD syslog line (RFC 3164) and becomes one CSV row (RFC 4180 quoting) followed by a
//! newline, always 7 columns:
//!
//! ```text
//! timestamp,hostname,program,processid,message,facility,severity
//! Dec  8 02:14:33,web-1,CRON,4242,(root) CMD (run-parts /etc/cron.hourly),,
//! ```
//!
//! (no header row is written; `facility` and `severity` are filled when the line starts with
//! `<PRI>`). A line that is not RFC 3164 syslog is `ProcessingFailed` with the reason.
//! Details: `log-formats/src/rfc3164.rs` and docs/transforms.md ("Blueprints").

use hydrant_transform_sdk::{Outcome, Record};

hydrant_transform_sdk::transform!(
    fn syslog_rfc3164_to_csv(record: Record) -> Outcome {
        log_formats::transform(record, log_formats::rfc3164::to_csv)
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    fn run(data: &[u8]) -> Outcome<'_> {
        syslog_rfc3164_to_csv(Record { record_id: "1", approximate_arrival_timestamp: 0, data })
    }

    #[test]
    fn a_line_becomes_a_csv_row_and_garbage_fails() {
        assert_eq!(
            run(b"<13>Feb  5 17:32:18 10.0.0.99 myapp[77]: Use the Force, Luke\n"),
            Outcome::ok(
                b"Feb  5 17:32:18,10.0.0.99,myapp,77,\"Use the Force, Luke\",user,notice\n"
                    .to_vec()
            )
        );
        assert!(matches!(run(b"\xff\xfe\n"), Outcome::ProcessingFailed { .. }));
    }
}
