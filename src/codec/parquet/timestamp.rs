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

/// A Joda-Time `DateTimeFormat` pattern, compiled for parsing.
///
/// Supported letters: `y`/`Y` (year; `yy` is a two-digit year pivoting on the current year - 30,
/// as Joda does), `M` (`M`/`MM` numeric, `MMM`/`MMMM` English month names), `d`, `D` (day of year),
/// `H` (0-23), `k` (1-24), `h` (1-12), `K` (0-11), `a` (AM/PM), `m`, `s`, `S` (fraction of second,
/// up to 9 digits), `E` (English day names, checked but not used), `e` (day-of-week number, ignored),
/// `Z`/`ZZ` (`Z`, `±HHmm` or `±HH:mm`), `ZZZ` (only the zone ids `UTC`, `GMT`, `Z`, `Etc/UTC`,
/// `Etc/GMT`). Text in single quotes and other characters are literals (`''` is a quote); literals
/// match case-insensitively, as in Joda. Numeric fields read as many digits as they may (so `M`
/// reads `1` and `12`), except that a field directly followed by another number reads exactly as
/// many digits as its letter count (`yyyyMMdd`). The whole text must match. Unsupported letters
/// (`G`, `C`, `x`, `w`, `z`, ...) are rejected when the configuration is loaded.
#[derive(Debug, Clone)]
pub struct JodaFormat {
    items: Vec<Item>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Year,
    Month,
    Day,
    DayOfYear,
    Hour0To23,
    Hour1To24,
    Hour1To12,
    Hour0To11,
    Minute,
    Second,
    DayOfWeekNumber,
}

#[derive(Debug, Clone)]
enum Item {
    Literal(String),
    Number { field: Field, min: usize, max: usize },
    TwoDigitYear { lenient: bool },
    Fraction { max: usize },
    MonthText,
    DayOfWeekText,
    HalfDay,
    Offset,
    ZoneId,
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const DAYS: [&str; 7] =
    ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
const ZONE_IDS: [&str; 5] = ["Etc/UTC", "Etc/GMT", "UTC", "GMT", "Z"];

enum Token {
    Letters(char, usize),
    Literal(String),
}

impl JodaFormat {
    /// Compiles a pattern; the error says which letter or quote is wrong.
    pub fn compile(pattern: &str) -> Result<Self, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c.is_ascii_alphabetic() {
                let start = i;
                while i < chars.len() && chars[i] == c {
                    i += 1;
                }
                tokens.push(Token::Letters(c, i - start));
            } else if c == '\'' {
                i += 1;
                let mut text = String::new();
                if chars.get(i) == Some(&'\'') {
                    // '' outside quotes is one quote
                    i += 1;
                    tokens.push(Token::Literal("'".into()));
                    continue;
                }
                loop {
                    match chars.get(i) {
                        None => return Err(format!("unterminated quote in pattern {pattern:?}")),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            text.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            text.push(ch);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Literal(text));
            } else {
                tokens.push(Token::Literal(c.to_string()));
                i += 1;
            }
        }

        let mut items = Vec::with_capacity(tokens.len());
        for (index, token) in tokens.iter().enumerate() {
            let next_is_numeric = match tokens.get(index + 1) {
                Some(Token::Letters(c, n)) => is_numeric_letter(*c, *n),
                _ => false,
            };
            let item = match *token {
                Token::Literal(ref text) => Item::Literal(text.clone()),
                Token::Letters(c, n) => {
                    let num = |field, max: usize| Item::Number {
                        field,
                        min: 1,
                        max: if next_is_numeric { n } else { max.max(n) },
                    };
                    match c {
                        'y' | 'Y' if n == 2 => Item::TwoDigitYear { lenient: !next_is_numeric },
                        'y' | 'Y' => num(Field::Year, 9),
                        'M' if n >= 3 => Item::MonthText,
                        'M' => num(Field::Month, 2),
                        'd' => num(Field::Day, 2),
                        'D' => num(Field::DayOfYear, 3),
                        'H' => num(Field::Hour0To23, 2),
                        'k' => num(Field::Hour1To24, 2),
                        'h' => num(Field::Hour1To12, 2),
                        'K' => num(Field::Hour0To11, 2),
                        'm' => num(Field::Minute, 2),
                        's' => num(Field::Second, 2),
                        'e' => num(Field::DayOfWeekNumber, 1),
                        'S' => Item::Fraction { max: if next_is_numeric { n.min(9) } else { 9 } },
                        'E' => Item::DayOfWeekText,
                        'a' => Item::HalfDay,
                        'Z' if n <= 2 => Item::Offset,
                        'Z' => Item::ZoneId,
                        _ => {
                            return Err(format!(
                                "pattern letter '{c}' in {pattern:?} is not supported (use y M d \
                                 D H k h K a m s S E e Z, quote literal text with ')"
                            ))
                        }
                    }
                }
            };
            items.push(item);
        }
        if items.is_empty() {
            return Err("the pattern is empty".into());
        }
        Ok(JodaFormat { items })
    }

    /// Parses `text` completely; `None` if it does not match.
    pub fn parse(&self, text: &str) -> Option<i64> {
        let mut c = Cursor::new(text);
        let (mut year, mut month, mut day, mut day_of_year) = (1970i64, 1u32, 1u32, None);
        let (mut hour, mut hour12, mut pm) = (0u32, None::<u32>, false);
        let (mut minute, mut second, mut nanos, mut offset) = (0u32, 0u32, 0u32, 0i64);
        for item in &self.items {
            match item {
                Item::Literal(lit) => {
                    let end = c.pos + lit.len();
                    let got = c.s.get(c.pos..end)?;
                    if !got.eq_ignore_ascii_case(lit.as_bytes()) {
                        return None;
                    }
                    c.pos = end;
                }
                Item::Number { field, min, max } => {
                    let negative = *field == Field::Year && c.peek() == Some(b'-');
                    if negative {
                        c.pos += 1;
                    }
                    let v = c.digits(*min, *max)?;
                    match field {
                        Field::Year => year = if negative { -i64::from(v) } else { i64::from(v) },
                        Field::Month => month = v,
                        Field::Day => day = v,
                        Field::DayOfYear => day_of_year = Some(v),
                        Field::Hour0To23 => hour = v,
                        Field::Hour1To24 => hour = if v == 24 { 0 } else { v },
                        Field::Hour1To12 => hour12 = Some(if v == 12 { 0 } else { v }),
                        Field::Hour0To11 => hour12 = Some(v),
                        Field::Minute => minute = v,
                        Field::Second => second = v,
                        Field::DayOfWeekNumber => {
                            if !(1..=7).contains(&v) {
                                return None;
                            }
                        }
                    }
                    let limit = match field {
                        Field::Hour1To24 => 24,
                        Field::Hour1To12 => 12,
                        Field::Hour0To11 => 11,
                        _ => u32::MAX,
                    };
                    if v > limit {
                        return None;
                    }
                }
                Item::TwoDigitYear { lenient } => {
                    let start = c.pos;
                    let v = c.digits(1, if *lenient { 9 } else { 2 })?;
                    year = if c.pos - start == 2 { two_digit_year(v) } else { i64::from(v) };
                }
                Item::Fraction { max } => nanos = c.fraction(*max)?,
                Item::MonthText => month = c.name(&MONTHS)? as u32 + 1,
                Item::DayOfWeekText => {
                    c.name(&DAYS)?;
                }
                Item::HalfDay => {
                    let rest = c.s.get(c.pos..c.pos + 2)?;
                    pm = if rest.eq_ignore_ascii_case(b"PM") {
                        true
                    } else if rest.eq_ignore_ascii_case(b"AM") {
                        false
                    } else {
                        return None;
                    };
                    c.pos += 2;
                }
                Item::Offset => offset = c.offset()?,
                Item::ZoneId => {
                    let id = ZONE_IDS.iter().find(|id| {
                        c.s.get(c.pos..c.pos + id.len()).is_some_and(|got| got == id.as_bytes())
                    })?;
                    c.pos += id.len();
                }
            }
        }
        if !c.at_end() {
            return None;
        }
        if let Some(h) = hour12 {
            hour = h + if pm { 12 } else { 0 };
        }
        let year = i32::try_from(year).ok()?;
        let date = match day_of_year {
            Some(doy) => NaiveDate::from_yo_opt(year, doy)?,
            None => NaiveDate::from_ymd_opt(year, month, day)?,
        };
        to_micros(date, hour, minute, second, nanos, offset)
    }
}

fn is_numeric_letter(c: char, count: usize) -> bool {
    matches!(c, 'y' | 'Y' | 'd' | 'D' | 'H' | 'k' | 'h' | 'K' | 'm' | 's' | 'S' | 'e')
        || (c == 'M' && count < 3)
}

/// Joda's `appendTwoDigitYear(currentYear - 30)`: the year ending in `yy` within
/// [pivot - 49, pivot + 50].
fn two_digit_year(yy: u32) -> i64 {
    let pivot = i64::from(chrono::Utc::now().year()) - 30;
    let low = pivot - 49;
    let mut year = low - low.rem_euclid(100) + i64::from(yy);
    if year < low {
        year += 100;
    }
    year
}

impl Cursor<'_> {
    /// Matches one of `names` (full, or its first three letters), case-insensitively; returns its
    /// index.
    fn name(&mut self, names: &[&str]) -> Option<usize> {
        for (i, full) in names.iter().enumerate() {
            for candidate in [*full, &full[..3]] {
                let end = self.pos + candidate.len();
                if self
                    .s
                    .get(self.pos..end)
                    .is_some_and(|got| got.eq_ignore_ascii_case(candidate.as_bytes()))
                {
                    self.pos = end;
                    return Some(i);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn micros(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros()
    }

    #[test]
    fn openx_reads_iso_utc_timestamps_with_up_to_nine_fraction_digits() {
        assert_eq!(
            openx_timestamp(&json!("2017-02-07T15:13:01Z")),
            Ok(micros("2017-02-07T15:13:01Z"))
        );
        assert_eq!(
            openx_timestamp(&json!("2017-02-07T15:13:01.39256Z")),
            Ok(micros("2017-02-07T15:13:01.392560Z"))
        );
        assert_eq!(
            openx_timestamp(&json!("2017-02-07T15:13:01.123456789Z")),
            Ok(micros("2017-02-07T15:13:01.123456Z"))
        );
        assert!(openx_timestamp(&json!("2017-02-07T15:13:01.1234567891Z")).is_err());
    }

    #[test]
    fn openx_reads_space_separated_timestamps_with_one_digit_month_and_day() {
        assert_eq!(
            openx_timestamp(&json!("2017-2-7 15:13:01")),
            Ok(micros("2017-02-07T15:13:01Z"))
        );
        assert_eq!(
            openx_timestamp(&json!("2017-02-07 15:13:01.5")),
            Ok(micros("2017-02-07T15:13:01.5Z"))
        );
        assert_eq!(
            openx_timestamp(&json!("2017-02-07T17:13:01+02:00")),
            Ok(micros("2017-02-07T15:13:01Z"))
        );
        assert_eq!(
            openx_timestamp(&json!("2017-02-07 15:13:01-0130")),
            Ok(micros("2017-02-07T16:43:01Z"))
        );
    }

    #[test]
    fn openx_reads_epoch_seconds_millis_and_float_seconds() {
        let t = micros("2016-02-04T18:55:11Z");
        assert_eq!(openx_timestamp(&json!(1454612111)), Ok(t));
        assert_eq!(openx_timestamp(&json!("1454612111")), Ok(t));
        assert_eq!(openx_timestamp(&json!(1454612111000i64)), Ok(t));
        assert_eq!(openx_timestamp(&json!("1454612111000")), Ok(t));
        assert_eq!(openx_timestamp(&json!(1454612111.25)), Ok(t + 250_000));
        assert_eq!(openx_timestamp(&json!("1454612111.25")), Ok(t + 250_000));
        // 12 digits are still seconds, 13 are milliseconds.
        assert_eq!(openx_timestamp(&json!(999_999_999_999i64)), Ok(999_999_999_999 * 1_000_000));
        assert_eq!(openx_timestamp(&json!(1_000_000_000_000i64)), Ok(1_000_000_000_000 * 1000));
        assert_eq!(openx_timestamp(&json!(0)), Ok(0));
    }

    #[test]
    fn openx_rejects_unparseable_timestamps() {
        for v in [
            json!("yesterday"),
            json!("2017-13-01 00:00:00"),
            json!("2017-02-07"),
            json!(true),
            json!({}),
        ] {
            assert!(openx_timestamp(&v).is_err(), "{v}");
        }
    }

    #[test]
    fn hive_without_formats_reads_only_the_sql_timestamp_form() {
        assert_eq!(
            hive_timestamp(&json!("2017-2-7 15:13:01.25"), &[]),
            Ok(micros("2017-02-07T15:13:01.25Z"))
        );
        assert!(hive_timestamp(&json!("2017-02-07T15:13:01Z"), &[]).is_err());
        assert!(hive_timestamp(&json!(1454612111000i64), &[]).is_err());
    }

    #[test]
    fn hive_millis_format_reads_numbers_and_digit_strings() {
        let formats = [HiveTimestampFormat::compile("millis").unwrap()];
        let t = micros("2016-02-04T18:55:11.123Z");
        assert_eq!(hive_timestamp(&json!(1454612111123i64), &formats), Ok(t));
        assert_eq!(hive_timestamp(&json!("1454612111123"), &formats), Ok(t));
        // the default form stays available as a fallback
        assert_eq!(hive_timestamp(&json!("2016-02-04 18:55:11.123"), &formats), Ok(t));
        assert!(hive_timestamp(&json!("soon"), &formats).is_err());
    }

    #[test]
    fn hive_joda_formats_are_tried_in_order() {
        let formats: Vec<_> =
            ["dd/MM/yyyy HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss.SSSZZ", "MMM d, yyyy h:mm a"]
                .iter()
                .map(|f| HiveTimestampFormat::compile(f).unwrap())
                .collect();
        assert_eq!(
            hive_timestamp(&json!("07/02/2017 15:13:01"), &formats),
            Ok(micros("2017-02-07T15:13:01Z"))
        );
        assert_eq!(
            hive_timestamp(&json!("2017-02-07T17:13:01.123+02:00"), &formats),
            Ok(micros("2017-02-07T15:13:01.123Z"))
        );
        assert_eq!(
            hive_timestamp(&json!("2017-02-07T15:13:01.123Z"), &formats),
            Ok(micros("2017-02-07T15:13:01.123Z"))
        );
        assert_eq!(
            hive_timestamp(&json!("Feb 7, 2017 3:13 PM"), &formats),
            Ok(micros("2017-02-07T15:13:00Z"))
        );
        assert_eq!(
            hive_timestamp(&json!("february 7, 2017 12:05 am"), &formats),
            Ok(micros("2017-02-07T00:05:00Z"))
        );
    }

    #[test]
    fn joda_adjacent_numeric_fields_read_fixed_widths() {
        let f = JodaFormat::compile("yyyyMMddHHmmss").unwrap();
        assert_eq!(f.parse("20170207151301"), Some(micros("2017-02-07T15:13:01Z")));
        assert_eq!(f.parse("201702071513011"), None);
        let f = JodaFormat::compile("EEE, dd MMM yyyy HH:mm:ss 'GMT'").unwrap();
        assert_eq!(f.parse("Tue, 07 Feb 2017 15:13:01 GMT"), Some(micros("2017-02-07T15:13:01Z")));
        let f = JodaFormat::compile("yy-D").unwrap();
        assert_eq!(f.parse("17-38"), Some(micros("2017-02-07T00:00:00Z")));
        let f = JodaFormat::compile("yyyy-MM-dd HH:mm:ss ZZZ").unwrap();
        assert_eq!(f.parse("2017-02-07 15:13:01 UTC"), Some(micros("2017-02-07T15:13:01Z")));
    }

    #[test]
    fn joda_patterns_with_unsupported_letters_are_rejected_at_compile_time() {
        assert!(JodaFormat::compile("yyyy-ww").unwrap_err().contains("'w'"));
        assert!(JodaFormat::compile("yyyy 'unterminated").unwrap_err().contains("quote"));
        assert!(JodaFormat::compile("HH:mm z").is_err());
    }

    #[test]
    fn dates_are_read_as_days_since_the_epoch() {
        assert_eq!(parse_date(&json!("1970-01-01")), Ok(0));
        assert_eq!(parse_date(&json!("2017-2-7")), Ok(17204));
        assert_eq!(parse_date(&json!("1969-12-31")), Ok(-1));
        assert!(parse_date(&json!("2017-02-30")).is_err());
        assert!(parse_date(&json!(17204)).is_err());
    }
}
