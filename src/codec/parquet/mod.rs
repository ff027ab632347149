//! JSON-to-Parquet conversion (Firehose's `DataFormatConversionConfiguration`).
//!
//! - [`config`]: the Firehose settings (`OpenXJsonSerDe`/`HiveJsonSerDe`, `ParquetSerDe`) and
//!   Hydrant's column list (`hydrant.schema`), with `validate`.
//! - [`schema`]: Hive/Glue type strings and their Arrow/Parquet mapping.
//! - [`timestamp`]: how each deserializer reads timestamps and dates.
//! - [`encoder`]: [`ParquetEncoder`], records in, one Parquet file out.
//!
//! # Per-record errors
//!
//! | `code` | when |
//! |---|---|
//! | `DataFormatConversion.MalformedData` | the record is not JSON objects: invalid JSON or UTF-8, a top-level array (`[{..},{..}]`) or scalar, or empty |
//! | `DataFormatConversion.InvalidSchema` | a value does not fit its column: wrong JSON type (a string for a number under HiveJsonSerDe, an object for an array, nested JSON for a string under HiveJsonSerDe), an integer out of range or with a fraction, an unparseable timestamp, date, decimal or base64 value, a decimal needing more digits than its precision |
//!
//! Messages name the column path and type, e.g.
//! ``column `payload.items[2].qty` (int): expected a number, found the string "3" (HiveJsonSerDe does not read numbers from strings)``.
//!
//! # Reading JSON
//!
//! | | OpenXJsonSerDe | HiveJsonSerDe |
//! |---|---|---|
//! | key matching (columns and struct fields, every level) | lowercased unless `CaseInsensitive: false`; `.` -> `_` with `ConvertDotsInJsonKeysToUnderscores`; `ColumnToJsonKeyMappings` renames top-level columns | case-insensitive |
//! | map keys | lowercased (and dots converted) like every key, as OpenX does | kept as they are |
//! | missing key / JSON `null` | null | null |
//! | extra keys | ignored | ignored |
//! | numeric columns | JSON numbers, and strings holding a number (`"42"`, `"0x2A"`, `"1.5"`) | JSON numbers only |
//! | integers | must be integral (`3` or `3.0`) and within the column's range | same |
//! | `boolean` | `true`/`false`, or those words as strings (any case) | same |
//! | `string`/`varchar`/`char` | strings; numbers and booleans as their JSON text; objects and arrays as their compact JSON text | strings, numbers, booleans; objects and arrays are errors |
//! | `timestamp` | see [`timestamp`]: ISO `...Z`, `yyyy-M-d HH:mm:ss[.f]`, epoch seconds / millis (13+ characters = millis), float seconds | `TimestampFormats` (Joda, `millis`), then `yyyy-M-d HH:mm:ss[.f]` |
//! | `date` | `yyyy-[M]M-[d]d` | same |
//! | `decimal(p,s)` | numbers or numeric strings, rounded half-up to `s` digits; more than `p` digits is an error (JSON numbers with more than ~15 significant digits lose precision as they pass through `f64`: quote them) | same |
//! | `binary` | base64 strings | same |
//! | `array`/`struct`/`map` | JSON arrays / objects / objects (map keys converted to the key type) | same |

mod builder;
pub mod config;
pub mod encoder;
pub mod schema;
pub mod timestamp;

#[cfg(test)]
mod tests;

pub use config::{
    load_and_validate, validate, DataFormatConversionConfiguration, SchemaLoadError, SchemaSource,
};
pub use encoder::{
    ConversionConfigError, ConversionError, ParquetEncoder, RecordError, INVALID_SCHEMA,
    MALFORMED_DATA,
};
pub use schema::{Column, HiveType};
