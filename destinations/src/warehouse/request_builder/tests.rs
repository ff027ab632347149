use super::*;
use crate::warehouse::parse_pg_copy_options;

fn cols(spec: &[(&str, bool)]) -> Vec<Column> {
    spec.iter().map(|(n, t)| Column { name: (*n).into(), is_text: *t }).collect()
}

/// The COPY rows as strings, plus the rejected record indexes.
fn rows(body: &str, options: &str, columns: &[Column]) -> (Vec<String>, Vec<usize>, Vec<usize>) {
    let options = parse_pg_copy_options(options).unwrap();
    let r = copy_rows(body.as_bytes(), &options, columns);
    let text = std::str::from_utf8(&r.data).unwrap();
    let lines = text.lines().map(String::from).collect();
    (lines, r.indexes.clone(), r.rejected.iter().map(|r| r.index).collect())
}

#[test]
fn json_auto_matches_keys_to_columns_ignoring_case_and_nulls_missing_keys() {
    let columns = cols(&[("id", false), ("name", true), ("Tags", true), ("extra", true)]);
    let body = "{\"ID\":1,\"name\":\"a\\tb\",\"tags\":[1, 2]}\n{\"id\":2.50,\"name\":null,\"extra\":{\"k\":\"v\"}}\n";
    let (lines, indexes, rejected) = rows(body, "JSON 'auto'", &columns);
    assert_eq!(lines, ["1\ta\\tb\t[1, 2]\t\\N", "2.50\t\\N\t\\N\t{\"k\":\"v\"}"]);
    assert_eq!(indexes, [0, 1]);
    assert!(rejected.is_empty());
}

#[test]
fn json_auto_prefers_an_exact_key_over_a_case_insensitive_one() {
    let columns = cols(&[("name", true)]);
    let (lines, _, _) = rows("{\"NAME\":\"upper\",\"name\":\"exact\"}", "JSON 'auto'", &columns);
    assert_eq!(lines, ["exact"]);
}

#[test]
fn json_auto_keeps_numbers_exactly_as_written_and_booleans_as_words() {
    let columns = cols(&[("n", false), ("b", false)]);
    let (lines, _, _) =
        rows("{\"n\":12345678901234567890.123456789,\"b\":true}", "JSON 'auto'", &columns);
    assert_eq!(lines, ["12345678901234567890.123456789\ttrue"]);
}

#[test]
fn json_auto_reads_concatenated_objects_as_separate_records() {
    let columns = cols(&[("a", false)]);
    let (lines, indexes, _) = rows("{\"a\":1}{\"a\":2}\n\n  {\"a\":3}", "JSON 'auto'", &columns);
    assert_eq!(lines, ["1", "2", "3"]);
    assert_eq!(indexes, [0, 1, 2]);
    let o = parse_pg_copy_options("JSON 'auto'").unwrap();
    assert_eq!(record_spans(b"{\"a\":1}{\"a\":2}\n\n  {\"a\":3}", &o), [0..7, 7..14, 18..25]);
}

#[test]
fn json_auto_rejects_invalid_json_and_non_objects_by_record_index() {
    let columns = cols(&[("a", false)]);
    let body = "{\"a\":1}\nnot json\n[1]\n{\"a\":4}\n";
    let options = parse_pg_copy_options("JSON 'auto'").unwrap();
    let r = copy_rows(body.as_bytes(), &options, &columns);
    assert_eq!(r.indexes, [0, 3]);
    assert_eq!(r.rejected.len(), 2);
    assert_eq!(r.rejected[0].index, 1);
    assert!(r.rejected[0].message.starts_with("record is not valid JSON"), "{:?}", r.rejected);
    assert_eq!(r.rejected[1].index, 2);
    assert_eq!(
        r.rejected[1].message,
        "JSON 'auto' needs one JSON object per record; this record is an array"
    );
    assert_eq!(r.rejected[1].code, "Redshift.DataLoadFailed");
    assert_eq!(record_spans(body.as_bytes(), &options), [0..7, 8..16, 17..20, 21..28]);
}

#[test]
fn empty_strings_are_null_for_non_text_columns_and_kept_for_text_ones() {
    let columns = cols(&[("n", false), ("s", true)]);
    let (lines, _, _) = rows("{\"n\":\"\",\"s\":\"\"}", "JSON 'auto'", &columns);
    assert_eq!(lines, ["\\N\t"]);
    let (lines, _, _) = rows("{\"n\":\" \",\"s\":\"\"}", "JSON 'auto' EMPTYASNULL", &columns);
    assert_eq!(lines, ["\\N\t\\N"]);
}

#[test]
fn delimited_text_applies_null_as_and_blanks_as_null() {
    let columns = cols(&[("a", true), ("b", true), ("c", false), ("d", true)]);
    let (lines, _, _) = rows("x|\\N||\n  |nil| |y\n", "", &columns);
    assert_eq!(lines, ["x\t\\N\t\\N\t", "  \tnil\t\\N\ty"]);
    let (lines, _, _) = rows("  |nil| |y\n", "NULL AS 'nil' BLANKSASNULL", &columns);
    assert_eq!(lines, ["\\N\t\\N\t\\N\ty"]);
}

#[test]
fn delimited_text_with_escape_makes_the_next_character_literal() {
    let columns = cols(&[("a", true), ("b", true)]);
    let (lines, _, _) = rows("a\\|b|c\\\\d\n\\N|x\n", "DELIMITER '|' ESCAPE", &columns);
    assert_eq!(lines, ["a|b\tc\\\\d", "\\N\tx"]);
}

#[test]
fn csv_handles_quotes_custom_delimiters_header_lines_and_crlf() {
    let columns = cols(&[("a", true), ("b", true), ("c", false)]);
    let body = "h1\nh2\n\"x;y\";\"say \"\"hi\"\"\";1\r\n;\"\";\r\n\n'q';NULL;2\n";
    let (lines, indexes, rejected) =
        rows(body, "CSV DELIMITER ';' IGNOREHEADER 2 NULL AS 'NULL'", &columns);
    assert_eq!(lines, ["x;y\tsay \"hi\"\t1", "\t\t\\N", "'q'\t\\N\t2"]);
    assert_eq!(indexes, [0, 1, 3]);
    assert!(rejected.is_empty());
    let options = parse_pg_copy_options("CSV IGNOREHEADER 2").unwrap();
    assert_eq!(record_spans(body.as_bytes(), &options).len(), 4);
}

#[test]
fn csv_rejects_unterminated_quotes_and_garbage_after_a_quote() {
    let columns = cols(&[("a", true), ("b", true)]);
    let options = parse_pg_copy_options("CSV").unwrap();
    let r = copy_rows(b"\"open,x\nok,1\n\"a\"b,2\n", &options, &columns);
    assert_eq!(r.indexes, [1]);
    let messages: Vec<_> = r.rejected.iter().map(|r| (r.index, r.message.as_str())).collect();
    assert_eq!(messages[0].0, 0);
    assert!(messages[0].1.starts_with("unterminated quoted field in column 1"));
    assert_eq!(messages[1], (2, "unexpected character after the closing quote of column 1"));
}

#[test]
fn tabs_newlines_and_backslashes_in_values_are_escaped_for_copy() {
    let columns = cols(&[("a", true)]);
    let (lines, _, _) = rows("{\"a\":\"1\\t2\\n3\\r4\\\\5\"}", "JSON 'auto'", &columns);
    assert_eq!(lines, ["1\\t2\\n3\\r4\\\\5"]);
}

#[test]
fn invalid_utf8_is_rejected_before_the_database_sees_it() {
    let columns = cols(&[("a", true)]);
    let options = parse_pg_copy_options("").unwrap();
    let r = copy_rows(b"ok\n\xff\xfe\n", &options, &columns);
    assert_eq!(r.indexes, [0]);
    assert_eq!(r.rejected[0].index, 1);
    assert!(r.rejected[0].message.contains("not valid UTF-8"));
}

#[test]
fn row_slices_are_contiguous_copy_lines() {
    let columns = cols(&[("a", true)]);
    let options = parse_pg_copy_options("").unwrap();
    let r = copy_rows(b"a\nb\nc\n", &options, &columns);
    assert_eq!(r.len(), 3);
    assert_eq!(&r.slice(1..3)[..], b"b\nc\n");
    assert_eq!(&r.slice(0..0)[..], b"");
}

#[test]
fn gzip_bodies_are_decompressed_and_broken_ones_are_permanent_errors() {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(b"a|b\n").unwrap();
    let gz = Bytes::from(enc.finish().unwrap());
    assert_eq!(&decompress(&gz, true).unwrap()[..], b"a|b\n");
    assert_eq!(decompress(&gz, false).unwrap(), gz);
    let err = decompress(&Bytes::from_static(b"plain"), true).unwrap_err();
    assert!(!err.is_retryable());
    assert!(err.message.contains("not valid GZIP"));
}

#[test]
fn copy_sql_quotes_resolved_columns() {
    let table = TableName {
        parts: vec![
            Ident { sql: "s".into(), name: "s".into() },
            Ident { sql: "T".into(), name: "t".into() },
        ],
    };
    assert_eq!(
        postgres_copy_sql(&table, &cols(&[("id", false), ("My \"col\"", true)])),
        "COPY s.T (\"id\", \"My \"\"col\"\"\") FROM STDIN"
    );
    assert_eq!(postgres_copy_sql(&table, &[]), "COPY s.T FROM STDIN");
}

#[test]
fn configured_columns_resolve_by_folded_name_and_unknown_ones_are_named() {
    let table = cols(&[("id", false), ("name", true), ("ts", false)]);
    let ident = |n: &str| Ident { sql: n.into(), name: n.into() };
    let got = resolve_columns(Some(&[ident("ts"), ident("id")]), table.clone()).unwrap();
    assert_eq!(got, cols(&[("ts", false), ("id", false)]));
    assert_eq!(resolve_columns(Some(&[ident("nope")]), table.clone()).unwrap_err(), "nope");
    assert_eq!(resolve_columns(None, table.clone()).unwrap(), table);
}
