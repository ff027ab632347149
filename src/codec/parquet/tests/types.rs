//! Every Glue type, nested columns and the Arrow types of the file schema.

use super::*;

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
