//! `AppendDelimiterToRecord`: a delimiter after every delivered record.
//!
//! Without parameters the delimiter is a newline. The optional `Delimiter` parameter is read
//! the way Firehose configurations write it: as an escaped string, so the two characters
//! `\n` (YAML `'\n'` or `"\\n"`, HCL `"\\n"`, JSON `"\\n"`) mean one newline byte. Supported
//! escapes: `\n` (LF), `\t` (tab), `\r` (CR) and `\\` (one backslash). Every other character is
//! taken literally as its UTF-8 bytes, so `,`, `|`, `\r\n` or `<EOR>` all work, and a real
//! newline character in the value (YAML `"\n"`) is a newline too. A backslash followed by
//! anything else, or a lone trailing backslash, is a configuration error (rather than a guess).
//!
//! Note that this differs from `RecordDeAggregation`'s `Delimiter`, which Firehose takes as
//! base64.

use bytes::{Bytes, BytesMut};

/// The delimiter used when `Delimiter` is not given.
pub const DEFAULT_DELIMITER: &[u8] = b"\n";

/// Appends a fixed delimiter to records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendDelimiter {
    delimiter: Vec<u8>,
}

impl Default for AppendDelimiter {
    fn default() -> Self {
        Self { delimiter: DEFAULT_DELIMITER.to_vec() }
    }
}

impl AppendDelimiter {
    /// A delimiter given as bytes. It must not be empty.
    pub fn new(delimiter: Vec<u8>) -> Result<Self, String> {
        if delimiter.is_empty() {
            return Err("the delimiter is empty; leave Delimiter out for a newline".into());
        }
        Ok(Self { delimiter })
    }

    /// A delimiter given as an escaped string (the `Delimiter` parameter value).
    pub fn from_escaped(value: &str) -> Result<Self, String> {
        Self::new(unescape(value)?)
    }

    /// The delimiter bytes.
    pub fn delimiter(&self) -> &[u8] {
        &self.delimiter
    }

    /// `record` followed by the delimiter.
    pub fn apply(&self, record: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(record.len() + self.delimiter.len());
        out.extend_from_slice(record);
        out.extend_from_slice(&self.delimiter);
        out.freeze()
    }

    /// Append the delimiter to a record being built in place.
    pub fn append_to(&self, record: &mut Vec<u8>) {
        record.extend_from_slice(&self.delimiter);
    }
}

/// Decode the escapes `\n`, `\t`, `\r`, `\\`; everything else is literal.
pub fn unescape(value: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('r') => out.push(b'\r'),
            Some('\\') => out.push(b'\\'),
            Some(other) => {
                return Err(format!(
                "unsupported escape \\{other} in {value:?}; supported escapes are \\n, \\t, \\r \
                     and \\\\ (write \\\\ for a literal backslash)"
            ))
            }
            None => {
                return Err(format!(
                    "{value:?} ends with a lone backslash; write \\\\ for a literal backslash"
                ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_delimiter_parameter_a_newline_is_appended() {
        let d = AppendDelimiter::default();
        assert_eq!(&d.apply(b"{\"a\":1}")[..], b"{\"a\":1}\n");
    }

    #[test]
    fn the_escaped_newline_of_firehose_configs_means_one_newline_byte() {
        let d = AppendDelimiter::from_escaped("\\n").unwrap();
        assert_eq!(d.delimiter(), b"\n");
    }

    #[test]
    fn tab_carriage_return_and_backslash_escapes_are_decoded() {
        assert_eq!(unescape("\\t").unwrap(), b"\t");
        assert_eq!(unescape("\\r\\n").unwrap(), b"\r\n");
        assert_eq!(unescape("a\\\\b").unwrap(), b"a\\b");
    }

    #[test]
    fn other_text_is_taken_literally_including_real_newlines_and_unicode() {
        assert_eq!(unescape(",").unwrap(), b",");
        assert_eq!(unescape("<EOR>").unwrap(), b"<EOR>");
        assert_eq!(unescape("\n").unwrap(), b"\n");
        assert_eq!(unescape("§").unwrap(), "§".as_bytes());
    }

    #[test]
    fn an_unknown_escape_is_rejected_with_the_supported_list() {
        let err = unescape("\\x").unwrap_err();
        assert!(err.contains("unsupported escape \\x"), "{err}");
        assert!(err.contains("\\n, \\t, \\r"), "{err}");
    }

    #[test]
    fn a_trailing_lone_backslash_is_rejected() {
        let err = unescape("ab\\").unwrap_err();
        assert!(err.contains("lone backslash"), "{err}");
    }

    #[test]
    fn an_empty_delimiter_is_rejected() {
        assert!(AppendDelimiter::new(Vec::new()).is_err());
        assert!(AppendDelimiter::from_escaped("").is_err());
    }

    #[test]
    fn a_multi_byte_delimiter_is_appended_whole_and_in_place() {
        let d = AppendDelimiter::from_escaped("\\r\\n").unwrap();
        let mut rec = b"x".to_vec();
        d.append_to(&mut rec);
        assert_eq!(rec, b"x\r\n");
        assert_eq!(&d.apply(b"")[..], b"\r\n");
    }
}
