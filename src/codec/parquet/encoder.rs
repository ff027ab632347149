//! [`ParquetEncoder`]: Firehose records (JSON) in, one Parquet file out.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{ArrowError, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::{WriterProperties, WriterVersion};
use serde_json::Value;

use super::builder::{Deser, StructBuilder};
use super::config::{
    validate_loaded, DataFormatConversionConfiguration, DeserializerKind, ParquetCompression,
    ParquetWriterVersion, SCHEMA_PATH,
};
use super::schema::{Column, HiveType};
use super::timestamp::{json_kind, HiveTimestampFormat};

/// The record is not a sequence of JSON objects: invalid JSON or UTF-8, a top-level array or
/// scalar, or no object at all.
pub const MALFORMED_DATA: &str = "DataFormatConversion.MalformedData";
/// The record is JSON objects, but a value does not fit its column's type: a string where a
/// number is expected (HiveJsonSerDe), a number that overflows the column, an unparseable
/// timestamp, date, decimal or base64 value, an object where an array is expected, ...
pub const INVALID_SCHEMA: &str = "DataFormatConversion.InvalidSchema";

/// Why one record was not converted. `code` is one of [`MALFORMED_DATA`] and
/// [`INVALID_SCHEMA`]; the record goes to the `format-conversion-failed` error output with
/// `lastErrorCode` = `code` and `lastErrorMessage` = `message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RecordError {
    pub code: String,
    pub message: String,
}

impl RecordError {
    fn new(code: &str, message: String) -> Self {
        RecordError { code: code.to_string(), message }
    }
}

/// The configuration or schema cannot produce an encoder.
#[derive(Debug, thiserror::Error)]
pub enum ConversionConfigError {
    /// `(path, message)` pairs as [`super::config::validate`] reports them.
    #[error("invalid data format conversion configuration: {}", join_issues(.0))]
    Invalid(Vec<(String, String)>),
    #[error("cannot create the Parquet writer: {0}")]
    Writer(#[from] ParquetError),
}

fn join_issues(issues: &[(String, String)]) -> String {
    issues.iter().map(|(path, message)| format!("{path}: {message}")).collect::<Vec<_>>().join("; ")
}

/// Writing the Parquet file failed (a bug or resource problem, not bad input): the whole
/// object has to be retried.
#[derive(Debug, thiserror::Error)]
pub enum ConversionError {
    #[error("parquet: {0}")]
    Parquet(#[from] ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
}

/// Rows are handed to the Parquet writer in batches of this many rows...
pub const BATCH_ROWS: usize = 8192;
/// ...or sooner, once the batch's records add up to this many bytes (keeps memory bounded
/// and string offsets far from `i32::MAX`, since a record is at most 1000 KiB).
pub const BATCH_INPUT_BYTES: usize = 32 * 1024 * 1024;

/// Converts Firehose records to one Parquet file.
///
/// Push each record with [`push`](Self::push): it appends every JSON object of the record as a
/// row, or, if any object fails, none of them (the error says why, for the
/// `format-conversion-failed` output). [`finish`](Self::finish) returns the file. Rows go to
/// the Parquet writer in batches of [`BATCH_ROWS`], which encodes and compresses them into
/// the current row group at once, so memory holds encoded data plus at most one batch.
pub struct ParquetEncoder {
    root: StructBuilder,
    deser: Deser,
    schema: SchemaRef,
    writer: ArrowWriter<Vec<u8>>,
    pending_rows: usize,
    pending_bytes: usize,
    rows: u64,
    /// A write error from a batch flushed by `push`; reported by `finish`.
    failed: Option<ConversionError>,
}

impl std::fmt::Debug for ParquetEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetEncoder")
            .field("schema", &self.schema)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl ParquetEncoder {
    /// Builds an encoder for `schema` (the loaded `hydrant.schema` columns). Fails with every
    /// problem [`super::config::validate`] would report.
    pub fn new(
        conversion: &DataFormatConversionConfiguration,
        schema: &[Column],
    ) -> Result<Self, ConversionConfigError> {
        let mut issues = validate_loaded(conversion, Some(schema));
        if !conversion.is_enabled() {
            issues.push(("Enabled".into(), "conversion is disabled; nothing to encode".into()));
        }
        let (Some(deserializer), Some(serde)) =
            (conversion.deserializer(), conversion.parquet_ser_de())
        else {
            return Err(ConversionConfigError::Invalid(issues));
        };
        if !issues.is_empty() {
            return Err(ConversionConfigError::Invalid(issues));
        }

        let mut mappings: HashMap<String, String> = HashMap::new();
        let deser = match deserializer {
            DeserializerKind::OpenX(openx) => {
                for (column, key) in openx.column_to_json_key_mappings.iter().flatten() {
                    mappings.insert(column.to_lowercase(), key.clone());
                }
                Deser::OpenX {
                    case_insensitive: openx.case_insensitive(),
                    convert_dots: openx.convert_dots(),
                }
            }
            DeserializerKind::Hive(hive) => Deser::Hive {
                formats: hive
                    .timestamp_formats
                    .iter()
                    .flatten()
                    .map(|f| HiveTimestampFormat::compile(f))
                    .collect::<Result<_, _>>()
                    .map_err(|e| {
                        ConversionConfigError::Invalid(vec![("TimestampFormats".into(), e)])
                    })?,
            },
        };

        let mut fields = Vec::with_capacity(schema.len());
        let mut keys = Vec::with_capacity(schema.len());
        let mut key_owner: HashMap<String, &str> = HashMap::new();
        for (i, column) in schema.iter().enumerate() {
            let ty = HiveType::parse(&column.r#type).map_err(|e| {
                ConversionConfigError::Invalid(vec![(
                    format!("{SCHEMA_PATH}.columns[{i}].type"),
                    e.to_string(),
                )])
            })?;
            let json_key = mappings.get(&column.name.to_lowercase()).unwrap_or(&column.name);
            let key = deser.field_key(json_key).into_owned();
            if let Some(other) = key_owner.insert(key.clone(), &column.name) {
                return Err(ConversionConfigError::Invalid(vec![(
                    format!("{SCHEMA_PATH}.columns[{i}].name"),
                    format!(
                        "columns `{other}` and `{}` would both read the JSON key `{key}`",
                        column.name
                    ),
                )]));
            }
            keys.push(key);
            fields.push((column.name.clone(), ty));
        }
        let root = StructBuilder::new(&fields, keys, &deser);

        let schema: SchemaRef = Arc::new(Schema::new(
            fields
                .iter()
                .map(|(name, ty)| Field::new(name, ty.to_arrow(), true))
                .collect::<Vec<_>>(),
        ));
        let props = WriterProperties::builder()
            .set_compression(match serde.compression() {
                ParquetCompression::Uncompressed => Compression::UNCOMPRESSED,
                ParquetCompression::Gzip => Compression::GZIP(GzipLevel::default()),
                ParquetCompression::Snappy => Compression::SNAPPY,
                ParquetCompression::Zstd => Compression::ZSTD(ZstdLevel::default()),
            })
            .set_writer_version(match serde.writer_version() {
                ParquetWriterVersion::V1 => WriterVersion::PARQUET_1_0,
                ParquetWriterVersion::V2 => WriterVersion::PARQUET_2_0,
            })
            .set_dictionary_enabled(serde.enable_dictionary_compression())
            .set_data_page_size_limit(
                usize::try_from(serde.page_size_bytes()).unwrap_or(usize::MAX),
            )
            .set_dictionary_page_size_limit(
                usize::try_from(serde.page_size_bytes()).unwrap_or(usize::MAX),
            )
            .set_max_row_group_row_count(None)
            .set_max_row_group_bytes(Some(
                usize::try_from(serde.block_size_bytes()).unwrap_or(usize::MAX),
            ))
            .build();
        let writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props))?;
        Ok(ParquetEncoder {
            root,
            deser,
            schema,
            writer,
            pending_rows: 0,
            pending_bytes: 0,
            rows: 0,
            failed: None,
        })
    }

    /// The key extension of converted objects.
    pub fn extension(&self) -> &'static str {
        ".parquet"
    }

    /// The Arrow schema of the file.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Rows accepted so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Rough size of the file so far: bytes already written plus the encoded size of the open
    /// row group (the latest batch of rows is not counted until it is flushed).
    pub fn estimated_size(&self) -> usize {
        self.writer.bytes_written() + self.writer.in_progress_size()
    }

    /// Converts one Firehose record: one or more JSON objects, optionally separated by
    /// whitespace (`{"a":1}{"a":2}`). Either all of its objects become rows, or none do and
    /// the error says why.
    pub fn push(&mut self, record: &[u8]) -> Result<(), RecordError> {
        let before = self.pending_rows;
        match self.append_record(record) {
            Ok(added) => {
                self.pending_rows += added;
                self.pending_bytes += record.len();
                self.rows += added as u64;
                if self.pending_rows >= BATCH_ROWS || self.pending_bytes >= BATCH_INPUT_BYTES {
                    self.flush_batch();
                }
                Ok(())
            }
            Err(e) => {
                self.root.truncate(before);
                Err(e)
            }
        }
    }

    fn append_record(&mut self, record: &[u8]) -> Result<usize, RecordError> {
        let mut added = 0;
        let mut objects = serde_json::Deserializer::from_slice(record).into_iter::<Value>();
        let which = |n: usize| {
            if n == 0 {
                String::new()
            } else {
                format!("JSON object {} of the record: ", n + 1)
            }
        };
        loop {
            match objects.next() {
                None => break,
                Some(Err(e)) => {
                    return Err(RecordError::new(
                        MALFORMED_DATA,
                        format!("{}the record is not valid JSON: {e}", which(added)),
                    ))
                }
                Some(Ok(Value::Object(object))) => {
                    self.root.append_object(&object, &self.deser).map_err(|e| {
                        RecordError::new(INVALID_SCHEMA, format!("{}{e}", which(added)))
                    })?;
                    added += 1;
                }
                Some(Ok(Value::Array(_))) => {
                    return Err(RecordError::new(
                        MALFORMED_DATA,
                        format!(
                            "{}a top-level JSON array is not valid input; send JSON objects, \
                             concatenated if there are several ({{\"a\":1}}{{\"a\":2}})",
                            which(added)
                        ),
                    ))
                }
                Some(Ok(other)) => {
                    return Err(RecordError::new(
                        MALFORMED_DATA,
                        format!(
                            "{}expected a JSON object, found {}",
                            which(added),
                            json_kind(&other)
                        ),
                    ))
                }
            }
        }
        if added == 0 {
            return Err(RecordError::new(MALFORMED_DATA, "the record holds no JSON object".into()));
        }
        Ok(added)
    }

    fn flush_batch(&mut self) {
        if self.pending_rows == 0 {
            return;
        }
        self.pending_rows = 0;
        self.pending_bytes = 0;
        let result = self
            .root
            .finish_children()
            .and_then(|columns| RecordBatch::try_new(self.schema.clone(), columns))
            .map_err(ConversionError::from)
            .and_then(|batch| self.writer.write(&batch).map_err(ConversionError::from));
        if let Err(e) = result {
            self.failed.get_or_insert(e);
        }
    }

    /// Writes the remaining rows and the footer, and returns the whole Parquet file. A file
    /// with no rows is still valid Parquet; callers usually skip delivering it.
    pub fn finish(mut self) -> Result<Vec<u8>, ConversionError> {
        self.flush_batch();
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        Ok(self.writer.into_inner()?)
    }
}
