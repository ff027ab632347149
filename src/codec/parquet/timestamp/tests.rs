use super::*;
use serde_json::json;

fn micros(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros()
}

#[test]
fn openx_reads_iso_utc_timestamps_with_up_to_nine_fraction_digits() {
    assert_eq!(openx_timestamp(&json!("2017-02-07T15:13:01Z")), Ok(micros("2017-02-07T15:13:01Z")));
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
    assert_eq!(openx_timestamp(&json!("2017-2-7 15:13:01")), Ok(micros("2017-02-07T15:13:01Z")));
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
