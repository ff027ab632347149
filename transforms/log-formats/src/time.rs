//! Calendar arithmetic for the timestamps the parsers validate and convert (proleptic
//! Gregorian calendar, no time zone database needed: every log timestamp here either carries
//! its UTC offset or is kept as written).

/// A date and time of day, as written in a log line (no offset applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

pub fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

impl DateTime {
    /// Checks the ranges (month 1-12, the day exists in that month, 00:00:00-23:59:60).
    pub fn valid(&self) -> bool {
        (1..=12).contains(&self.month)
            && self.day >= 1
            && self.day <= days_in_month(self.year, self.month)
            && self.hour < 24
            && self.minute < 60
            && self.second <= 60
    }

    /// Seconds since the epoch, reading the fields as UTC.
    pub fn epoch_seconds(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    pub fn from_epoch_seconds(t: i64) -> DateTime {
        let (year, month, day) = civil_from_days(t.div_euclid(86_400));
        let s = t.rem_euclid(86_400) as u32;
        DateTime { year, month, day, hour: s / 3600, minute: s / 60 % 60, second: s % 60 }
    }

    /// The same wall-clock time minus `offset_minutes`: local time to UTC.
    pub fn minus_offset(&self, offset_minutes: i32) -> DateTime {
        DateTime::from_epoch_seconds(self.epoch_seconds() - i64::from(offset_minutes) * 60)
    }

    /// `YYYY-MM-DDTHH:MM:SS.000Z`, what JavaScript's `Date.prototype.toISOString` writes (the
    /// AWS Apache blueprint's format). A leap second (:60) is written as the next second, as a
    /// `Date` would hold it.
    pub fn iso_millis_z(&self) -> String {
        let t = DateTime::from_epoch_seconds(self.epoch_seconds());
        if !(0..=9999).contains(&t.year) {
            return format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
                t.year, t.month, t.day, t.hour, t.minute, t.second
            );
        }
        // By hand: `format!` costs more than the rest of an Apache line's parsing.
        let y = t.year as u32;
        let mut out = *b"0000-00-00T00:00:00.000Z";
        for (at, value) in [
            (0, y / 100),
            (2, y % 100),
            (5, t.month),
            (8, t.day),
            (11, t.hour),
            (14, t.minute),
            (17, t.second),
        ] {
            out[at] = b'0' + (value / 10) as u8;
            out[at + 1] = b'0' + (value % 10) as u8;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(year: i64, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> DateTime {
        DateTime { year, month, day, hour, minute, second }
    }

    #[test]
    fn epoch_seconds_match_known_instants() {
        assert_eq!(dt(1970, 1, 1, 0, 0, 0).epoch_seconds(), 0);
        assert_eq!(dt(2000, 10, 10, 13, 55, 36).epoch_seconds(), 971_186_136);
        assert_eq!(dt(2024, 2, 29, 23, 59, 59).epoch_seconds(), 1_709_251_199);
        assert_eq!(dt(1969, 12, 31, 23, 59, 59).epoch_seconds(), -1);
    }

    #[test]
    fn days_round_trip_over_four_centuries() {
        for z in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
            assert!(dt(y, m, d, 0, 0, 0).valid());
        }
    }

    #[test]
    fn validity_knows_month_lengths_and_leap_years() {
        assert!(dt(2024, 2, 29, 0, 0, 0).valid());
        assert!(!dt(2023, 2, 29, 0, 0, 0).valid());
        assert!(!dt(1900, 2, 29, 0, 0, 0).valid());
        assert!(dt(2000, 2, 29, 0, 0, 0).valid());
        assert!(!dt(2024, 4, 31, 0, 0, 0).valid());
        assert!(!dt(2024, 13, 1, 0, 0, 0).valid());
        assert!(!dt(2024, 1, 0, 0, 0, 0).valid());
        assert!(!dt(2024, 1, 1, 24, 0, 0).valid());
        assert!(dt(2016, 12, 31, 23, 59, 60).valid());
        assert!(!dt(2024, 1, 1, 0, 60, 0).valid());
    }

    #[test]
    fn offsets_convert_local_time_to_utc() {
        let local = dt(2000, 10, 10, 13, 55, 36);
        assert_eq!(local.minus_offset(-7 * 60).iso_millis_z(), "2000-10-10T20:55:36.000Z");
        assert_eq!(local.minus_offset(5 * 60 + 30).iso_millis_z(), "2000-10-10T08:25:36.000Z");
        assert_eq!(
            dt(2024, 12, 31, 23, 30, 0).minus_offset(-60).iso_millis_z(),
            "2025-01-01T00:30:00.000Z"
        );
        assert_eq!(dt(2016, 12, 31, 23, 59, 60).iso_millis_z(), "2017-01-01T00:00:00.000Z");
    }
}
