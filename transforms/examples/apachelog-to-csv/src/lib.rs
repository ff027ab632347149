//! Firehose's "Apache Log to CSV" blueprint (`kinesis-firehose-apachelog-to-csv`): each record
//! is one Apache access log line, Common or Combined Log Format, and becomes one CSV row
//! (RFC 4180 quoting) followed by a newline, always 9 columns:
//!
//! ```text
//! host,ident,authuser,datetime,request,response,bytes,referrer,agent
//! 127.0.0.1,-,frank,10/Oct/2000:13:55:36 -0700,GET /apache_pb.gif HTTP/1.0,200,2326,,
//! ```
//!
//! (no header row is written). A line that is not an access log line is `ProcessingFailed`
//! with the reason. Details: `log-formats/src/apache.rs` and docs/transforms.md ("Blueprints").

use hydrant_transform_sdk::{Outcome, Record};

hydrant_transform_sdk::transform!(
    fn apachelog_to_csv(record: Record) -> Outcome {
        log_formats::transform(record, log_formats::apache::to_csv)
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    fn run(data: &[u8]) -> Outcome<'_> {
        apachelog_to_csv(Record { record_id: "1", approximate_arrival_timestamp: 0, data })
    }

    #[test]
    fn a_line_becomes_a_csv_row_and_garbage_fails() {
        let line = b"10.1.2.3 - - [08/Dec/2026:02:14:33 +0000] \"GET / HTTP/1.1\" 200 15\r\n";
        assert_eq!(
            run(line),
            Outcome::ok(
                b"10.1.2.3,-,-,08/Dec/2026:02:14:33 +0000,GET / HTTP/1.1,200,15,,\n".to_vec()
            )
        );
        assert!(matches!(run(b"two\nlines\n"), Outcome::ProcessingFailed { .. }));
    }
}
