//! Java `DateTimeFormatter` patterns, as Firehose evaluates them in `!{timestamp:<pattern>}`.
//!
//! Firehose is a Java service: the text after `timestamp:` is handed to
//! `DateTimeFormatter.ofPattern`. Users copy their prefixes from existing Firehose configs, so the
//! pattern must mean what Java means (`MM` is the month and `mm` the minute, `''` is a quote,
//! `yy` is a two-digit year). chrono's strftime syntax cannot be used as is, hence this translator.
//!
//! A pattern is parsed once ([`JavaDateTimePattern::parse`]) into tokens; rendering walks the
//! tokens and writes digits straight into the caller's `String`, with no allocation and no
//! re-parsing, because it runs once per delivered object and once per partition.
//!
//! Supported letters (Java semantics, English text, as the JVM's `Locale.US`/`ROOT` prints them):
//!
//! | Letter | Meaning | Counts |
//! |---|---|---|
//! | `G` | era (`AD`, `Anno Domini`, `A`) | 1-5 |
//! | `u` / `y` | proleptic year / year of era; `yy` = last two digits | 1-19 |
//! | `Q` / `q` | quarter (`1`, `01`, `Q1`, `1st quarter`, `1`) | 1-5 |
//! | `M` / `L` | month (`7`, `07`, `Jul`, `July`, `J`) | 1-5 |
//! | `d` | day of month | 1-2 |
//! | `D` | day of year (`D`, `DD` pads to 2, `DDD` pads to 3) | 1-3 |
//! | `E` | day of week (`Mon`, `Monday`, `M`) | 1-5 |
//! | `a` | `AM` / `PM` | 1 |
//! | `H` `k` `K` `h` | hour 0-23, 1-24, 0-11, 1-12 | 1-2 |
//! | `m` `s` | minute, second | 1-2 |
//! | `S` | fraction of second, truncated to n digits | 1-9 |
//! | `A` `n` `N` | milli of day, nano of second, nano of day | 1-19 |
//! | `VV` | zone id (`Asia/Tokyo`) | 2 |
//! | `X` `x` `Z` `O` | offsets (`Z`/`+09`/`+0900`/`+09:00`, `GMT+9`, ...) | Java's rules |
//!
//! Letters Java accepts but whose output depends on the JVM locale or JDK version (`Y w W e c F`
//! week fields, `z v` zone names, `B` day periods, `g`, `p` padding) are rejected with
//! [`PatternError::UnsupportedLetter`] rather than guessed: a silently different key is worse
//! than a config error. Other ASCII letters are [`PatternError::UnknownLetter`], as in Java.
//! `'text'` is literal text, `''` is one quote, `[` `]` (optional sections) are transparent
//! because every field is always available, `{` `}` `#` are reserved (an error, as in Java), and
//! any other character is literal.

use chrono::{DateTime, Datelike, Offset, Timelike};
use chrono_tz::Tz;

mod render;
use render::{push_fraction, push_localized_offset, push_number, push_offset};

/// A parsed Java `DateTimeFormatter` pattern, ready to render many times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JavaDateTimePattern {
    source: Box<str>,
    tokens: Vec<Token>,
}

/// Why a Java pattern was rejected. Positions are 0-based character indexes into the pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatternError {
    /// A letter that Java's `DateTimeFormatter` does not define (Java: "Unknown pattern letter").
    #[error("unknown pattern letter '{letter}' at position {position}")]
    UnknownLetter { letter: char, position: usize },
    /// A letter Java defines but Hydrant does not render, because its output depends on the JVM
    /// locale or JDK version and could not be reproduced exactly.
    #[error("pattern letter '{letter}' at position {position} is not supported: {reason}")]
    UnsupportedLetter { letter: char, position: usize, reason: &'static str },
    /// A letter repeated a number of times Java rejects (e.g. `ddd`, `aa`, `V`).
    #[error(
        "pattern letter '{letter}' at position {position} repeated {count} times; allowed: {allowed}"
    )]
    InvalidLetterCount { letter: char, count: usize, position: usize, allowed: &'static str },
    /// A `'` that opens literal text which is never closed.
    #[error("literal text opened by the quote at position {position} is not closed")]
    UnterminatedLiteral { position: usize },
    /// `{`, `}` or `#`, which Java reserves for future use.
    #[error("reserved character '{ch}' at position {position}")]
    ReservedCharacter { ch: char, position: usize },
    /// A `]` with no `[` before it.
    #[error("']' at position {position} closes no optional section")]
    UnmatchedOptionalEnd { position: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(Box<str>),
    Number {
        field: Field,
        min_width: u8,
        sign: SignStyle,
    },
    /// `yy`/`uu`: the last two digits of the year (Java's `appendValueReduced(.., 2, 2, 2000)`).
    ReducedYear(Field),
    Text {
        field: TextField,
        style: TextStyle,
    },
    /// `S..S`: nano of second as a fraction, truncated to this many digits.
    Fraction(u8),
    Offset {
        format: OffsetFormat,
        colon: bool,
        zero_text: &'static str,
    },
    /// `O`, `OOOO`, `ZZZZ`: `GMT`, `GMT+9`, `GMT+09:00`.
    LocalizedOffset {
        full: bool,
    },
    ZoneId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Year,
    YearOfEra,
    Quarter,
    Month,
    DayOfMonth,
    DayOfYear,
    HourOfDay,
    ClockHourOfDay,
    HourOfAmPm,
    ClockHourOfAmPm,
    Minute,
    Second,
    MilliOfDay,
    NanoOfSecond,
    NanoOfDay,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextField {
    Era,
    Quarter,
    Month,
    DayOfWeek,
    AmPm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextStyle {
    Short,
    Full,
    Narrow,
}

/// Java's `SignStyle` values that patterns can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignStyle {
    /// `-` for negative values only.
    Normal,
    /// `-` for negative values, `+` when a positive value is wider than the minimum width.
    ExceedsPad,
}

/// Java's offset patterns (`appendOffset`), reduced to the three shapes patterns can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OffsetFormat {
    /// `+HHmm`: minutes only when non-zero.
    OptionalMinutes,
    /// `+HHMM` / `+HH:MM`.
    FixedMinutes,
    /// `+HHMMss` / `+HH:MM:ss`: seconds only when non-zero.
    OptionalSeconds,
}

/// The calendar fields of one instant in one zone, computed once and shared by every timestamp
/// expression of a prefix (and by the key suffix), so all of them show the same instant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Moment {
    year: i32,
    month: u32,
    day: u32,
    ordinal: u32,
    /// 0 = Monday, as chrono's `num_days_from_monday`.
    weekday: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nano: u32,
    offset_secs: i32,
    zone: &'static str,
}

impl Moment {
    pub(crate) fn new(dt: &DateTime<Tz>) -> Self {
        let local = dt.naive_local();
        Moment {
            year: local.year(),
            month: local.month(),
            day: local.day(),
            ordinal: local.ordinal(),
            weekday: local.weekday().num_days_from_monday(),
            hour: local.hour(),
            minute: local.minute(),
            second: local.second(),
            // chrono encodes a leap second as nano >= 1e9; Java has no leap seconds.
            nano: local.nanosecond().min(999_999_999),
            offset_secs: dt.offset().fix().local_minus_utc(),
            zone: dt.timezone().name(),
        }
    }

    /// `None` when the instant is outside chrono's range (about +-262,000 years).
    pub(crate) fn from_epoch_millis(ms: i64, tz: Tz) -> Option<Self> {
        let utc = DateTime::from_timestamp_millis(ms)?;
        Some(Moment::new(&utc.with_timezone(&tz)))
    }

    /// Appends `yyyy-MM-dd-HH-mm-ss`, the fixed timestamp of Firehose's key suffix, with Java's
    /// `yyyy` semantics (`+` before years past 9999) but without walking a token list.
    pub(crate) fn push_key_suffix_time(&self, out: &mut String) {
        push_number(out, self.value(Field::YearOfEra), 4, SignStyle::ExceedsPad);
        for v in [self.month, self.day, self.hour, self.minute, self.second] {
            out.push('-');
            push_padded(out, u64::from(v), 2);
        }
    }

    fn value(&self, field: Field) -> i64 {
        let seconds_of_day = i64::from(self.hour * 3600 + self.minute * 60 + self.second);
        match field {
            Field::Year => i64::from(self.year),
            Field::YearOfEra if self.year <= 0 => 1 - i64::from(self.year),
            Field::YearOfEra => i64::from(self.year),
            Field::Quarter => i64::from((self.month - 1) / 3 + 1),
            Field::Month => i64::from(self.month),
            Field::DayOfMonth => i64::from(self.day),
            Field::DayOfYear => i64::from(self.ordinal),
            Field::HourOfDay => i64::from(self.hour),
            Field::ClockHourOfDay if self.hour == 0 => 24,
            Field::ClockHourOfDay => i64::from(self.hour),
            Field::HourOfAmPm => i64::from(self.hour % 12),
            Field::ClockHourOfAmPm if self.hour.is_multiple_of(12) => 12,
            Field::ClockHourOfAmPm => i64::from(self.hour % 12),
            Field::Minute => i64::from(self.minute),
            Field::Second => i64::from(self.second),
            Field::MilliOfDay => seconds_of_day * 1000 + i64::from(self.nano / 1_000_000),
            Field::NanoOfSecond => i64::from(self.nano),
            Field::NanoOfDay => seconds_of_day * 1_000_000_000 + i64::from(self.nano),
        }
    }

    fn text(&self, field: TextField, style: TextStyle) -> &'static str {
        const ERAS: [[&str; 2]; 3] = [["BC", "AD"], ["Before Christ", "Anno Domini"], ["B", "A"]];
        const QUARTERS: [[&str; 4]; 3] = [
            ["Q1", "Q2", "Q3", "Q4"],
            ["1st quarter", "2nd quarter", "3rd quarter", "4th quarter"],
            ["1", "2", "3", "4"],
        ];
        const MONTHS: [[&str; 12]; 3] = [
            ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
            [
                "January",
                "February",
                "March",
                "April",
                "May",
                "June",
                "July",
                "August",
                "September",
                "October",
                "November",
                "December",
            ],
            ["J", "F", "M", "A", "M", "J", "J", "A", "S", "O", "N", "D"],
        ];
        const DAYS: [[&str; 7]; 3] = [
            ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
            ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
            ["M", "T", "W", "T", "F", "S", "S"],
        ];
        let s = match style {
            TextStyle::Short => 0,
            TextStyle::Full => 1,
            TextStyle::Narrow => 2,
        };
        match field {
            TextField::Era => ERAS[s][usize::from(self.year > 0)],
            TextField::Quarter => QUARTERS[s][((self.month - 1) / 3) as usize],
            TextField::Month => MONTHS[s][(self.month - 1) as usize],
            TextField::DayOfWeek => DAYS[s][self.weekday as usize],
            // Java has no full/narrow AM/PM in patterns (`aa` is rejected at parse time).
            TextField::AmPm if self.hour < 12 => "AM",
            TextField::AmPm => "PM",
        }
    }
}

impl JavaDateTimePattern {
    /// Parses a Java `DateTimeFormatter` pattern. Errors name the letter or character and its
    /// 0-based character position.
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut literal = String::new();
        let mut optional_depth = 0usize;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c.is_ascii_alphabetic() {
                let count = chars[i..].iter().take_while(|&&x| x == c).count();
                let token = letter_token(c, count, i)?;
                if !literal.is_empty() {
                    tokens.push(Token::Literal(std::mem::take(&mut literal).into()));
                }
                tokens.push(token);
                i += count;
            } else if c == '\'' {
                i = parse_quoted(&chars, i, &mut literal)?;
            } else if c == '[' {
                optional_depth += 1;
                i += 1;
            } else if c == ']' {
                if optional_depth == 0 {
                    return Err(PatternError::UnmatchedOptionalEnd { position: i });
                }
                optional_depth -= 1;
                i += 1;
            } else if matches!(c, '{' | '}' | '#') {
                return Err(PatternError::ReservedCharacter { ch: c, position: i });
            } else {
                literal.push(c);
                i += 1;
            }
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal.into()));
        }
        Ok(JavaDateTimePattern { source: pattern.into(), tokens })
    }

    /// The pattern text as given to [`JavaDateTimePattern::parse`].
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Renders `dt` (in its own zone) into a new `String`.
    pub fn format(&self, dt: &DateTime<Tz>) -> String {
        let mut out = String::with_capacity(self.source.len() + 8);
        self.render_into(dt, &mut out);
        out
    }

    /// Appends `dt` (in its own zone) to `out`.
    pub fn render_into(&self, dt: &DateTime<Tz>, out: &mut String) {
        self.render_moment(&Moment::new(dt), out);
    }

    pub(crate) fn render_moment(&self, m: &Moment, out: &mut String) {
        for token in &self.tokens {
            match *token {
                Token::Literal(ref s) => out.push_str(s),
                Token::Number { field, min_width, sign } => {
                    push_number(out, m.value(field), min_width, sign)
                }
                Token::ReducedYear(field) => {
                    push_padded(out, m.value(field).unsigned_abs() % 100, 2)
                }
                Token::Text { field, style } => out.push_str(m.text(field, style)),
                Token::Fraction(digits) => push_fraction(out, m.nano, digits),
                Token::Offset { format, colon, zero_text } => {
                    push_offset(out, m.offset_secs, format, colon, zero_text)
                }
                Token::LocalizedOffset { full } => push_localized_offset(out, m.offset_secs, full),
                Token::ZoneId => out.push_str(m.zone),
            }
        }
    }
}

impl std::fmt::Display for JavaDateTimePattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

/// Parses `'...'` starting at the quote at `start`, appending its text to `literal`, and returns
/// the index after the closing quote. `''` (inside or outside quotes) is one quote, as in Java.
fn parse_quoted(chars: &[char], start: usize, literal: &mut String) -> Result<usize, PatternError> {
    let mut i = start + 1;
    if chars.get(i) == Some(&'\'') {
        literal.push('\'');
        return Ok(i + 1);
    }
    loop {
        match chars.get(i) {
            None => return Err(PatternError::UnterminatedLiteral { position: start }),
            Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                literal.push('\'');
                i += 2;
            }
            Some('\'') => return Ok(i + 1),
            Some(&c) => {
                literal.push(c);
                i += 1;
            }
        }
    }
}

/// Maps a run of `count` identical letters to a token, following
/// `DateTimeFormatterBuilder.parseField` (JDK 11-21).
fn letter_token(letter: char, count: usize, position: usize) -> Result<Token, PatternError> {
    let bad_count = |allowed| PatternError::InvalidLetterCount { letter, count, position, allowed };
    let number = |field, min_width: usize, sign| Token::Number {
        field,
        // Callers bound min_width to 1..=19.
        min_width: min_width as u8,
        sign,
    };
    let text_style = |count| match count {
        1..=3 => Some(TextStyle::Short),
        4 => Some(TextStyle::Full),
        5 => Some(TextStyle::Narrow),
        _ => None,
    };
    let number_or_text = |field, text_field| match count {
        1 | 2 => Ok(number(field, count, SignStyle::Normal)),
        3..=5 => Ok(Token::Text {
            field: text_field,
            style: text_style(count).unwrap_or(TextStyle::Short),
        }),
        _ => Err(bad_count("1-5")),
    };
    let one_or_two = |field| match count {
        1 | 2 => Ok(number(field, count, SignStyle::Normal)),
        _ => Err(bad_count("1-2")),
    };
    let unsupported = |reason| PatternError::UnsupportedLetter { letter, position, reason };
    match letter {
        'G' => text_style(count)
            .map(|style| Token::Text { field: TextField::Era, style })
            .ok_or(bad_count("1-5")),
        'u' | 'y' => {
            let field = if letter == 'u' { Field::Year } else { Field::YearOfEra };
            match count {
                2 => Ok(Token::ReducedYear(field)),
                1 | 3 => Ok(number(field, count, SignStyle::Normal)),
                4..=19 => Ok(number(field, count, SignStyle::ExceedsPad)),
                _ => Err(bad_count("1-19")),
            }
        }
        'Q' | 'q' => number_or_text(Field::Quarter, TextField::Quarter),
        'M' | 'L' => number_or_text(Field::Month, TextField::Month),
        'd' => one_or_two(Field::DayOfMonth),
        'H' => one_or_two(Field::HourOfDay),
        'k' => one_or_two(Field::ClockHourOfDay),
        'K' => one_or_two(Field::HourOfAmPm),
        'h' => one_or_two(Field::ClockHourOfAmPm),
        'm' => one_or_two(Field::Minute),
        's' => one_or_two(Field::Second),
        'D' => match count {
            1..=3 => Ok(number(Field::DayOfYear, count, SignStyle::Normal)),
            _ => Err(bad_count("1-3")),
        },
        'E' => text_style(count)
            .map(|style| Token::Text { field: TextField::DayOfWeek, style })
            .ok_or(bad_count("1-5")),
        'a' => match count {
            1 => Ok(Token::Text { field: TextField::AmPm, style: TextStyle::Short }),
            _ => Err(bad_count("1")),
        },
        'S' => match count {
            1..=9 => Ok(Token::Fraction(count as u8)),
            _ => Err(bad_count("1-9")),
        },
        'A' | 'n' | 'N' => {
            let field = match letter {
                'A' => Field::MilliOfDay,
                'n' => Field::NanoOfSecond,
                _ => Field::NanoOfDay,
            };
            match count {
                1..=19 => Ok(number(field, count, SignStyle::Normal)),
                _ => Err(bad_count("1-19")),
            }
        }
        'V' => match count {
            2 => Ok(Token::ZoneId),
            _ => Err(bad_count("2")),
        },
        'O' => match count {
            1 => Ok(Token::LocalizedOffset { full: false }),
            4 => Ok(Token::LocalizedOffset { full: true }),
            _ => Err(bad_count("1 or 4")),
        },
        'X' | 'x' => {
            let (format, colon) = match count {
                1 => (OffsetFormat::OptionalMinutes, false),
                2 => (OffsetFormat::FixedMinutes, false),
                3 => (OffsetFormat::FixedMinutes, true),
                4 => (OffsetFormat::OptionalSeconds, false),
                5 => (OffsetFormat::OptionalSeconds, true),
                _ => return Err(bad_count("1-5")),
            };
            let zero_text = match (letter, count) {
                ('X', _) => "Z",
                (_, 1) => "+00",
                (_, 2 | 4) => "+0000",
                _ => "+00:00",
            };
            Ok(Token::Offset { format, colon, zero_text })
        }
        'Z' => match count {
            1..=3 => Ok(Token::Offset {
                format: OffsetFormat::FixedMinutes,
                colon: false,
                zero_text: "+0000",
            }),
            4 => Ok(Token::LocalizedOffset { full: true }),
            5 => Ok(Token::Offset {
                format: OffsetFormat::OptionalSeconds,
                colon: true,
                zero_text: "Z",
            }),
            _ => Err(bad_count("1-5")),
        },
        'Y' | 'w' | 'W' | 'e' | 'c' | 'F' => {
            Err(unsupported("week-based fields depend on the JVM locale's first day of week"))
        }
        'z' | 'v' => {
            Err(unsupported("zone names come from the JVM's locale data; use VV, X, x, Z or O"))
        }
        'B' => Err(unsupported("day periods depend on the JVM's locale data")),
        'g' => Err(unsupported("modified Julian day is not implemented")),
        'p' => Err(unsupported("pad modifiers are not implemented")),
        _ => Err(PatternError::UnknownLetter { letter, position }),
    }
}

/// Appends `value` zero-padded to `width` digits, without any allocation.
pub(crate) fn push_padded(out: &mut String, value: u64, width: u8) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut v = value;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let digits = buf.len() - i;
    for _ in digits..usize::from(width) {
        out.push('0');
    }
    for &b in &buf[i..] {
        out.push(char::from(b));
    }
}

/// Builds a zoned date-time for tests and callers that start from calendar fields.
#[cfg(test)]
pub(crate) fn zoned(
    tz: Tz,
    (y, mo, d): (i32, u32, u32),
    (h, mi, s): (u32, u32, u32),
    nano: u32,
) -> DateTime<Tz> {
    use chrono::{NaiveDate, TimeZone};
    let naive = NaiveDate::from_ymd_opt(y, mo, d)
        .and_then(|date| date.and_hms_nano_opt(h, mi, s, nano))
        .expect("valid test date");
    tz.from_local_datetime(&naive).single().expect("unambiguous test time")
}

#[cfg(test)]
mod tests;
