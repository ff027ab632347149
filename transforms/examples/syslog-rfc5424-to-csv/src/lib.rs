//! Syslog to CSV for IETF syslog (RFC 5424). Each record is one message and becomes one CSV
//! row (RFC 4180 quoting) followed by a newline, always 10 columns, in the message's order:
//!
//! ```text
//! facility,severity,version,timestamp,hostname,appname,procid,msgid,structured_data,message
//! local4,notice,1,2003-10-11T22:14:15.003Z,mymachine.example.com,evntslog,,ID47,"[exampleSDID@32473 iut=""3""]",An application event
//! ```
//!
//! (no header row is written; `-` values are empty fields, the structured data is kept as
//! written). A message that is not RFC 5424 is `ProcessingFailed` with the reason. Details:
//! `log-formats/src/rfc5424.rs` and docs/transforms.md ("Blueprints").

use hydrant_transform_sdk::{Outcome, Record};

hydrant_transform_sdk::transform!(
    fn syslog_rfc5424_to_csv(record: Record) -> Outcome {
        log_formats::transform(record, log_formats::rfc5424::to_csv)
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    fn run(data: &[u8]) -> Outcome<'_> {
        syslog_rfc5424_to_csv(Record { record_id: "1", approximate_arrival_timestamp: 0, data })
    }

    #[test]
    fn a_message_becomes_a_csv_row_and_garbage_fails() {
        assert_eq!(
            run(b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\"] An application event\n"),
            Outcome::ok(
                b"local4,notice,1,2003-10-11T22:14:15.003Z,mymachine.example.com,evntslog,,ID47,\"[exampleSDID@32473 iut=\"\"3\"\"]\",An application event\n"
                    .to_vec()
            )
        );
        assert!(matches!(
            run(b"<34>1 2003-10-11T22:14:15.003Z\n"),
            Outcome::ProcessingFailed { .. }
        ));
    }
}
