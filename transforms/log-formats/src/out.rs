//! The two output forms: one JSON object per line, and one CSV row (RFC 4180) per line.
//!
//! Both end the record with `\n`, so that the objects Firehose writes (records concatenated)
//! are newline-delimited JSON or a CSV file that Athena, Spark or `COPY` read as they are.

/// Builds one JSON object, keys in the order they are added, then `}\n`.
pub struct Json {
    buf: Vec<u8>,
    empty: bool,
}

impl Default for Json {
    fn default() -> Self {
        Self::new()
    }
}

impl Json {
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.push(b'{');
        Json { buf, empty: true }
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.buf.push(b',');
        }
        self.empty = false;
        string(&mut self.buf, key);
        self.buf.push(b':');
    }

    /// `"key":"value"`.
    pub fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        string(&mut self.buf, value);
        self
    }

    /// `"key":"value"`, or `"key":null` for `None`.
    pub fn str_or_null(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        match value {
            Some(v) => self.str(key, v),
            None => self.null(key),
        }
    }

    /// `"key":"value"`, or nothing at all for `None`.
    pub fn str_if(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value {
            self.str(key, v);
        }
        self
    }

    /// `"key":123`.
    pub fn num(&mut self, key: &str, value: u64) -> &mut Self {
        self.key(key);
        self.buf.extend_from_slice(value.to_string().as_bytes());
        self
    }

    /// `"key":null`.
    pub fn null(&mut self, key: &str) -> &mut Self {
        self.key(key);
        self.buf.extend_from_slice(b"null");
        self
    }

    /// `"key":` followed by `value`, which must already be JSON.
    pub fn raw(&mut self, key: &str, value: &[u8]) -> &mut Self {
        self.key(key);
        self.buf.extend_from_slice(value);
        self
    }

    /// The object and its newline.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.extend_from_slice(b"}\n");
        buf
    }
}

/// Appends `s` as a JSON string (quotes, `\"`, `\\`, control characters escaped).
pub fn string(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f | 0x7f => b"",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            buf.extend_from_slice(format!("\\u{b:04x}").as_bytes());
        } else {
            buf.extend_from_slice(escape);
        }
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
    buf.push(b'"');
}

/// Builds one CSV row (RFC 4180), then `\n`. A field is quoted when it holds a comma, a
/// quote or a line break (quotes doubled); other fields are written as they are.
pub struct Csv {
    buf: Vec<u8>,
    empty: bool,
}

impl Default for Csv {
    fn default() -> Self {
        Self::new()
    }
}

impl Csv {
    pub fn new() -> Self {
        Csv { buf: Vec::with_capacity(256), empty: true }
    }

    pub fn field(&mut self, value: &str) -> &mut Self {
        if !self.empty {
            self.buf.push(b',');
        }
        self.empty = false;
        if value.contains([',', '"', '\n', '\r']) {
            self.buf.push(b'"');
            for part in value.split_inclusive('"') {
                self.buf.extend_from_slice(part.as_bytes());
                if part.ends_with('"') {
                    self.buf.push(b'"');
                }
            }
            self.buf.push(b'"');
        } else {
            self.buf.extend_from_slice(value.as_bytes());
        }
        self
    }

    /// The field, or an empty field for `None`.
    pub fn opt(&mut self, value: Option<&str>) -> &mut Self {
        self.field(value.unwrap_or(""))
    }

    pub fn num(&mut self, value: u64) -> &mut Self {
        self.field(&value.to_string())
    }

    /// The row and its newline.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.push(b'\n');
        buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_str(s: &str) -> String {
        let mut buf = Vec::new();
        string(&mut buf, s);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn json_strings_round_trip_through_serde_json() {
        for s in [
            "",
            "plain",
            "quote \" back \\ slash",
            "tab\tnl\ncr\r",
            "\u{1}\u{1f}\u{7f}",
            "é ß 日本 🦀",
        ] {
            let encoded = json_str(s);
            assert_eq!(serde_json::from_str::<String>(&encoded).unwrap(), s, "{encoded}");
        }
        assert_eq!(json_str("a\u{1}b"), r#""a\u0001b""#);
    }

    #[test]
    fn json_objects_keep_key_order_and_end_with_a_newline() {
        let out = Json::new()
            .str("b", "x")
            .num("a", 7)
            .null("n")
            .str_if("skipped", None)
            .str_or_null("s", Some("y"))
            .raw("o", b"{\"k\":[1]}")
            .finish();
        assert_eq!(out, b"{\"b\":\"x\",\"a\":7,\"n\":null,\"s\":\"y\",\"o\":{\"k\":[1]}}\n");
        assert_eq!(Json::new().finish(), b"{}\n");
    }

    #[test]
    fn csv_quotes_only_what_needs_it() {
        let out = Csv::new()
            .field("plain")
            .field("a,b")
            .field("say \"hi\"")
            .field("")
            .opt(None)
            .num(42)
            .field("two\nlines")
            .finish();
        assert_eq!(out, b"plain,\"a,b\",\"say \"\"hi\"\"\",,,42,\"two\nlines\"\n");
        assert_eq!(Csv::new().field("\"").finish(), b"\"\"\"\"\n");
    }
}
