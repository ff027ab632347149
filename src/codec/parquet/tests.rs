//! End-to-end tests: records through `ParquetEncoder`, read back with parquet's own Arrow reader.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, TimestampMicrosecondType,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use base64::Engine as _;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::metadata::ParquetMetaData;
use serde_json::{json, Map, Value};

use super::config::DataFormatConversionConfiguration;
use super::*;

fn conversion(deserializer: &str, parquet: &str) -> DataFormatConversionConfiguration {
    let yaml = format!(
        "InputFormatConfiguration: {{Deserializer: {deserializer}}}\n\
         OutputFormatConfiguration: {{Serializer: {{ParquetSerDe: {parquet}}}}}"
    );
    serde_yaml_ng::from_str(&yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
}

fn openx() -> DataFormatConversionConfiguration {
    conversion("{OpenXJsonSerDe: {}}", "{}")
}

fn hive() -> DataFormatConversionConfiguration {
    conversion("{HiveJsonSerDe: {}}", "{}")
}

fn columns(spec: &[(&str, &str)]) -> Vec<Column> {
    spec.iter().map(|(n, t)| Column::new(*n, *t)).collect()
}

fn encoder(conv: &DataFormatConversionConfiguration, spec: &[(&str, &str)]) -> ParquetEncoder {
    ParquetEncoder::new(conv, &columns(spec)).unwrap_or_else(|e| panic!("{e}"))
}

/// Pushes the records, returns each push result and the rows read back as JSON objects.
fn convert(
    conv: &DataFormatConversionConfiguration,
    spec: &[(&str, &str)],
    records: &[&str],
) -> (Vec<Result<(), RecordError>>, Vec<Value>) {
    let mut enc = encoder(conv, spec);
    let results = records.iter().map(|r| enc.push(r.as_bytes())).collect();
    let file = enc.finish().unwrap();
    (results, read_rows(&file).1)
}

/// Converts records that must all succeed.
fn rows(
    conv: &DataFormatConversionConfiguration,
    spec: &[(&str, &str)],
    records: &[&str],
) -> Vec<Value> {
    let (results, rows) = convert(conv, spec, records);
    for (record, result) in records.iter().zip(results) {
        result.unwrap_or_else(|e| panic!("{record}: {e}"));
    }
    rows
}

/// The first error of converting one record.
fn error(
    conv: &DataFormatConversionConfiguration,
    spec: &[(&str, &str)],
    record: &str,
) -> RecordError {
    let mut enc = encoder(conv, spec);
    enc.push(record.as_bytes()).expect_err(record)
}

fn read_rows(file: &[u8]) -> (std::sync::Arc<ParquetMetaData>, Vec<Value>) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(file.to_vec())).unwrap();
    let metadata = builder.metadata().clone();
    let batches: Vec<RecordBatch> = builder.build().unwrap().map(|b| b.unwrap()).collect();
    let mut out = Vec::new();
    for batch in &batches {
        for row in 0..batch.num_rows() {
            let mut object = Map::new();
            for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
                object.insert(field.name().clone(), cell(column.as_ref(), row));
            }
            out.push(Value::Object(object));
        }
    }
    (metadata, out)
}

/// Renders one Arrow value as JSON: timestamps as microseconds, dates as days, decimals as
/// strings, binary as base64, maps as `[[key, value], ...]`.
fn cell(array: &dyn Array, row: usize) -> Value {
    if array.is_null(row) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Utf8 => json!(array.as_string::<i32>().value(row)),
        DataType::Boolean => json!(array.as_boolean().value(row)),
        DataType::Int8 => json!(array.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => json!(array.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => json!(array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => json!(array.as_primitive::<Int64Type>().value(row)),
        DataType::Float32 => json!(array.as_primitive::<Float32Type>().value(row)),
        DataType::Float64 => json!(array.as_primitive::<Float64Type>().value(row)),
        DataType::Date32 => json!(array.as_primitive::<Date32Type>().value(row)),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            json!(array.as_primitive::<TimestampMicrosecondType>().value(row))
        }
        DataType::Decimal128(_, _) => {
            json!(array.as_primitive::<Decimal128Type>().value_as_string(row))
        }
        DataType::Binary => {
            json!(base64::engine::general_purpose::STANDARD
                .encode(array.as_binary::<i32>().value(row)))
        }
        DataType::List(_) => {
            let list = array.as_list::<i32>().value(row);
            Value::Array((0..list.len()).map(|i| cell(list.as_ref(), i)).collect())
        }
        DataType::Struct(fields) => {
            let s = array.as_struct();
            Value::Object(
                fields
                    .iter()
                    .zip(s.columns())
                    .map(|(f, c)| (f.name().clone(), cell(c.as_ref(), row)))
                    .collect(),
            )
        }
        DataType::Map(_, _) => {
            let entries = array.as_map().value(row);
            let (k, v) = (entries.column(0), entries.column(1));
            Value::Array((0..entries.len()).map(|i| json!([cell(k, i), cell(v, i)])).collect())
        }
        other => panic!("unexpected type {other}"),
    }
}

fn micros(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp_micros()
}

const ALL_TYPES: &[(&str, &str)] = &[
    ("s", "string"),
    ("vc", "varchar(3)"),
    ("ch", "char(4)"),
    ("ti", "tinyint"),
    ("si", "smallint"),
    ("i", "int"),
    ("ig", "integer"),
    ("bi", "bigint"),
    ("f", "float"),
    ("d", "double"),
    ("b", "boolean"),
    ("ts", "timestamp"),
    ("dt", "date"),
    ("dec", "decimal(10,2)"),
    ("bin", "binary"),
    ("arr", "array<int>"),
    ("st", "struct<a:string,b:bigint>"),
    ("m", "map<string,double>"),
];

#[test]
fn every_glue_type_round_trips_through_a_parquet_file() {
    let record = r#"{"s":"héllo","vc":"abcdef","ch":"xy","ti":-128,"si":32767,"i":-5,"ig":7,
        "bi":9007199254740993,"f":1.5,"d":-2.25,"b":true,"ts":"2024-01-02T03:04:05.123456Z",
        "dt":"2024-01-02","dec":"12345678.915","bin":"aGk=","arr":[1,null,3],
        "st":{"a":"x","b":5},"m":{"k":1.5,"n":null}}"#;
    let out = rows(&openx(), ALL_TYPES, &[record, "{}"]);
    assert_eq!(
        out[0],
        json!({"s":"héllo","vc":"abc","ch":"xy  ","ti":-128,"si":32767,"i":-5,"ig":7,
            "bi":9007199254740993i64,"f":1.5,"d":-2.25,"b":true,
            "ts":micros("2024-01-02T03:04:05.123456Z"),"dt":19724,"dec":"12345678.92",
            "bin":"aGk=","arr":[1,null,3],"st":{"a":"x","b":5},"m":[["k",1.5],["n",null]]})
    );
    // a missing key is null for every type
    assert!(out[1].as_object().unwrap().values().all(Value::is_null), "{}", out[1]);
}

#[test]
fn the_file_schema_uses_the_documented_arrow_types() {
    let enc = encoder(&openx(), ALL_TYPES);
    let schema = enc.schema().clone();
    let file = enc.finish().unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(file)).unwrap();
    assert_eq!(builder.schema().as_ref(), schema.as_ref());
    let field = |name: &str| schema.field_with_name(name).unwrap().data_type().clone();
    assert_eq!(field("ts"), DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())));
    assert_eq!(field("dec"), DataType::Decimal128(10, 2));
    assert_eq!(field("dt"), DataType::Date32);
    // the Parquet schema carries the logical types readers without the Arrow schema rely on
    let descr = builder.parquet_schema();
    let ts = descr.columns().iter().find(|c| c.name() == "ts").unwrap();
    assert_eq!(
        ts.logical_type_ref(),
        Some(&parquet::basic::LogicalType::timestamp(true, parquet::basic::TimeUnit::MICROS))
    );
}

#[test]
fn nested_struct_array_and_map_columns_round_trip() {
    let spec = &[
        ("events", "array<struct<name:string,tags:map<string,array<int>>,at:timestamp>>"),
        ("meta", "struct<inner:struct<deep:array<array<string>>>,n:int>"),
        ("lookup", "map<int,struct<x:boolean>>"),
    ];
    let out = rows(
        &openx(),
        spec,
        &[
            r#"{"events":[{"name":"a","tags":{"t":[1,2]},"at":1700000000},null,{"name":null}],
               "meta":{"inner":{"deep":[["x"],[],null]},"n":3},"lookup":{"7":{"x":true},"8":null}}"#,
            r#"{"events":[],"meta":null,"lookup":{}}"#,
        ],
    );
    assert_eq!(
        out,
        [
            json!({"events":[{"name":"a","tags":[["t",[1,2]]],"at":1_700_000_000_000_000i64},null,
                             {"name":null,"tags":null,"at":null}],
                   "meta":{"inner":{"deep":[["x"],[],null]},"n":3},
                   "lookup":[[7,{"x":true}],[8,null]]}),
            json!({"events":[],"meta":null,"lookup":[]}),
        ]
    );
}

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

#[test]
fn each_parquet_compression_produces_a_readable_file_with_that_codec() {
    for (name, expect) in
        [("UNCOMPRESSED", "UNCOMPRESSED"), ("SNAPPY", "SNAPPY"), ("GZIP", "GZIP"), ("ZSTD", "ZSTD")]
    {
        let conv = conversion("{OpenXJsonSerDe: {}}", &format!("{{Compression: {name}}}"));
        let mut enc = encoder(&conv, &[("msg", "string"), ("n", "bigint")]);
        for i in 0..1000 {
            enc.push(format!(r#"{{"msg":"hello number {i}","n":{i}}}"#).as_bytes()).unwrap();
        }
        let (metadata, out) = read_rows(&enc.finish().unwrap());
        assert_eq!(out.len(), 1000);
        assert_eq!(out[999], json!({"msg":"hello number 999","n":999}));
        for rg in metadata.row_groups() {
            for column in rg.columns() {
                let codec = match column.compression() {
                    Compression::UNCOMPRESSED => "UNCOMPRESSED",
                    Compression::SNAPPY => "SNAPPY",
                    Compression::GZIP(_) => "GZIP",
                    Compression::ZSTD(_) => "ZSTD",
                    other => panic!("{other:?}"),
                };
                assert_eq!(codec, expect);
            }
        }
    }
}

#[test]
fn writer_version_and_dictionary_settings_are_honoured() {
    let read = |parquet: &str| {
        let mut enc = encoder(&conversion("{HiveJsonSerDe: {}}", parquet), &[("k", "string")]);
        for i in 0..100 {
            enc.push(format!(r#"{{"k":"v{}"}}"#, i % 3).as_bytes()).unwrap();
        }
        read_rows(&enc.finish().unwrap()).0
    };
    let default = read("{}");
    assert_eq!(default.file_metadata().version(), 1);
    assert!(default.row_group(0).column(0).dictionary_page_offset().is_some());
    let v2 = read("{WriterVersion: V2, EnableDictionaryCompression: false}");
    assert_eq!(v2.file_metadata().version(), 2);
    assert!(v2.row_group(0).column(0).dictionary_page_offset().is_none());
}

#[test]
fn many_records_span_several_batches_and_keep_their_order() {
    let mut enc = encoder(&openx(), &[("i", "bigint"), ("s", "string")]);
    let n = super::encoder::BATCH_ROWS * 2 + 17;
    for i in 0..n {
        enc.push(format!(r#"{{"i":{i},"s":"{}"}}"#, "x".repeat(i % 50)).as_bytes()).unwrap();
        if i % 1000 == 0 {
            // failures in between do not disturb the batches
            enc.push(br#"{"i":"nope"}{"i":1}"#).unwrap_err();
        }
    }
    let (_, out) = read_rows(&enc.finish().unwrap());
    assert_eq!(out.len(), n);
    for (i, row) in out.iter().enumerate() {
        assert_eq!(row["i"], json!(i));
    }
}

#[test]
fn an_encoder_without_rows_still_writes_a_valid_file() {
    let enc = encoder(&openx(), &[("a", "int")]);
    assert_eq!(enc.extension(), ".parquet");
    let (_, out) = read_rows(&enc.finish().unwrap());
    assert!(out.is_empty());
}

#[test]
fn the_encoder_refuses_bad_configurations_with_every_issue() {
    let orc: DataFormatConversionConfiguration = serde_yaml_ng::from_str(
        "InputFormatConfiguration: {Deserializer: {OpenXJsonSerDe: {}}}\n\
         OutputFormatConfiguration: {Serializer: {OrcSerDe: {}}}",
    )
    .unwrap();
    let err = ParquetEncoder::new(&orc, &columns(&[("a", "int")])).unwrap_err();
    assert!(err.to_string().contains("ORC output is not supported; use ParquetSerDe"), "{err}");
    let err = ParquetEncoder::new(&openx(), &columns(&[("a", "nope"), ("A", "int")])).unwrap_err();
    let ConversionConfigError::Invalid(issues) = err else { panic!() };
    assert_eq!(issues.len(), 2, "{issues:?}");
    let conv = conversion("{OpenXJsonSerDe: {ColumnToJsonKeyMappings: {a: b}}}", "{}");
    let err = ParquetEncoder::new(&conv, &columns(&[("a", "int"), ("b", "int")])).unwrap_err();
    assert!(err.to_string().contains("would both read the JSON key `b`"), "{err}");
}

/// Writes sample files for `check_parquet.py` (pyarrow) into `$HYDRANT_PARQUET_SAMPLES`.
#[test]
#[ignore = "writes files for the pyarrow cross-check; run with --ignored"]
fn write_samples_for_pyarrow() {
    let Ok(dir) = std::env::var("HYDRANT_PARQUET_SAMPLES") else {
        panic!("set HYDRANT_PARQUET_SAMPLES to a directory");
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let record = r#"{"s":"héllo","vc":"abcdef","ch":"xy","ti":-128,"si":32767,"i":-5,"ig":7,
        "bi":9007199254740993,"f":1.5,"d":-2.25,"b":true,"ts":"2024-01-02T03:04:05.123456Z",
        "dt":"2024-01-02","dec":"12345678.915","bin":"aGk=","arr":[1,null,3],
        "st":{"a":"x","b":5},"m":{"k":1.5,"n":null}}"#;
    for codec in ["UNCOMPRESSED", "SNAPPY", "GZIP", "ZSTD"] {
        for version in ["V1", "V2"] {
            let conv = conversion(
                "{OpenXJsonSerDe: {}}",
                &format!("{{Compression: {codec}, WriterVersion: {version}}}"),
            );
            let mut enc = encoder(&conv, ALL_TYPES);
            enc.push(record.as_bytes()).unwrap();
            enc.push(b"{}").unwrap();
            for i in 0..10_000 {
                enc.push(
                    format!(r#"{{"i":{i},"s":"row {i}","ts":{}}}"#, 1_700_000_000 + i).as_bytes(),
                )
                .unwrap();
            }
            let file = enc.finish().unwrap();
            std::fs::write(dir.join(format!("all_types_{codec}_{version}.parquet")), file).unwrap();
        }
    }
    let nested = [
        ("events", "array<struct<name:string,tags:map<string,array<int>>,at:timestamp>>"),
        ("meta", "struct<inner:struct<deep:array<array<string>>>,n:int>"),
        ("lookup", "map<int,struct<x:boolean>>"),
    ];
    let mut enc = encoder(&openx(), &nested);
    enc.push(
        br#"{"events":[{"name":"a","tags":{"t":[1,2]},"at":1700000000},null,{"name":null}],
            "meta":{"inner":{"deep":[["x"],[],null]},"n":3},"lookup":{"7":{"x":true},"8":null}}"#,
    )
    .unwrap();
    enc.push(br#"{"events":[],"meta":null,"lookup":{}}"#).unwrap();
    std::fs::write(dir.join("nested.parquet"), enc.finish().unwrap()).unwrap();
}

/// Throughput of ~1 KiB JSON log lines with 10 columns into SNAPPY Parquet, single core.
/// Run in release: `cargo test --release -- --ignored --nocapture bench_`.
#[test]
#[ignore = "benchmark; run in release with --ignored --nocapture"]
fn bench_json_log_lines_to_snappy_parquet() {
    let spec = [
        ("ts", "timestamp"),
        ("level", "string"),
        ("service", "string"),
        ("host", "string"),
        ("status", "int"),
        ("latency_ms", "double"),
        ("bytes", "bigint"),
        ("path", "string"),
        ("user_agent", "string"),
        ("message", "string"),
    ];
    let levels = ["INFO", "WARN", "ERROR", "DEBUG"];
    const STATUSES: [i32; 6] = [200, 200, 200, 404, 500, 302];
    let records: Vec<String> = (0..100_000u64)
        .map(|i| {
            let filler: String = (0..(560 + (i * 7919) % 200))
                .map(|j| (b'a' + ((i * 31 + j * 17) % 26) as u8) as char)
                .collect();
            let words: Vec<&str> = filler.as_bytes().chunks(7).map(|c| std::str::from_utf8(c).unwrap()).collect();
            serde_json::to_string(&json!({
                "ts": format!("2024-05-{:02}T{:02}:{:02}:{:02}.{:03}Z", 1 + i % 28, i % 24, i % 60, (i / 60) % 60, i % 1000),
                "level": levels[(i % 4) as usize],
                "service": format!("svc-{}", i % 12),
                "host": format!("ip-10-0-{}-{}.ec2.internal", i % 8, i % 250),
                "status": STATUSES[(i % 6) as usize],
                "latency_ms": (i % 1000) as f64 * 0.37,
                "bytes": 1000 + (i * 7) % 100_000,
                "path": format!("/api/v1/items/{}/details?page={}", i % 5000, i % 20),
                "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
                "message": words.join(" "),
            }))
            .unwrap()
        })
        .collect();
    let input: usize = records.iter().map(String::len).sum();
    let conv = conversion("{OpenXJsonSerDe: {}}", "{Compression: SNAPPY}");
    for round in 0..3 {
        let start = std::time::Instant::now();
        let mut enc = encoder(&conv, &spec);
        for r in &records {
            enc.push(r.as_bytes()).unwrap();
        }
        let file = enc.finish().unwrap();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "round {round}: {} records, {:.1} MB JSON (avg {} B) -> {:.1} MB Parquet in {secs:.2}s: {:.0} MB/s",
            records.len(),
            input as f64 / 1e6,
            input / records.len(),
            file.len() as f64 / 1e6,
            input as f64 / 1e6 / secs
        );
    }
}

#[test]
fn the_encoder_can_move_to_a_worker_thread() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<ParquetEncoder>();
    let mut enc = encoder(&openx(), &[("a", "int")]);
    enc.push(br#"{"a":1}"#).unwrap();
    let file = std::thread::spawn(move || enc.finish().unwrap()).join().unwrap();
    assert_eq!(read_rows(&file).1, [json!({"a":1})]);
}
