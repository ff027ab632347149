use super::*;

#[test]
fn decimals_are_scaled_and_rounded_half_up() {
    assert_eq!(parse_decimal("12.345", 10, 2), Ok(1235));
    assert_eq!(parse_decimal("-12.344", 10, 2), Ok(-1234));
    assert_eq!(parse_decimal("1e3", 10, 2), Ok(100_000));
    assert_eq!(parse_decimal("0.005", 3, 2), Ok(1));
    assert_eq!(parse_decimal("0.0049", 3, 2), Ok(0));
    assert_eq!(parse_decimal("0", 1, 0), Ok(0));
    assert_eq!(
        parse_decimal("99999999999999999999999999999999999999", 38, 0).map(|v| v.to_string().len()),
        Ok(38)
    );
    assert!(parse_decimal("1000", 5, 2).is_err());
    assert!(parse_decimal("999.995", 5, 2).is_err());
    assert!(parse_decimal("abc", 5, 2).is_err());
    assert!(parse_decimal(".", 5, 2).is_err());
    assert!(parse_decimal("1e400", 38, 0).is_err());
}

#[test]
fn keys_are_normalised_as_configured() {
    let openx = Deser::OpenX { case_insensitive: true, convert_dots: true };
    assert_eq!(openx.field_key("User.Id"), "user_id");
    let exact = Deser::OpenX { case_insensitive: false, convert_dots: false };
    assert_eq!(exact.field_key("User.Id"), "User.Id");
    let hive = Deser::Hive { formats: vec![] };
    assert_eq!(hive.field_key("UserId"), "userid");
    assert_eq!(hive.map_key("UserId"), "UserId");
}
