//! Firehose's "Apache Log to JSON" blueprint (`kinesis-firehose-apachelog-to-json`): each
//! record is one Apache access log line, Common or Combined Log Format, and becomes one JSON
//! object followed by a newline:
//!
//! ```text
//! 127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326
//! {"host":"127.0.0.1","ident":"-","authuser":"frank","request":"GET /apache_pb.gif HTTP/1.0","response":200,"bytes":2326,"verb":"GET","@timestamp":"2000-10-10T13:55:36.000Z","timezone":"-0700","@timestamp_utc":"2000-10-10T20:55:36.000Z"}
//! ```
//!
//! A Combined line adds `"referrer"` and `"agent"`. A line that is not an access log line is
//! `ProcessingFailed` with the reason. Fields and differences from the AWS blueprint:
//! `log-formats/src/apache.rs` and docs/transforms.md ("Blueprints").

use hydrant_transform_sdk::{Outcome, Record};

hydrant_transform_sdk::transform!(
    fn apachelog_to_json(record: Record) -> Outcome {
        log_formats::transform(record, log_formats::apache::to_json)
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    fn run(data: &[u8]) -> Outcome<'_> {
        apachelog_to_json(Record { record_id: "1", approximate_arrival_timestamp: 0, data })
    }

    #[test]
    fn a_line_becomes_a_json_object_and_garbage_fails() {
        let line = b"10.1.2.3 - - [08/Dec/2026:02:14:33 +0000] \"GET / HTTP/1.1\" 200 15 \"-\" \"curl/8.5.0\"\n";
        let Outcome::Ok { data, partition_keys } = run(line) else { panic!("{:?}", run(line)) };
        assert!(partition_keys.is_empty());
        let v: serde_json::Value = serde_json::from_slice(&data).unwrap();
        assert_eq!(
            (v["host"].as_str(), v["bytes"].as_u64(), v["agent"].as_str()),
            (Some("10.1.2.3"), Some(15), Some("curl/8.5.0"))
        );
        assert!(matches!(run(b"GET / HTTP/1.1\n"), Outcome::ProcessingFailed { .. }));
    }
}
