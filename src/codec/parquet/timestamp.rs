//! Timestamp and date parsing, as the two Firehose deserializers do it.
//!
//! All results are microseconds (timestamps) or days (dates) since 1970-01-01 UTC. Text without a
//! zone is read as UTC, as Firehose does (its JVMs run in UTC). Digits beyond microseconds are
//! truncated.
//!
//! # OpenXJsonSerDe
//! A JSON value for a `timestamp` column is read as text (numbers as written) and then:
//! 1. text containing `:` is a date-time: `yyyy-[M]M-[d]d` then `T` or a space, then
//!    `HH:mm:ss`, an optional fraction of 1 to 9 digits, and an optional zone: `Z`, `±HH:mm`,
//!    `±HHmm` or `±HH`. This covers Firehose's documented `yyyy-MM-dd'T'HH:mm:ss[.S]'Z'` and
//!    `yyyy-[M]M-[d]d HH:mm:ss[.S]` forms (and the offsets that newer OpenX releases accept);
//! 2. else text containing `.` is floating-point epoch **seconds** (rounded to the microsecond);
//! 3. else it is an integer epoch: **milliseconds when its text is 13 characters or longer**
//!    (counting a leading `-`), seconds otherwise. This is OpenX's own rule (it compares the
//!    length with that of `1454612111000`), so seconds work until the year 33658 and
//!    milliseconds from 2001-09-09 (1 000 000 000 000 ms) on.
//!
//! # HiveJsonSerDe
//! Without `TimestampFormats`, only `java.sql.Timestamp.valueOf`'s form is accepted:
//! `yyyy-[M]M-[d]d HH:mm:ss[.f]` (a space, no zone, 1 to 9 fraction digits); JSON numbers are
//! rejected. With `TimestampFormats`, each format is tried in order: `millis` reads integer
//! epoch milliseconds (a JSON number or a string of digits), any other entry is a Joda-Time
//! pattern (see [`JodaFormat`]). When none matches, the default form above is tried last, as
//! Hive's `TimestampParser` does.
//!
//! # Dates
//! Both deserializers read `date` columns as `java.sql.Date.valueOf` does: `yyyy-[M]M-[d]d`.

use chrono::{Datelike, NaiveDate, NaiveTime};
use serde_json::Value;

mod joda;
pub use joda::JodaFormat;

const MICROS_PER_SECOND: i64 = 1_000_000;

/// Length of `1454612111000`: OpenX reads integers this long or longer as milliseconds.
pub const OPENX_MILLIS_MIN_LEN: usize = 13;

/// Reads a JSON value for a `timestamp` column under OpenXJsonSerDe.
pub fn openx_timestamp(value: &Value) -> Result<i64, String> {
    match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                epoch_integer(i, i.to_string().len())
            } else if n.is_u64() {
                Err(format!("timestamp {n} is out of range"))
            } else {
                epoch_float_seconds(n.as_f64().unwrap_or(f64::NAN), &n.to_string())
            }
        }
        Value::String(s) => openx_timestamp_text(s),
        other => Err(format!("expected a timestamp, found {}", json_kind(other))),
    }
}

fn openx_timestamp_text(s: &str) -> Result<i64, String> {
    if s.contains(':') {
        parse_date_time(s, true).ok_or_else(|| {
            format!(
                "cannot parse timestamp {s:?}: expected yyyy-MM-dd'T'HH:mm:ss[.fraction]'Z' or \
                 yyyy-[M]M-[d]d HH:mm:ss[.fraction]"
            )
        })
    } else if s.contains('.') {
        let f: f64 = s.parse().map_err(|_| format!("cannot parse timestamp {s:?}"))?;
        epoch_float_seconds(f, s)
    } else {
        let i: i64 = s.parse().map_err(|_| {
            format!(
                "cannot parse timestamp {s:?}: expected a date-time, epoch seconds or epoch \
                 milliseconds"
            )
        })?;
        epoch_integer(i, s.len())
    }
}

fn epoch_integer(i: i64, text_len: usize) -> Result<i64, String> {
    let micros = if text_len >= OPENX_MILLIS_MIN_LEN {
        i.checked_mul(1000)
    } else {
        i.checked_mul(MICROS_PER_SECOND)
    };
    micros.ok_or_else(|| format!("timestamp {i} is out of range"))
}

fn epoch_float_seconds(f: f64, text: &str) -> Result<i64, String> {
    let micros = (f * 1e6).round();
    if !micros.is_finite() || micros.abs() >= 9.2e18 {
        return Err(format!("timestamp {text} is out of range"));
    }
    Ok(micros as i64)
}

/// One entry of HiveJsonSerDe's `TimestampFormats`.
#[derive(Debug, Clone)]
pub enum HiveTimestampFormat {
    /// The special value `millis`: integer epoch milliseconds.
    Millis,
    Joda(JodaFormat),
}

impl HiveTimestampFormat {
    /// Compiles one `TimestampFormats` entry.
    pub fn compile(text: &str) -> Result<Self, String> {
        if text == "millis" {
            Ok(HiveTimestampFormat::Millis)
        } else {
            JodaFormat::compile(text).map(HiveTimestampFormat::Joda)
        }
    }
}

/// Reads a JSON value for a `timestamp` column under HiveJsonSerDe.
pub fn hive_timestamp(value: &Value, formats: &[HiveTimestampFormat]) -> Result<i64, String> {
    let owned;
    let text: &str = match value {
        Value::String(s) => s,
        Value::Number(n) if formats.iter().any(|f| matches!(f, HiveTimestampFormat::Millis)) => {
            owned = n.to_string();
            &owned
        }
        Value::Number(n) => {
            return Err(format!(
                "expected a timestamp string, found the number {n} (HiveJsonSerDe reads \
                 numbers only with the TimestampFormats entry \"millis\")"
            ))
        }
        other => return Err(format!("expected a timestamp, found {}", json_kind(other))),
    };
    for format in formats {
        let parsed = match format {
            HiveTimestampFormat::Millis => {
                text.parse::<i64>().ok().and_then(|ms| ms.checked_mul(1000))
            }
            HiveTimestampFormat::Joda(joda) => joda.parse(text),
        };
        if let Some(micros) = parsed {
            return Ok(micros);
        }
    }
    parse_date_time(text, false).ok_or_else(|| {
        if formats.is_empty() {
            format!("cannot parse timestamp {text:?}: expected yyyy-[M]M-[d]d HH:mm:ss[.fraction]")
        } else {
            format!(
                "cannot parse timestamp {text:?} with any of the TimestampFormats nor as \
                 yyyy-[M]M-[d]d HH:mm:ss[.fraction]"
            )
        }
    })
}

/// Reads a JSON value for a `date` column (`yyyy-[M]M-[d]d`), as days since the epoch.
pub fn parse_date(value: &Value) -> Result<i32, String> {
    let Value::String(s) = value else {
        return Err(format!("expected a date string yyyy-MM-dd, found {}", json_kind(value)));
    };
    let mut c = Cursor::new(s);
    let date = c.date().filter(|_| c.at_end());
    let date = date.ok_or_else(|| format!("cannot parse date {s:?}: expected yyyy-[M]M-[d]d"))?;
    Ok(days_since_epoch(date))
}

fn days_since_epoch(date: NaiveDate) -> i32 {
    date.num_days_from_ce() - 719_163
}

/// Parses `yyyy-[M]M-[d]d<sep>HH:mm:ss[.f{1,9}]`; with `openx`, `T` is also a separator and a
/// trailing zone (`Z`, `±HH:mm`, `±HHmm`, `±HH`) is allowed.
pub fn parse_date_time(s: &str, openx: bool) -> Option<i64> {
    let mut c = Cursor::new(s);
    let date = c.date()?;
    match c.next_byte()? {
        b' ' => {}
        b'T' if openx => {}
        _ => return None,
    }
    let hour = c.fixed_digits(2)?;
    c.expect(b':')?;
    let minute = c.fixed_digits(2)?;
    c.expect(b':')?;
    let second = c.fixed_digits(2)?;
    let mut nanos = 0;
    if c.peek() == Some(b'.') {
        c.pos += 1;
        nanos = c.fraction(9)?;
    }
    let mut offset_seconds = 0;
    if openx && !c.at_end() {
        offset_seconds = c.offset()?;
    }
    if !c.at_end() {
        return None;
    }
    to_micros(date, hour, minute, second, nanos, offset_seconds)
}

fn to_micros(
    date: NaiveDate,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    offset_seconds: i64,
) -> Option<i64> {
    let time = NaiveTime::from_hms_opt(hour, minute, second)?;
    let seconds = date.and_time(time).and_utc().timestamp().checked_sub(offset_seconds)?;
    seconds.checked_mul(MICROS_PER_SECOND)?.checked_add(i64::from(nanos / 1000))
}

/// A byte cursor over the text being parsed.
struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor { s: s.as_bytes(), pos: 0 }
    }

    fn at_end(&self) -> bool {
        self.pos == self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn next_byte(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        (self.next_byte()? == b).then_some(())
    }

    /// Between `min` and `max` ASCII digits, as a number.
    fn digits(&mut self, min: usize, max: usize) -> Option<u32> {
        let start = self.pos;
        let mut value: u32 = 0;
        while self.pos - start < max {
            match self.peek() {
                Some(b @ b'0'..=b'9') => {
                    value = value.checked_mul(10)?.checked_add(u32::from(b - b'0'))?;
                    self.pos += 1;
                }
                _ => break,
            }
        }
        (self.pos - start >= min).then_some(value)
    }

    fn fixed_digits(&mut self, n: usize) -> Option<u32> {
        self.digits(n, n)
    }

    /// 1 to `max` fraction digits, as nanoseconds (digits past the 9th are not read).
    fn fraction(&mut self, max: usize) -> Option<u32> {
        let start = self.pos;
        let value = self.digits(1, max)?;
        let len = self.pos - start;
        Some(value * 10u32.pow(9u32.saturating_sub(len as u32)))
    }

    /// `yyyy-[M]M-[d]d`.
    fn date(&mut self) -> Option<NaiveDate> {
        let year = self.fixed_digits(4)?;
        self.expect(b'-')?;
        let month = self.digits(1, 2)?;
        self.expect(b'-')?;
        let day = self.digits(1, 2)?;
        NaiveDate::from_ymd_opt(year as i32, month, day)
    }

    /// `Z`, `±HH:mm`, `±HHmm` or `±HH`, as seconds east of UTC.
    fn offset(&mut self) -> Option<i64> {
        let sign = match self.next_byte()? {
            b'Z' | b'z' => return Some(0),
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let hours = self.fixed_digits(2)?;
        let mut minutes = 0;
        if self.peek() == Some(b':') {
            self.pos += 1;
            minutes = self.fixed_digits(2)?;
        } else if self.peek().is_some_and(|b| b.is_ascii_digit()) {
            minutes = self.fixed_digits(2)?;
        }
        if hours > 23 || minutes > 59 {
            return None;
        }
        Some(sign * i64::from(hours * 3600 + minutes * 60))
    }
}

/// What kind of JSON value this is, for error messages.
pub fn json_kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.len() > 64 => {
            let cut = (0..=64).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
            format!("the string {:?}...", &s[..cut])
        }
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests;
