//! What the Firehose blueprint transforms (`examples/apachelog-to-*`, `examples/syslog-*`) share:
//! strict parsers for Apache access logs (Common and Combined Log Format), BSD syslog
//! (RFC 3164) and IETF syslog (RFC 5424), and the JSON and CSV writers their output goes
//! through.
//!
//! Every parser takes one log line and returns either the parsed fields or an [`Error`] that
//! says what is wrong with the line; nothing here panics on any input (the transforms turn an
//! error into `ProcessingFailed`, which sends the original record to the error output). No
//! regular expressions: each format is a hand-written parser over the line's bytes.

pub mod apache;
mod cursor;
pub mod out;
pub mod pri;
pub mod rfc3164;
pub mod rfc5424;
pub mod time;

use hydrant_transform_sdk::{Outcome, Record};

/// Why a line could not be parsed; the text goes to the error output's `errorMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl Error {
    pub fn new(message: impl Into<String>) -> Self {
        Error(message.into())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// The record as one line of text: UTF-8, one trailing `\n` or `\r\n` removed. A record that
/// still holds a line break after that is several lines, which no blueprint accepts (the AWS
/// blueprints silently ignore everything after the first line; here the record fails instead,
/// so nothing is lost without a trace).
pub fn line(data: &[u8]) -> Result<&str> {
    let text = std::str::from_utf8(data).map_err(|e| {
        Error::new(format!("record is not UTF-8 text (invalid byte at offset {})", e.valid_up_to()))
    })?;
    let text = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(text);
    if text.contains(['\n', '\r']) {
        return Err(Error::new("record holds more than one line"));
    }
    if text.is_empty() {
        return Err(Error::new("record is an empty line"));
    }
    Ok(text)
}

/// Runs `convert` over the record's line and turns the result into the record's outcome: the
/// new bytes, or `ProcessingFailed` with the reason.
pub fn transform<'a>(record: Record<'a>, convert: fn(&str) -> Result<Vec<u8>>) -> Outcome<'a> {
    match line(record.data).and_then(convert) {
        Ok(data) => Outcome::ok(data),
        Err(e) => Outcome::failed(e.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_loses_one_trailing_newline_and_nothing_else() {
        assert_eq!(line(b"abc\n"), Ok("abc"));
        assert_eq!(line(b"abc\r\n"), Ok("abc"));
        assert_eq!(line(b"abc"), Ok("abc"));
        assert_eq!(line(b" abc "), Ok(" abc "));
    }

    #[test]
    fn several_lines_empty_lines_and_non_utf8_are_errors() {
        assert_eq!(line(b"a\nb\n"), Err(Error::new("record holds more than one line")));
        assert_eq!(line(b"a\rb"), Err(Error::new("record holds more than one line")));
        assert_eq!(line(b"abc\n\n"), Err(Error::new("record holds more than one line")));
        assert_eq!(line(b"\n"), Err(Error::new("record is an empty line")));
        assert_eq!(line(b""), Err(Error::new("record is an empty line")));
        assert_eq!(
            line(b"ab\xffc"),
            Err(Error::new("record is not UTF-8 text (invalid byte at offset 2)"))
        );
    }

    #[test]
    fn transform_maps_errors_to_processing_failed() {
        let record = Record { record_id: "1", approximate_arrival_timestamp: 0, data: b"x\n" };
        assert_eq!(
            transform(record, |l| Ok(l.to_uppercase().into_bytes())),
            Outcome::ok(b"X".to_vec())
        );
        assert_eq!(transform(record, |_| Err(Error::new("no"))), Outcome::failed("no"));
        let bad = Record { data: b"\xff", ..record };
        assert!(matches!(transform(bad, |l| Ok(l.into())), Outcome::ProcessingFailed { .. }));
    }
}
