//! What the OpenX and Hive deserializers read: timestamps, key matching, strings and nested JSON.

use super::*;

#[test]
fn openx_timestamp_forms_are_all_read() {
    let expected = micros("2017-02-07T15:13:01Z");
    let out = rows(
        &openx(),
        &[("ts", "timestamp")],
        &[
            r#"{"ts":"2017-02-07T15:13:01Z"}"#,
            r#"{"ts":"2017-02-07T15:13:01.000000000Z"}"#,
            r#"{"ts":"2017-2-7 15:13:01"}"#,
            r#"{"ts":1486480381}"#,
            r#"{"ts":1486480381000}"#,
            r#"{"ts":"1486480381000"}"#,
            r#"{"ts":1486480381.0}"#,
        ],
    );
    for row in &out {
        assert_eq!(row["ts"], json!(expected), "{row}");
    }
    let e = error(&openx(), &[("ts", "timestamp")], r#"{"ts":"07/02/2017"}"#);
    assert_eq!(e.code, INVALID_SCHEMA);
    assert!(e.message.contains("column `ts` (timestamp): cannot parse timestamp"), "{e}");
}

#[test]
fn openx_matches_keys_case_insensitively_by_default_and_exactly_when_told() {
    let spec = &[("userid", "int"), ("Name", "string"), ("s", "struct<Inner:int>")];
    let record = r#"{"UserId":1,"NAME":"a","S":{"INNER":2}}"#;
    assert_eq!(rows(&openx(), spec, &[record]), [json!({"userid":1,"Name":"a","s":{"Inner":2}})]);
    let exact = conversion("{OpenXJsonSerDe: {CaseInsensitive: false}}", "{}");
    assert_eq!(rows(&exact, spec, &[record]), [json!({"userid":null,"Name":null,"s":null})]);
    assert_eq!(
        rows(&exact, spec, &[r#"{"userid":1,"Name":"a","s":{"Inner":2}}"#]),
        [json!({"userid":1,"Name":"a","s":{"Inner":2}})]
    );
}

#[test]
fn openx_converts_dots_in_keys_to_underscores_when_told() {
    let spec = &[("a_b", "int"), ("n", "struct<c_d:int>")];
    let record = r#"{"a.b":1,"n":{"c.d":2}}"#;
    assert_eq!(rows(&openx(), spec, &[record]), [json!({"a_b":null,"n":{"c_d":null}})]);
    let dots = conversion("{OpenXJsonSerDe: {ConvertDotsInJsonKeysToUnderscores: true}}", "{}");
    assert_eq!(rows(&dots, spec, &[record]), [json!({"a_b":1,"n":{"c_d":2}})]);
}

#[test]
fn openx_column_to_json_key_mappings_rename_top_level_keys() {
    let conv = conversion(
        "{OpenXJsonSerDe: {ColumnToJsonKeyMappings: {ts: timestamp, kind: Type}}}",
        "{}",
    );
    let spec = &[("ts", "bigint"), ("kind", "string"), ("other", "int")];
    let out = rows(&conv, spec, &[r#"{"timestamp":5,"type":"x","ts":99,"other":1}"#]);
    // a mapped column reads only its mapped key (case-insensitively), not its own name
    assert_eq!(out, [json!({"ts":5,"kind":"x","other":1})]);
}

#[test]
fn openx_lowercases_map_keys_and_hive_keeps_them() {
    let spec = &[("m", "map<string,int>")];
    let record = r#"{"m":{"UserAgent":1}}"#;
    assert_eq!(rows(&openx(), spec, &[record]), [json!({"m":[["useragent",1]]})]);
    assert_eq!(rows(&hive(), spec, &[record]), [json!({"m":[["UserAgent",1]]})]);
}

#[test]
fn missing_keys_are_null_and_extra_keys_are_ignored() {
    let out = rows(&openx(), &[("a", "int"), ("b", "string")], &[r#"{"a":1,"zzz":{"deep":[1]}}"#]);
    assert_eq!(out, [json!({"a":1,"b":null})]);
}

#[test]
fn hive_timestamp_formats_including_millis_are_honoured() {
    let conv = conversion(
        r#"{HiveJsonSerDe: {TimestampFormats: ["millis", "dd/MM/yyyy HH:mm:ss.SSS", "yyyy-MM-dd'T'HH:mm:ssZZ"]}}"#,
        "{}",
    );
    let expected = micros("2017-02-07T15:13:01.250Z");
    let out = rows(
        &conv,
        &[("ts", "timestamp")],
        &[
            r#"{"ts":1486480381250}"#,
            r#"{"ts":"1486480381250"}"#,
            r#"{"ts":"07/02/2017 15:13:01.250"}"#,
            r#"{"ts":"2017-02-07 15:13:01.25"}"#,
        ],
    );
    for row in &out {
        assert_eq!(row["ts"], json!(expected), "{row}");
    }
    let offset = rows(&conv, &[("ts", "timestamp")], &[r#"{"ts":"2017-02-07T17:13:01+02:00"}"#]);
    assert_eq!(offset[0]["ts"], json!(micros("2017-02-07T15:13:01Z")));
    let e = error(&conv, &[("ts", "timestamp")], r#"{"ts":"Feb 7 2017"}"#);
    assert!(e.message.contains("TimestampFormats"), "{e}");
}

#[test]
fn hive_without_formats_rejects_epoch_numbers_and_iso_strings() {
    for record in [r#"{"ts":1486480381}"#, r#"{"ts":"2017-02-07T15:13:01Z"}"#] {
        assert_eq!(error(&hive(), &[("ts", "timestamp")], record).code, INVALID_SCHEMA);
    }
}

#[test]
fn hive_rejects_strings_where_the_schema_wants_numbers_and_openx_reads_them() {
    let spec = &[("n", "int"), ("x", "double")];
    let e = error(&hive(), spec, r#"{"n":"42"}"#);
    assert_eq!(e.code, INVALID_SCHEMA);
    assert!(
        e.message.contains("column `n` (int): expected a number, found the string \"42\""),
        "{e}"
    );
    assert_eq!(error(&hive(), spec, r#"{"x":"1.5"}"#).code, INVALID_SCHEMA);
    assert_eq!(
        rows(&openx(), spec, &[r#"{"n":"42","x":"1.5"}"#, r#"{"n":"0x2A","x":2}"#]),
        [json!({"n":42,"x":1.5}), json!({"n":42,"x":2.0})]
    );
}

#[test]
fn hive_does_not_stringify_nested_json_but_openx_does() {
    let spec = &[("s", "string")];
    let record = r#"{"s":{"a":[1,"b"]}}"#;
    assert!(error(&hive(), spec, record).message.contains("does not turn nested JSON"));
    assert_eq!(rows(&openx(), spec, &[record]), [json!({"s":"{\"a\":[1,\"b\"]}"})]);
    assert_eq!(
        rows(&hive(), spec, &[r#"{"s":12.5}"#, r#"{"s":true}"#]),
        [json!({"s":"12.5"}), json!({"s":"true"})]
    );
}
