//! Syslog to JSON for IETF syslog (RFC 5424), the format of rsyslog's and syslog-ng's
//! `RFC5424` templates and of most syslog-over-TCP senders. Each record is one message and
//! becomes one JSON object followed by a newline:
//!
//! ```text
//! <165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3"] An application event
//! {"facility":"local4","severity":"notice","version":1,"timestamp":"2003-10-11T22:14:15.003Z","hostname":"mymachine.example.com","appname":"evntslog","procid":null,"msgid":"ID47","structured_data":{"exampleSDID@32473":{"iut":"3"}},"message":"An application event"}
//! ```
//!
//! A message that is not RFC 5424 is `ProcessingFailed` with the reason. Details:
//! `log-formats/src/rfc5424.rs` and docs/transforms.md ("Blueprints").

use hydrant_transform_sdk::{Outcome, Record};

hydrant_transform_sdk::transform!(
    fn syslog_rfc5424_to_json(record: Record) -> Outcome {
        log_formats::transform(record, log_formats::rfc5424::to_json)
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    fn run(data: &[u8]) -> Outcome<'_> {
        syslog_rfc5424_to_json(Record { record_id: "1", approximate_arrival_timestamp: 0, data })
    }

    #[test]
    fn a_message_becomes_a_json_object_and_garbage_fails() {
        assert_eq!(
            run(b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\"] An application event\n"),
            Outcome::ok(
                b"{\"facility\":\"local4\",\"severity\":\"notice\",\"version\":1,\"timestamp\":\"2003-10-11T22:14:15.003Z\",\"hostname\":\"mymachine.example.com\",\"appname\":\"evntslog\",\"procid\":null,\"msgid\":\"ID47\",\"structured_data\":{\"exampleSDID@32473\":{\"iut\":\"3\"}},\"message\":\"An application event\"}\n"
                    .to_vec()
            )
        );
        assert!(matches!(
            run(b"<34>Oct 11 22:14:15 mymachine su: rfc 3164\n"),
            Outcome::ProcessingFailed { .. }
        ));
    }
}
