//! Records that fail (and the others that are still written), concatenated objects, malformed input.

use super::*;

#[test]
fn numbers_that_overflow_or_are_not_integral_are_record_errors() {
    let cases = [
        (("t", "tinyint"), r#"{"t":128}"#, "out of range"),
        (("t", "smallint"), r#"{"t":-32769}"#, "out of range"),
        (("t", "int"), r#"{"t":2147483648}"#, "out of range"),
        (("t", "bigint"), r#"{"t":9223372036854775808}"#, "out of range"),
        (("t", "int"), r#"{"t":1.5}"#, "expected an integer"),
        (("t", "float"), r#"{"t":1e300}"#, "out of range for float"),
        (("t", "decimal(4,2)"), r#"{"t":123.4}"#, "does not fit decimal(4,2)"),
        (("t", "int"), r#"{"t":"0x80000000"}"#, "out of range"),
        (("t", "int"), r#"{"t":2147483648.0}"#, "out of range"),
        (("t", "bigint"), r#"{"t":9.223372036854775807e18}"#, "out of range"),
    ];
    for (column, record, message) in cases {
        let e = error(&openx(), &[column], record);
        assert_eq!(e.code, INVALID_SCHEMA, "{record}");
        assert!(e.message.contains(message), "{record}: {e}");
    }
    assert_eq!(rows(&openx(), &[("t", "int")], &[r#"{"t":3.0}"#]), [json!({"t":3})]);
}

#[test]
fn error_messages_name_the_nested_path() {
    let spec = &[("p", "struct<items:array<struct<qty:int>>>")];
    let e = error(&hive(), spec, r#"{"p":{"items":[{"qty":1},{"qty":"x"}]}}"#);
    assert!(e.message.starts_with("column `p.items[1].qty` (int): expected a number"), "{e}");
    let e = error(&openx(), &[("m", "map<int,string>")], r#"{"m":{"k":"v"}}"#);
    assert!(e.message.starts_with("column `m[\"k\"]` (int): expected an integer"), "{e}");
}

#[test]
fn a_failing_record_is_reported_and_the_others_are_written() {
    let spec = &[("id", "int"), ("tags", "array<string>"), ("m", "map<string,int>")];
    let (results, out) = convert(
        &hive(),
        spec,
        &[
            r#"{"id":1,"tags":["a"],"m":{"x":1}}"#,
            // the second object fails deep inside: neither object of this record is written
            r#"{"id":2,"tags":["b","c"],"m":{"y":2}} {"id":3,"tags":["d"],"m":{"z":"bad"}}"#,
            r#"{"id":4,"tags":["e"],"m":{"w":4}}"#,
        ],
    );
    assert!(results[0].is_ok() && results[2].is_ok());
    let e = results[1].as_ref().unwrap_err();
    assert_eq!(e.code, INVALID_SCHEMA);
    assert!(e.message.starts_with("JSON object 2 of the record: column `m[\"z\"]`"), "{e}");
    assert_eq!(
        out,
        [json!({"id":1,"tags":["a"],"m":[["x",1]]}), json!({"id":4,"tags":["e"],"m":[["w",4]]}),]
    );
}

#[test]
fn concatenated_json_objects_in_one_record_become_rows() {
    let mut enc = encoder(&openx(), &[("a", "int")]);
    enc.push(br#"{"a":1}{"a":2}"#).unwrap();
    enc.push(b"{\"a\":3}\n{\"a\":4}\n").unwrap();
    assert_eq!(enc.rows(), 4);
    let (_, out) = read_rows(&enc.finish().unwrap());
    assert_eq!(out, [json!({"a":1}), json!({"a":2}), json!({"a":3}), json!({"a":4})]);
}

#[test]
fn a_top_level_array_scalars_empty_records_and_bad_json_are_malformed() {
    let spec = &[("a", "int")];
    for (record, message) in [
        (r#"[{"a":1},{"a":2}]"#, "top-level JSON array is not valid input"),
        (r#"{"a":1}[{"a":2}]"#, "JSON object 2 of the record: a top-level JSON array"),
        ("42", "expected a JSON object, found the number 42"),
        ("  \n", "holds no JSON object"),
        (r#"{"a":1"#, "not valid JSON"),
        (r#"{"a":1}garbage"#, "not valid JSON"),
        ("{\"a\":\"\u{0}\"}", "not valid JSON"),
    ] {
        let e = error(&openx(), spec, record);
        assert_eq!(e.code, MALFORMED_DATA, "{record}");
        assert!(e.message.contains(message), "{record}: {e}");
    }
    let mut enc = encoder(&openx(), spec);
    assert_eq!(enc.push(b"{\"a\":\"\xff\"}").unwrap_err().code, MALFORMED_DATA);
    assert_eq!(enc.rows(), 0);
}
