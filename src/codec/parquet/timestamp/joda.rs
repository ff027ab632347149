//! Joda-Time `DateTimeFormat` patterns (HiveJsonSerDe's `TimestampFormats`), compiled for parsing.

use super::*;

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
