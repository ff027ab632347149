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

// The cases, by subject.
mod files;
mod records;
mod serdes;
mod types;
