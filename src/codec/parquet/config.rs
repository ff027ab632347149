//! `DataFormatConversionConfiguration`: Firehose's JSON-to-Parquet settings, field for field,
//! plus Hydrant's own column list (`hydrant.schema`), which stands in for the AWS Glue table.
//!
//! ```yaml
//! DataFormatConversionConfiguration:
//!   SchemaConfiguration: {DatabaseName: logs, TableName: access}   # decorative in Hydrant
//!   InputFormatConfiguration:
//!     Deserializer:
//!       OpenXJsonSerDe: {CaseInsensitive: true, ColumnToJsonKeyMappings: {ts: timestamp}}
//!   OutputFormatConfiguration:
//!     Serializer:
//!       ParquetSerDe: {Compression: SNAPPY}
//! hydrant:
//!   schema:
//!     columns:
//!       - {name: ts, type: timestamp}
//!       - {name: status, type: int}
//!       - {name: headers, type: "map<string,string>"}
//!     # or: file: /etc/hydrant/schemas/access.yaml   (a `columns:` list, YAML or JSON)
//! ```
//!
//! Members keep Firehose's names and optionality so a Firehose `CreateDeliveryStream` body or
//! `DescribeDeliveryStream` answer round-trips; the accessors (`case_insensitive()`, ...) apply
//! Firehose's defaults.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::schema::{Column, HiveType};
use super::timestamp::HiveTimestampFormat;

/// Converts JSON records to Parquet before they are written to S3.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DataFormatConversionConfiguration {
    /// Defaults to `true`. Set `false` to keep the settings but write the records unconverted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The AWS Glue table Firehose would read the columns from. Hydrant keeps it only so that
    /// Firehose configurations and `format-conversion-failed` documents (`dataCatalogTable`)
    /// carry the same values; the columns come from `hydrant.schema`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_configuration: Option<SchemaConfiguration>,
    /// How to read the JSON records. Required when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_format_configuration: Option<InputFormatConfiguration>,
    /// How to write the columnar file. Required when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_format_configuration: Option<OutputFormatConfiguration>,
}

impl DataFormatConversionConfiguration {
    /// `Enabled`, defaulting to `true`.
    pub fn is_enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }

    /// The chosen deserializer, if exactly one is configured.
    pub fn deserializer(&self) -> Option<DeserializerKind<'_>> {
        let d = self.input_format_configuration.as_ref()?.deserializer.as_ref()?;
        match (&d.open_x_json_ser_de, &d.hive_json_ser_de) {
            (Some(openx), None) => Some(DeserializerKind::OpenX(openx)),
            (None, Some(hive)) => Some(DeserializerKind::Hive(hive)),
            _ => None,
        }
    }

    /// The ParquetSerDe, if it is the only serializer configured.
    pub fn parquet_ser_de(&self) -> Option<&ParquetSerDe> {
        let s = self.output_format_configuration.as_ref()?.serializer.as_ref()?;
        match (&s.parquet_ser_de, &s.orc_ser_de) {
            (Some(parquet), None) => Some(parquet),
            _ => None,
        }
    }
}

/// Which deserializer a configuration selects.
#[derive(Debug, Clone, Copy)]
pub enum DeserializerKind<'a> {
    OpenX(&'a OpenXJsonSerDe),
    Hive(&'a HiveJsonSerDe),
}

/// Firehose's pointer to an AWS Glue table. All members are optional and unused by Hydrant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct SchemaConfiguration {
    /// IAM role Firehose would use to read Glue. Ignored.
    #[serde(rename = "RoleARN", default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// Glue Data Catalog id (the account id). Echoed in failed-record documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_id: Option<String>,
    /// Glue database name. Echoed in failed-record documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_name: Option<String>,
    /// Glue table name. Echoed in failed-record documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_name: Option<String>,
    /// Region of the catalog. Echoed in failed-record documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Table version (`LATEST` follows the newest). Echoed in failed-record documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

/// Holds the deserializer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct InputFormatConfiguration {
    /// Exactly one of `OpenXJsonSerDe` or `HiveJsonSerDe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deserializer: Option<Deserializer>,
}

/// Exactly one of the two JSON deserializers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deserializer {
    /// The OpenX JSON SerDe: lenient (numbers in strings, nested JSON into string columns,
    /// several timestamp forms, key renaming).
    #[serde(rename = "OpenXJsonSerDe", default, skip_serializing_if = "Option::is_none")]
    pub open_x_json_ser_de: Option<OpenXJsonSerDe>,
    /// The Hive / HCatalog JSON SerDe: strict types, Joda timestamp formats.
    #[serde(rename = "HiveJsonSerDe", default, skip_serializing_if = "Option::is_none")]
    pub hive_json_ser_de: Option<HiveJsonSerDe>,
}

/// The OpenX JSON SerDe.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct OpenXJsonSerDe {
    /// Replace `.` with `_` in JSON keys before matching them to columns (`a.b` fills column
    /// `a_b`). Default `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub convert_dots_in_json_keys_to_underscores: Option<bool>,
    /// Lowercase JSON keys (at every level, map keys included) before matching them to columns,
    /// so `UserId` fills `userid`. Default `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_insensitive: Option<bool>,
    /// Column name -> JSON key, for top-level keys that cannot be column names, e.g.
    /// `{ts: timestamp}` fills column `ts` from the key `timestamp`. A mapped column is read
    /// only from its mapped key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column_to_json_key_mappings: Option<BTreeMap<String, String>>,
}

impl OpenXJsonSerDe {
    /// `CaseInsensitive`, default `true`.
    pub fn case_insensitive(&self) -> bool {
        self.case_insensitive.unwrap_or(true)
    }
    /// `ConvertDotsInJsonKeysToUnderscores`, default `false`.
    pub fn convert_dots(&self) -> bool {
        self.convert_dots_in_json_keys_to_underscores.unwrap_or(false)
    }
}

/// The Hive / HCatalog JSON SerDe.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct HiveJsonSerDe {
    /// How to read `timestamp` columns: Joda-Time patterns (e.g. `yyyy-MM-dd'T'HH:mm:ss.SSSZZ`)
    /// tried in order, or `millis` for epoch milliseconds. Without it only
    /// `yyyy-MM-dd HH:mm:ss[.fffffffff]` is accepted (`java.sql.Timestamp.valueOf`), and it is
    /// always tried last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_formats: Option<Vec<String>>,
}

/// Holds the serializer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct OutputFormatConfiguration {
    /// Exactly one of `ParquetSerDe` or `OrcSerDe` (Hydrant writes Parquet only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serializer: Option<Serializer>,
}

/// Exactly one output format.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Serializer {
    /// Write Apache Parquet.
    #[serde(rename = "ParquetSerDe", default, skip_serializing_if = "Option::is_none")]
    pub parquet_ser_de: Option<ParquetSerDe>,
    /// Apache ORC: accepted by the parser so Firehose configurations load, rejected by
    /// validation (Hydrant does not write ORC).
    #[serde(rename = "OrcSerDe", default, skip_serializing_if = "Option::is_none")]
    pub orc_ser_de: Option<OrcSerDe>,
}

/// Parquet writer settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ParquetSerDe {
    /// Target row group size in bytes (Firehose: the HDFS block size). A row group is closed
    /// when its estimated encoded size reaches it. Minimum 64 MiB, default 256 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size_bytes: Option<u64>,
    /// Target data page size (and dictionary page size) in bytes. Minimum 64 KiB, default 1 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size_bytes: Option<u64>,
    /// Column chunk compression: `UNCOMPRESSED`, `GZIP`, `SNAPPY` (default) or `ZSTD`
    /// (a Hydrant extension; Firehose rejects it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<ParquetCompression>,
    /// Dictionary-encode columns (falling back to plain encoding when a dictionary grows past
    /// the page size). Default `true`, as parquet-mr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_dictionary_compression: Option<bool>,
    /// HDFS padding. Accepted for compatibility and ignored: object stores have no blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_padding_bytes: Option<u64>,
    /// `V1` (default, readable everywhere) or `V2` (data page v2 and v2 encodings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer_version: Option<ParquetWriterVersion>,
}

pub const MIB: u64 = 1024 * 1024;
/// Firehose's minimum and default `BlockSizeBytes`.
pub const MIN_BLOCK_SIZE_BYTES: u64 = 64 * MIB;
pub const DEFAULT_BLOCK_SIZE_BYTES: u64 = 256 * MIB;
/// Firehose's minimum and default `PageSizeBytes`.
pub const MIN_PAGE_SIZE_BYTES: u64 = 64 * 1024;
pub const DEFAULT_PAGE_SIZE_BYTES: u64 = MIB;

impl ParquetSerDe {
    pub fn block_size_bytes(&self) -> u64 {
        self.block_size_bytes.unwrap_or(DEFAULT_BLOCK_SIZE_BYTES)
    }
    pub fn page_size_bytes(&self) -> u64 {
        self.page_size_bytes.unwrap_or(DEFAULT_PAGE_SIZE_BYTES)
    }
    pub fn compression(&self) -> ParquetCompression {
        self.compression.unwrap_or(ParquetCompression::Snappy)
    }
    pub fn enable_dictionary_compression(&self) -> bool {
        self.enable_dictionary_compression.unwrap_or(true)
    }
    pub fn writer_version(&self) -> ParquetWriterVersion {
        self.writer_version.unwrap_or(ParquetWriterVersion::V1)
    }
}

/// Parquet column compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ParquetCompression {
    Uncompressed,
    Gzip,
    Snappy,
    /// Hydrant extension.
    Zstd,
}

/// Parquet format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParquetWriterVersion {
    V1,
    V2,
}

/// Firehose's ORC settings. Parsed so configurations load; Hydrant does not write ORC.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct OrcSerDe {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stripe_size_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_index_stride: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_padding: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding_tolerance: Option<f64>,
    /// `NONE`, `ZLIB` or `SNAPPY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bloom_filter_columns: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bloom_filter_false_positive_probability: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dictionary_key_threshold: Option<f64>,
    /// `V0_11` or `V0_12`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format_version: Option<String>,
}

/// Hydrant's column list for a converted stream (`hydrant.schema`): inline, or in a file.
///
/// ```yaml
/// schema:
///   columns: [{name: id, type: bigint}, {name: tags, type: "array<string>"}]
/// ```
/// or
/// ```yaml
/// schema:
///   file: schemas/events.yaml   # holds `columns: [...]` (or just the list), YAML or JSON
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawSchemaSource", into = "RawSchemaSource")]
pub enum SchemaSource {
    /// The columns, in order.
    Inline { columns: Vec<Column> },
    /// A YAML or JSON file holding the columns; a relative path is resolved against the
    /// directory given to [`SchemaSource::load`].
    File { file: PathBuf },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchemaSource {
    /// The table's columns, in order: `{name, type}` with a Hive/Glue type string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    columns: Option<Vec<Column>>,
    /// Path of a YAML or JSON file with the columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<PathBuf>,
}

impl TryFrom<RawSchemaSource> for SchemaSource {
    type Error = String;
    fn try_from(raw: RawSchemaSource) -> Result<Self, String> {
        match (raw.columns, raw.file) {
            (Some(columns), None) => Ok(SchemaSource::Inline { columns }),
            (None, Some(file)) => Ok(SchemaSource::File { file }),
            (Some(_), Some(_)) => Err("schema takes either `columns` or `file`, not both".into()),
            (None, None) => Err("schema needs `columns` (a list of {name, type}) or `file`".into()),
        }
    }
}

impl From<SchemaSource> for RawSchemaSource {
    fn from(s: SchemaSource) -> Self {
        match s {
            SchemaSource::Inline { columns } => {
                RawSchemaSource { columns: Some(columns), file: None }
            }
            SchemaSource::File { file } => RawSchemaSource { columns: None, file: Some(file) },
        }
    }
}

/// A schema file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum SchemaLoadError {
    #[error("cannot read schema file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot parse schema file {path}: {message}")]
    Parse { path: PathBuf, message: String },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SchemaFile {
    Table(SchemaFileTable),
    List(Vec<Column>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemaFileTable {
    columns: Vec<Column>,
}

impl SchemaSource {
    /// The columns: inline ones, or those read from the file (relative paths resolved against
    /// `base_dir`, usually the directory of the configuration file). A `.json` file is read as
    /// JSON, anything else as YAML; either may hold `columns: [...]` or just the list.
    pub fn load(&self, base_dir: Option<&Path>) -> Result<Vec<Column>, SchemaLoadError> {
        let file = match self {
            SchemaSource::Inline { columns } => return Ok(columns.clone()),
            SchemaSource::File { file } => file,
        };
        let path = match base_dir {
            Some(dir) if file.is_relative() => dir.join(file),
            _ => file.clone(),
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|source| SchemaLoadError::Read { path: path.clone(), source })?;
        let parse_error = |message: String| SchemaLoadError::Parse { path: path.clone(), message };
        let parsed: SchemaFile = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            serde_json::from_str(&text).map_err(|e| parse_error(e.to_string()))?
        } else {
            serde_yaml_ng::from_str(&text).map_err(|e| parse_error(e.to_string()))?
        };
        Ok(match parsed {
            SchemaFile::Table(t) => t.columns,
            SchemaFile::List(columns) => columns,
        })
    }
}

mod validate;
pub use validate::{load_and_validate, validate, validate_columns, validate_loaded, SCHEMA_PATH};

#[cfg(test)]
mod tests;
