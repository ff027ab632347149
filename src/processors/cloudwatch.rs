//! CloudWatch Logs records: the `Decompression` and `CloudWatchLogProcessing` processors.
//!
//! A CloudWatch Logs subscription sends each batch of log events as one record: a gzip'd JSON
//! document `{"messageType": "DATA_MESSAGE" | "CONTROL_MESSAGE", "owner", "logGroup",
//! "logStream", "subscriptionFilters", "logEvents": [{"id", "timestamp", "message"}]}`.
//!
//! - `Decompression` (`CompressionFormat: GZIP`, the only format) turns the record into the
//!   document. A record that does not decompress goes to the error output as
//!   `decompression-failed`, as it came in (Firehose does the same). Decompressed records are
//!   capped at [`MAX_DECOMPRESSED_BYTES`]: a small hostile record cannot make the server hold
//!   gigabytes (a real CloudWatch Logs batch is at most about 1 MB).
//! - `CloudWatchLogProcessing` drops the control messages CloudWatch Logs sends to check that
//!   the destination is reachable, and with `DataMessageExtraction: true` makes each log event
//!   its own record holding only its `message`, followed by a newline (what Firehose delivers).
//!   Without extraction a data message is delivered as the whole document.
//!
//! At the API, a stream with `Decompression` takes only gzip'd records: anything else is
//! answered with `InvalidSourceException`, as Firehose answers requests that do not come from
//! CloudWatch Logs ([`looks_like_cloudwatch_logs`]).

use std::io::Read;

use bytes::Bytes;
use flate2::read::MultiGzDecoder;
use serde::Deserialize;

/// Largest record `Decompression` produces.
pub const MAX_DECOMPRESSED_BYTES: u64 = 16 << 20;

/// Why a CloudWatch Logs record could not be unpacked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnpackError {
    #[error("the record is not valid gzip: {0}")]
    NotGzip(String),
    #[error("the record decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes")]
    TooLarge,
    #[error("the decompressed record is not a CloudWatch Logs message: {0}")]
    NotCloudWatchLogs(String),
}

impl UnpackError {
    /// The error output's `errorCode`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotGzip(_) | Self::TooLarge => "Decompression.Failed",
            Self::NotCloudWatchLogs(_) => "CloudWatchLogProcessing.MalformedMessage",
        }
    }

    /// Whether the record goes to `decompression-failed` (else `processing-failed`).
    pub fn is_decompression(&self) -> bool {
        matches!(self, Self::NotGzip(_) | Self::TooLarge)
    }
}

/// Whether `record` can be a CloudWatch Logs subscription record (gzip's magic number).
pub fn looks_like_cloudwatch_logs(record: &[u8]) -> bool {
    record.starts_with(&[0x1f, 0x8b])
}

/// The two processors of a stream, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloudWatchLogs {
    /// `Decompression` is on.
    pub decompress: bool,
    /// `CloudWatchLogProcessing` is on: `Some(DataMessageExtraction)`.
    pub processing: Option<bool>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(rename = "messageType", borrow)]
    message_type: std::borrow::Cow<'a, str>,
    #[serde(rename = "logEvents", default)]
    log_events: Vec<LogEvent<'a>>,
}

#[derive(Deserialize)]
struct LogEvent<'a> {
    #[serde(borrow)]
    message: std::borrow::Cow<'a, str>,
}

impl CloudWatchLogs {
    /// The records one incoming record becomes: none (a control message), the decompressed
    /// document, or one per log event.
    pub fn unpack(&self, record: Bytes) -> Result<Vec<Bytes>, UnpackError> {
        let data = if self.decompress { decompress(&record)? } else { record };
        let Some(extract) = self.processing else { return Ok(vec![data]) };
        let message: Message<'_> = serde_json::from_slice(&data)
            .map_err(|e| UnpackError::NotCloudWatchLogs(e.to_string()))?;
        match message.message_type.as_ref() {
            "CONTROL_MESSAGE" => Ok(Vec::new()),
            "DATA_MESSAGE" if extract => Ok(message
                .log_events
                .iter()
                .map(|event| {
                    let mut line = Vec::with_capacity(event.message.len() + 1);
                    line.extend_from_slice(event.message.as_bytes());
                    line.push(b'\n');
                    Bytes::from(line)
                })
                .collect()),
            "DATA_MESSAGE" => Ok(vec![data.clone()]),
            other => Err(UnpackError::NotCloudWatchLogs(format!(
                "messageType is {other:?}; expected DATA_MESSAGE or CONTROL_MESSAGE"
            ))),
        }
    }
}

fn decompress(record: &[u8]) -> Result<Bytes, UnpackError> {
    if !looks_like_cloudwatch_logs(record) {
        return Err(UnpackError::NotGzip("it does not start with gzip's magic number".into()));
    }
    let mut out = Vec::with_capacity(record.len() * 4);
    MultiGzDecoder::new(record)
        .take(MAX_DECOMPRESSED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| UnpackError::NotGzip(e.to_string()))?;
    if out.len() as u64 > MAX_DECOMPRESSED_BYTES {
        return Err(UnpackError::TooLarge);
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Bytes {
        let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        Bytes::from(encoder.finish().unwrap())
    }

    const DATA: &str = r#"{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"/aws/lambda/f","logStream":"s","subscriptionFilters":["all"],"logEvents":[{"id":"1","timestamp":1,"message":"first line"},{"id":"2","timestamp":2,"message":"{\"level\":\"error\"}"}]}"#;
    const CONTROL: &str = r#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1,"message":"CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}"#;

    const EXTRACT: CloudWatchLogs = CloudWatchLogs { decompress: true, processing: Some(true) };

    #[test]
    fn extraction_makes_each_log_event_a_record_of_its_message() {
        let records = EXTRACT.unpack(gzip(DATA.as_bytes())).unwrap();
        assert_eq!(records, [Bytes::from("first line\n"), Bytes::from("{\"level\":\"error\"}\n")]);
    }

    #[test]
    fn control_messages_are_dropped_and_documents_kept_whole_without_extraction() {
        assert!(EXTRACT.unpack(gzip(CONTROL.as_bytes())).unwrap().is_empty());
        let whole = CloudWatchLogs { decompress: true, processing: Some(false) };
        assert_eq!(whole.unpack(gzip(DATA.as_bytes())).unwrap(), [Bytes::from(DATA)]);
        let only_gunzip = CloudWatchLogs { decompress: true, processing: None };
        assert_eq!(only_gunzip.unpack(gzip(CONTROL.as_bytes())).unwrap(), [Bytes::from(CONTROL)]);
    }

    #[test]
    fn records_that_are_not_cloudwatch_logs_fail_with_their_reason() {
        let e = EXTRACT.unpack(Bytes::from_static(b"plain text")).unwrap_err();
        assert!(e.is_decompression() && e.code() == "Decompression.Failed", "{e}");
        let mut truncated = gzip(DATA.as_bytes()).to_vec();
        truncated.truncate(truncated.len() / 2);
        assert!(EXTRACT.unpack(Bytes::from(truncated)).unwrap_err().is_decompression());
        let e = EXTRACT.unpack(gzip(b"{\"hello\":1}")).unwrap_err();
        assert_eq!(e.code(), "CloudWatchLogProcessing.MalformedMessage", "{e}");
        let e = EXTRACT.unpack(gzip(br#"{"messageType":"OTHER"}"#)).unwrap_err();
        assert!(e.to_string().contains("OTHER"), "{e}");
    }

    #[test]
    fn a_decompression_bomb_is_refused_without_holding_it() {
        let bomb = gzip(&vec![b'a'; (MAX_DECOMPRESSED_BYTES + 10) as usize]);
        assert!(bomb.len() < 100_000, "{} bytes", bomb.len());
        assert_eq!(EXTRACT.unpack(bomb).unwrap_err(), UnpackError::TooLarge);
    }
}
