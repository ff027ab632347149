use super::*;
use chrono_tz::{America, Asia, UTC};

fn fmt(pattern: &str, dt: &DateTime<Tz>) -> String {
    JavaDateTimePattern::parse(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}")).format(dt)
}

/// Thursday 2026-03-05 07:08:09.123456789 in Asia/Kolkata (+05:30), day 64 of the year.
fn kolkata_morning() -> DateTime<Tz> {
    zoned(Asia::Kolkata, (2026, 3, 5), (7, 8, 9), 123_456_789)
}

fn check(dt: &DateTime<Tz>, cases: &[(&str, &str)]) {
    for (pattern, expected) in cases {
        assert_eq!(fmt(pattern, dt), *expected, "pattern {pattern:?}");
    }
}

#[test]
fn every_supported_date_letter_renders_like_java() {
    check(
        &kolkata_morning(),
        &[
            ("G", "AD"),
            ("GGG", "AD"),
            ("GGGG", "Anno Domini"),
            ("GGGGG", "A"),
            ("y", "2026"),
            ("yy", "26"),
            ("yyy", "2026"),
            ("yyyy", "2026"),
            ("yyyyy", "02026"),
            ("u", "2026"),
            ("uu", "26"),
            ("uuuu", "2026"),
            ("Q", "1"),
            ("QQ", "01"),
            ("QQQ", "Q1"),
            ("QQQQ", "1st quarter"),
            ("QQQQQ", "1"),
            ("qqq", "Q1"),
            ("M", "3"),
            ("MM", "03"),
            ("MMM", "Mar"),
            ("MMMM", "March"),
            ("MMMMM", "M"),
            ("L", "3"),
            ("LLL", "Mar"),
            ("d", "5"),
            ("dd", "05"),
            ("D", "64"),
            ("DD", "64"),
            ("DDD", "064"),
            ("E", "Thu"),
            ("EEE", "Thu"),
            ("EEEE", "Thursday"),
            ("EEEEE", "T"),
        ],
    );
}

#[test]
fn every_supported_time_letter_renders_like_java() {
    check(
        &kolkata_morning(),
        &[
            ("a", "AM"),
            ("H", "7"),
            ("HH", "07"),
            ("k", "7"),
            ("K", "7"),
            ("h", "7"),
            ("hh", "07"),
            ("m", "8"),
            ("mm", "08"),
            ("s", "9"),
            ("ss", "09"),
            ("S", "1"),
            ("SSS", "123"),
            ("SSSSSS", "123456"),
            ("SSSSSSSSS", "123456789"),
            ("A", "25689123"),
            ("n", "123456789"),
            ("N", "25689123456789"),
            ("AAAAAAAAAA", "0025689123"),
        ],
    );
    let midnight = zoned(UTC, (2026, 3, 5), (0, 5, 0), 0);
    check(&midnight, &[("a", "AM"), ("H", "0"), ("h", "12"), ("K", "0"), ("k", "24")]);
    let noon = zoned(UTC, (2026, 3, 5), (12, 5, 0), 0);
    check(&noon, &[("a", "PM"), ("H", "12"), ("h", "12"), ("K", "0"), ("k", "12")]);
    let evening = zoned(UTC, (2026, 3, 5), (19, 5, 0), 0);
    check(&evening, &[("a", "PM"), ("HH", "19"), ("hh", "07"), ("K", "7"), ("kk", "19")]);
}

#[test]
fn every_supported_zone_letter_renders_like_java() {
    check(
        &kolkata_morning(),
        &[
            ("VV", "Asia/Kolkata"),
            ("X", "+0530"),
            ("XX", "+0530"),
            ("XXX", "+05:30"),
            ("XXXX", "+0530"),
            ("XXXXX", "+05:30"),
            ("x", "+0530"),
            ("xxx", "+05:30"),
            ("Z", "+0530"),
            ("ZZZ", "+0530"),
            ("ZZZZ", "GMT+05:30"),
            ("ZZZZZ", "+05:30"),
            ("O", "GMT+5:30"),
            ("OOOO", "GMT+05:30"),
        ],
    );
    let tokyo = zoned(Asia::Tokyo, (2026, 7, 13), (14, 5, 9), 0);
    check(
        &tokyo,
        &[
            ("X", "+09"),
            ("XX", "+0900"),
            ("XXX", "+09:00"),
            ("x", "+09"),
            ("O", "GMT+9"),
            ("OOOO", "GMT+09:00"),
        ],
    );
    let utc = zoned(UTC, (2026, 7, 13), (14, 5, 9), 0);
    check(
        &utc,
        &[
            ("VV", "UTC"),
            ("X", "Z"),
            ("XXX", "Z"),
            ("XXXXX", "Z"),
            ("x", "+00"),
            ("xx", "+0000"),
            ("xxx", "+00:00"),
            ("xxxx", "+0000"),
            ("xxxxx", "+00:00"),
            ("Z", "+0000"),
            ("ZZZZ", "GMT"),
            ("ZZZZZ", "Z"),
            ("O", "GMT"),
            ("OOOO", "GMT"),
        ],
    );
    // New York local mean time before 1883: -4:56:02, so seconds show where Java shows them.
    let lmt = zoned(America::New_York, (1880, 1, 1), (12, 0, 0), 0);
    check(
        &lmt,
        &[
            ("X", "-0456"),
            ("XX", "-0456"),
            ("XXX", "-04:56"),
            ("XXXX", "-045602"),
            ("XXXXX", "-04:56:02"),
            ("ZZZZZ", "-04:56:02"),
            ("O", "GMT-4:56:02"),
            ("OOOO", "GMT-04:56:02"),
        ],
    );
}

#[test]
fn years_before_the_common_era_use_year_of_era_for_y_and_proleptic_year_for_u() {
    let bc = zoned(UTC, (-43, 3, 15), (12, 0, 0), 0);
    check(&bc, &[("yyyy G", "0044 BC"), ("uuuu", "-0043"), ("yy", "44"), ("uu", "43")]);
    let far = zoned(UTC, (12345, 1, 1), (0, 0, 0), 0);
    check(&far, &[("yyyy", "+12345"), ("y", "12345"), ("yy", "45")]);
}

#[test]
fn fraction_of_second_is_truncated_not_rounded() {
    let dt = zoned(UTC, (2026, 1, 1), (0, 0, 0), 999_999_999);
    check(&dt, &[("S", "9"), ("SS", "99"), ("SSSSSSSS", "99999999"), ("ss", "00")]);
}

#[test]
fn quoted_text_is_literal_and_two_quotes_are_one_quote() {
    let dt = zoned(UTC, (2018, 8, 27), (10, 30, 0), 0);
    check(
        &dt,
        &[
            ("yyyy'-'MM'-'dd", "2018-08-27"),
            ("HH''mm", "10'30"),
            ("h 'o''clock' a", "10 o'clock AM"),
            ("''", "'"),
            ("'yyyy'", "yyyy"),
            ("'''a'", "'a"),
            ("'day='dd", "day=27"),
        ],
    );
}

#[test]
fn non_letters_are_literal_and_optional_sections_are_transparent() {
    let dt = zoned(UTC, (2018, 8, 27), (10, 30, 0), 0);
    check(
        &dt,
        &[
            ("yyyy/MM/dd/HH/", "2018/08/27/10/"),
            ("yyyy-MM-dd=HH_mm.ss", "2018-08-27=10_30.00"),
            ("[yyyy]", "2018"),
            ("yyyy[/MM[/dd]]", "2018/08/27"),
            ("yyyy[/MM", "2018/08"),
            ("é yyyy", "é 2018"),
            ("", ""),
        ],
    );
}

#[test]
fn unknown_letters_are_rejected_naming_the_letter() {
    let err = JavaDateTimePattern::parse("yyyy-bb").unwrap_err();
    assert_eq!(err, PatternError::UnknownLetter { letter: 'b', position: 5 });
    assert!(err.to_string().contains("'b'"), "{err}");
    for letter in ['b', 'f', 'i', 'j', 'l', 'o', 'r', 't', 'C', 'I', 'J', 'P', 'R', 'T', 'U'] {
        assert!(
            matches!(
                JavaDateTimePattern::parse(&letter.to_string()),
                Err(PatternError::UnknownLetter { letter: l, .. }) if l == letter
            ),
            "{letter}"
        );
    }
}

#[test]
fn locale_dependent_letters_are_rejected_as_unsupported() {
    for pattern in ["YYYY", "ww", "W", "e", "c", "F", "z", "zzzz", "v", "B", "g", "ppH"] {
        let err = JavaDateTimePattern::parse(pattern).unwrap_err();
        let letter = pattern.chars().next().unwrap_or_default();
        assert!(
            matches!(err, PatternError::UnsupportedLetter { letter: l, .. } if l == letter),
            "{pattern}: {err}"
        );
        assert!(err.to_string().contains(&format!("'{letter}'")), "{err}");
    }
}

#[test]
fn letter_counts_java_rejects_are_rejected() {
    for pattern in [
        "ddd",
        "HHH",
        "hhh",
        "kkk",
        "KKK",
        "mmm",
        "sss",
        "DDDD",
        "aa",
        "SSSSSSSSSS",
        "V",
        "VVV",
        "OO",
        "OOO",
        "XXXXXX",
        "xxxxxx",
        "ZZZZZZ",
        "EEEEEE",
        "MMMMMM",
        "QQQQQQ",
        "GGGGGG",
        "yyyyyyyyyyyyyyyyyyyy",
    ] {
        let err = JavaDateTimePattern::parse(pattern).unwrap_err();
        assert!(
            matches!(err, PatternError::InvalidLetterCount { count, .. } if count == pattern.len()),
            "{pattern}: {err}"
        );
    }
}

#[test]
fn malformed_literals_and_reserved_characters_are_rejected() {
    assert_eq!(
        JavaDateTimePattern::parse("yyyy'-MM").unwrap_err(),
        PatternError::UnterminatedLiteral { position: 4 }
    );
    assert_eq!(
        JavaDateTimePattern::parse("'''").unwrap_err(),
        PatternError::UnterminatedLiteral { position: 2 }
    );
    assert_eq!(
        JavaDateTimePattern::parse("yyyy]").unwrap_err(),
        PatternError::UnmatchedOptionalEnd { position: 4 }
    );
    for (pattern, ch) in [("yyyy#", '#'), ("{", '{'), ("HH}", '}')] {
        assert!(
            matches!(
                JavaDateTimePattern::parse(pattern),
                Err(PatternError::ReservedCharacter { ch: c, .. }) if c == ch
            ),
            "{pattern}"
        );
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    const ZONES: [Tz; 5] =
        [UTC, Asia::Tokyo, Asia::Kolkata, America::New_York, chrono_tz::Australia::Lord_Howe];

    fn instant() -> impl Strategy<Value = DateTime<Tz>> {
        // 1900-01-01 .. 2200-01-01, any zone of a handful with odd offsets and DST.
        (-2_208_988_800_000i64..7_258_118_400_000i64, 0..ZONES.len(), 0u32..1_000_000).prop_map(
            |(ms, zone, sub_ms)| {
                let utc = DateTime::from_timestamp_millis(ms).expect("in range")
                    + chrono::Duration::nanoseconds(i64::from(sub_ms));
                utc.with_timezone(&ZONES[zone])
            },
        )
    }

    proptest! {
        #[test]
        fn numeric_fields_agree_with_chrono_strftime(dt in instant()) {
            prop_assert_eq!(
                fmt("uuuu-MM-dd HH:mm:ss.SSSSSSSSS DDD", &dt),
                dt.format("%Y-%m-%d %H:%M:%S%.9f %j").to_string()
            );
        }

        #[test]
        fn text_fields_agree_with_chrono_strftime(dt in instant()) {
            prop_assert_eq!(
                fmt("EEE EEEE MMM MMMM d h a", &dt),
                dt.format("%a %A %b %B %-d %-I %p").to_string()
            );
        }

        #[test]
        fn colon_offsets_agree_with_chrono_except_for_zero(dt in instant()) {
            // chrono prints +00:00 where Java's XXX prints Z; seconds are dropped by both.
            prop_assert_eq!(fmt("xxx", &dt), dt.format("%:z").to_string());
            prop_assert_eq!(fmt("xx", &dt), dt.format("%z").to_string());
        }

        #[test]
        fn key_suffix_time_is_the_java_pattern_yyyy_mm_dd_hh_mm_ss(dt in instant()) {
            let mut fast = String::new();
            Moment::new(&dt).push_key_suffix_time(&mut fast);
            prop_assert_eq!(fast, fmt("yyyy-MM-dd-HH-mm-ss", &dt));
        }

        #[test]
        fn parsing_any_text_never_panics(s in "\\PC{0,40}") {
            let _ = JavaDateTimePattern::parse(&s);
        }
    }
}
