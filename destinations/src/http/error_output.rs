//! The error-output document of a record that could not be delivered to the endpoint: one
//! JSON object per record, written by the delivery layer (newline-separated) under
//! `<ErrorOutputPrefix>http-endpoint-failed/...` of the stream's `S3Configuration`.

use crate::error_output::{ErrorDocument, Extra};

/// The error-output type, as it appears in object keys (`!{firehose:error-output-type}`).
pub const ERROR_OUTPUT_TYPE: &str = "http-endpoint-failed";

/// What is known about one failed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailedRecord<'a> {
    /// Attempts made for the record's request, the first included ([`crate::GaveUp::attempts`]).
    pub attempts_made: u32,
    /// When the record arrived, epoch milliseconds.
    pub arrival_timestamp_ms: u64,
    /// The last error's code, e.g. `HttpEndpoint.DestinationException`.
    pub error_code: &'a str,
    /// The last error's message.
    pub error_message: &'a str,
    /// When the last attempt ended, epoch milliseconds.
    pub attempt_ending_timestamp_ms: u64,
    /// The record as it was sent (after any transform), not base64-encoded yet.
    pub raw_data: &'a [u8],
    /// Position inside an aggregated record; 0 for Direct PUT records.
    pub subsequence_number: u64,
    /// The record's id (Firehose: `<sequence number>.<subsequence>`).
    pub data_id: &'a str,
}

impl FailedRecord<'_> {
    /// The record's error-output document.
    pub fn document(&self) -> ErrorDocument<'_> {
        ErrorDocument {
            attempts_made: self.attempts_made,
            arrival_ms: i64::try_from(self.arrival_timestamp_ms).unwrap_or(i64::MAX),
            code: self.error_code,
            message: self.error_message,
            attempt_ending_ms: i64::try_from(self.attempt_ending_timestamp_ms).unwrap_or(i64::MAX),
            raw_data: self.raw_data,
            extra: Extra::Http {
                subsequence_number: self.subsequence_number,
                data_id: self.data_id,
            },
        }
    }
}

/// The record's JSON document, on one line without a trailing newline, with Firehose's keys
/// in Firehose's order.
pub fn error_output_json(record: &FailedRecord<'_>) -> String {
    serde_json::to_string(&record.document()).expect("plain fields serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_has_firehoses_keys_in_firehoses_order() {
        let json = error_output_json(&FailedRecord {
            attempts_made: 5,
            arrival_timestamp_ms: 1594265943615,
            error_code: "HttpEndpoint.DestinationException",
            error_message: "Received the following response from the endpoint destination. \
                            HTTP 500: {\"errorMessage\":\"down\"}",
            attempt_ending_timestamp_ms: 1594266081318,
            raw_data: b"sample raw data",
            subsequence_number: 0,
            data_id: "49607357361271740811418664280693044274821622880012337186.0",
        });
        assert_eq!(
            json,
            r#"{"attemptsMade":5,"arrivalTimestamp":1594265943615,"errorCode":"HttpEndpoint.DestinationException","errorMessage":"Received the following response from the endpoint destination. HTTP 500: {\"errorMessage\":\"down\"}","attemptEndingTimestamp":1594266081318,"rawData":"c2FtcGxlIHJhdyBkYXRh","subsequenceNumber":0,"dataId":"49607357361271740811418664280693044274821622880012337186.0"}"#
        );
        assert!(!json.contains('\n'));
    }

    #[test]
    fn binary_data_and_control_characters_stay_one_line() {
        let json = error_output_json(&FailedRecord {
            attempts_made: 1,
            arrival_timestamp_ms: 0,
            error_code: "c",
            error_message: "line\nbreak",
            attempt_ending_timestamp_ms: 0,
            raw_data: &[0, 10, 255],
            subsequence_number: 0,
            data_id: "1.0",
        });
        assert!(json.contains(r#""errorMessage":"line\nbreak""#), "{json}");
        assert!(json.contains(r#""rawData":"AAr/""#), "{json}");
        assert!(!json.contains('\n'));
    }
}
