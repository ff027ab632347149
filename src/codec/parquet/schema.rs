//! Hive / AWS Glue column types: the parser for type strings and their Arrow mapping.
//!
//! Firehose reads a table's columns from AWS Glue; Hydrant reads the same column list from the
//! stream's `hydrant.schema` block (see [`super::config::SchemaSource`]). Each column's `type` is
//! a Hive type string exactly as Glue stores it (`bigint`, `array<struct<a:int,b:string>>`, ...).
//! Type names are case-insensitive and may contain spaces around punctuation. Errors name the
//! 1-based character position where the parser gave up.
//!
//! # Type mapping
//!
//! | Hive / Glue type                | Arrow type                          | Parquet physical / logical            |
//! |---------------------------------|-------------------------------------|---------------------------------------|
//! | `string`, `varchar(n)`, `char(n)` | `Utf8`                            | BYTE_ARRAY / STRING                   |
//! | `tinyint`                       | `Int8`                              | INT32 / INT(8, signed)                |
//! | `smallint`                      | `Int16`                             | INT32 / INT(16, signed)               |
//! | `int`, `integer`                | `Int32`                             | INT32                                 |
//! | `bigint`                        | `Int64`                             | INT64                                 |
//! | `float`                         | `Float32`                           | FLOAT                                 |
//! | `double`                        | `Float64`                           | DOUBLE                                |
//! | `boolean`                       | `Boolean`                           | BOOLEAN                               |
//! | `timestamp`                     | `Timestamp(Microsecond, "UTC")`     | INT64 / TIMESTAMP(MICROS, UTC-adjusted) |
//! | `date`                          | `Date32`                            | INT32 / DATE                          |
//! | `decimal(p,s)` (`decimal` = `decimal(10,0)`) | `Decimal128(p, s)`     | INT32/INT64/FIXED_LEN_BYTE_ARRAY / DECIMAL(p,s) |
//! | `binary`                        | `Binary`                            | BYTE_ARRAY                            |
//! | `array<T>`                      | `List` (item field `element`)       | 3-level LIST                          |
//! | `struct<a:T,b:U>`               | `Struct`                            | group                                 |
//! | `map<K,V>`                      | `Map` (entries `key_value{key,value}`, unsorted) | 3-level MAP              |
//!
//! Every column, struct field, list element and map value is nullable; map keys are not (Parquet
//! requires it) and must be primitive types.
//!
//! `varchar(n)` values longer than `n` characters are truncated to `n`, and `char(n)` values are
//! truncated or right-padded with spaces to exactly `n` characters, as Hive does when it writes.
//!
//! ## Why microseconds for `timestamp`
//!
//! Firehose itself writes Hive's legacy INT96 timestamps, which the Arrow writer cannot produce
//! (INT96 is deprecated by the Parquet format). Of the INT64 encodings, `TIMESTAMP(MICROS)` is the
//! one every reader that matters understands natively: it is Spark's own timestamp precision and
//! its default output type, Athena engine v3 / Trino and Presto read it (Athena rounds to its
//! millisecond `timestamp`), Hive 3+ and DuckDB/pyarrow read it. It keeps the microseconds that
//! OpenX timestamps with up to 9 fraction digits can carry (nanoseconds would break Spark 2/3
//! readers, and milliseconds would lose data). The column is marked UTC-adjusted
//! (`isAdjustedToUTC = true`) because Firehose interprets zone-less input in UTC; Spark then
//! reads it as `TimestampType` rather than `TIMESTAMP_NTZ`.

use std::fmt;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, TimeUnit};
use serde::{Deserialize, Serialize};

/// One table column: its name and Hive/Glue type string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    /// Column name as it appears in the Parquet file (and in Athena/Glue). Glue lowercases
    /// names; JSON keys are matched to it as the deserializer says (case-insensitively by default).
    pub name: String,
    /// Hive/Glue type, e.g. `string`, `bigint`, `timestamp`, `decimal(12,2)`,
    /// `array<struct<id:int,tags:map<string,string>>>`.
    #[serde(rename = "type")]
    pub r#type: String,
}

impl Column {
    /// Builds a column from a name and a type string (handy in tests and tools).
    pub fn new(name: impl Into<String>, r#type: impl Into<String>) -> Self {
        Column { name: name.into(), r#type: r#type.into() }
    }
}

/// A parsed Hive type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HiveType {
    String,
    Varchar(u32),
    Char(u32),
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Float,
    Double,
    Boolean,
    Timestamp,
    Date,
    Decimal { precision: u8, scale: u8 },
    Binary,
    Array(Box<HiveType>),
    Struct(Vec<(String, HiveType)>),
    Map(Box<HiveType>, Box<HiveType>),
}

/// Largest precision Arrow's `Decimal128` (and Hive) supports.
pub const MAX_DECIMAL_PRECISION: u8 = 38;
/// Hive's limits for `varchar(n)` and `char(n)`.
pub const MAX_VARCHAR_LENGTH: u32 = 65535;
pub const MAX_CHAR_LENGTH: u32 = 255;

/// A type string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at character {position}: {message}")]
pub struct TypeParseError {
    /// 1-based character position in the type string.
    pub position: usize,
    pub message: String,
}

impl HiveType {
    /// Parses a Hive/Glue type string (case-insensitive).
    pub fn parse(input: &str) -> Result<HiveType, TypeParseError> {
        let mut p = Parser { chars: input.chars().collect(), pos: 0 };
        let ty = p.parse_type()?;
        p.skip_ws();
        if p.pos < p.chars.len() {
            return Err(p.error(format!("unexpected `{}` after the type", p.chars[p.pos])));
        }
        Ok(ty)
    }

    /// True for types that are not array/struct/map.
    pub fn is_primitive(&self) -> bool {
        !matches!(self, HiveType::Array(_) | HiveType::Struct(_) | HiveType::Map(_, _))
    }

    /// The Arrow type this Hive type is written as (see the module table).
    pub fn to_arrow(&self) -> DataType {
        match self {
            HiveType::String | HiveType::Varchar(_) | HiveType::Char(_) => DataType::Utf8,
            HiveType::TinyInt => DataType::Int8,
            HiveType::SmallInt => DataType::Int16,
            HiveType::Int => DataType::Int32,
            HiveType::BigInt => DataType::Int64,
            HiveType::Float => DataType::Float32,
            HiveType::Double => DataType::Float64,
            HiveType::Boolean => DataType::Boolean,
            HiveType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            HiveType::Date => DataType::Date32,
            HiveType::Decimal { precision, scale } => {
                DataType::Decimal128(*precision, i8::try_from(*scale).unwrap_or(i8::MAX))
            }
            HiveType::Binary => DataType::Binary,
            HiveType::Array(item) => DataType::List(list_item_field(item)),
            HiveType::Struct(fields) => DataType::Struct(struct_fields(fields)),
            HiveType::Map(key, value) => DataType::Map(map_entries_field(key, value), false),
        }
    }
}

/// The list item field: named `element` as the Parquet LIST spec says.
pub(crate) fn list_item_field(item: &HiveType) -> Arc<Field> {
    Arc::new(Field::new("element", item.to_arrow(), true))
}

pub(crate) fn struct_fields(fields: &[(String, HiveType)]) -> Fields {
    fields.iter().map(|(name, ty)| Field::new(name, ty.to_arrow(), true)).collect()
}

/// The map entries field: `key_value { key (required), value }` as the Parquet MAP spec says.
pub(crate) fn map_entries_field(key: &HiveType, value: &HiveType) -> Arc<Field> {
    Arc::new(Field::new(
        "key_value",
        DataType::Struct(Fields::from(vec![
            Field::new("key", key.to_arrow(), false),
            Field::new("value", value.to_arrow(), true),
        ])),
        false,
    ))
}

impl fmt::Display for HiveType {
    /// The canonical lowercase spelling, as Glue shows it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HiveType::String => f.write_str("string"),
            HiveType::Varchar(n) => write!(f, "varchar({n})"),
            HiveType::Char(n) => write!(f, "char({n})"),
            HiveType::TinyInt => f.write_str("tinyint"),
            HiveType::SmallInt => f.write_str("smallint"),
            HiveType::Int => f.write_str("int"),
            HiveType::BigInt => f.write_str("bigint"),
            HiveType::Float => f.write_str("float"),
            HiveType::Double => f.write_str("double"),
            HiveType::Boolean => f.write_str("boolean"),
            HiveType::Timestamp => f.write_str("timestamp"),
            HiveType::Date => f.write_str("date"),
            HiveType::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            HiveType::Binary => f.write_str("binary"),
            HiveType::Array(t) => write!(f, "array<{t}>"),
            HiveType::Struct(fields) => {
                f.write_str("struct<")?;
                for (i, (name, ty)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{name}:{ty}")?;
                }
                f.write_str(">")
            }
            HiveType::Map(k, v) => write!(f, "map<{k},{v}>"),
        }
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn error(&self, message: impl Into<String>) -> TypeParseError {
        TypeParseError { position: self.pos + 1, message: message.into() }
    }

    fn skip_ws(&mut self) {
        while self.pos < self.chars.len() && self.chars[self.pos].is_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.chars.get(self.pos).copied()
    }

    fn expect(&mut self, c: char) -> Result<(), TypeParseError> {
        match self.peek() {
            Some(got) if got == c => {
                self.pos += 1;
                Ok(())
            }
            Some(got) => Err(self.error(format!("expected `{c}`, found `{got}`"))),
            None => Err(self.error(format!("expected `{c}`, found the end of the type"))),
        }
    }

    /// A bare word: letters, digits and `_`.
    fn word(&mut self) -> String {
        self.skip_ws();
        let start = self.pos;
        while self.pos < self.chars.len()
            && (self.chars[self.pos].is_alphanumeric() || self.chars[self.pos] == '_')
        {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn number(&mut self, what: &str) -> Result<u32, TypeParseError> {
        self.skip_ws();
        let start = self.pos;
        while self.pos < self.chars.len() && self.chars[self.pos].is_ascii_digit() {
            self.pos += 1;
        }
        if start == self.pos {
            self.pos = start;
            return Err(self.error(format!("expected the {what} (a number)")));
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        text.parse().map_err(|_| TypeParseError {
            position: start + 1,
            message: format!("the {what} {text} is too large"),
        })
    }

    fn parse_type(&mut self) -> Result<HiveType, TypeParseError> {
        self.skip_ws();
        let start = self.pos;
        let name = self.word();
        if name.is_empty() {
            return Err(match self.peek() {
                Some(c) => self.error(format!("expected a type name, found `{c}`")),
                None => self.error("expected a type name, found the end of the type"),
            });
        }
        let at = |message: String| TypeParseError { position: start + 1, message };
        Ok(match name.to_ascii_lowercase().as_str() {
            "string" => HiveType::String,
            "varchar" => {
                let n = self.length("varchar")?;
                if n == 0 || n > MAX_VARCHAR_LENGTH {
                    return Err(at(format!("varchar length must be 1..={MAX_VARCHAR_LENGTH}")));
                }
                HiveType::Varchar(n)
            }
            "char" => {
                let n = self.length("char")?;
                if n == 0 || n > MAX_CHAR_LENGTH {
                    return Err(at(format!("char length must be 1..={MAX_CHAR_LENGTH}")));
                }
                HiveType::Char(n)
            }
            "tinyint" => HiveType::TinyInt,
            "smallint" => HiveType::SmallInt,
            "int" | "integer" => HiveType::Int,
            "bigint" => HiveType::BigInt,
            "float" => HiveType::Float,
            "double" => {
                // Hive also accepts `double precision`.
                let save = self.pos;
                if !self.word().eq_ignore_ascii_case("precision") {
                    self.pos = save;
                }
                HiveType::Double
            }
            "boolean" => HiveType::Boolean,
            "timestamp" => HiveType::Timestamp,
            "date" => HiveType::Date,
            "decimal" | "numeric" => {
                if self.peek() != Some('(') {
                    HiveType::Decimal { precision: 10, scale: 0 }
                } else {
                    self.expect('(')?;
                    let p = self.number("decimal precision")?;
                    let s = if self.peek() == Some(',') {
                        self.pos += 1;
                        self.number("decimal scale")?
                    } else {
                        0
                    };
                    self.expect(')')?;
                    if p == 0 || p > u32::from(MAX_DECIMAL_PRECISION) {
                        return Err(at(format!(
                            "decimal precision must be 1..={MAX_DECIMAL_PRECISION}, got {p}"
                        )));
                    }
                    if s > p {
                        return Err(at(format!(
                            "decimal scale ({s}) must not exceed its precision ({p})"
                        )));
                    }
                    HiveType::Decimal { precision: p as u8, scale: s as u8 }
                }
            }
            "binary" => HiveType::Binary,
            "array" => {
                self.expect('<')?;
                let item = self.parse_type()?;
                self.expect('>')?;
                HiveType::Array(Box::new(item))
            }
            "map" => {
                self.expect('<')?;
                let key_pos = {
                    self.skip_ws();
                    self.pos
                };
                let key = self.parse_type()?;
                if !key.is_primitive() {
                    return Err(TypeParseError {
                        position: key_pos + 1,
                        message: format!("map keys must be a primitive type, not {key}"),
                    });
                }
                self.expect(',')?;
                let value = self.parse_type()?;
                self.expect('>')?;
                HiveType::Map(Box::new(key), Box::new(value))
            }
            "struct" => {
                self.expect('<')?;
                let mut fields: Vec<(String, HiveType)> = Vec::new();
                if self.peek() == Some('>') {
                    return Err(self.error("a struct needs at least one field"));
                }
                loop {
                    self.skip_ws();
                    let name_pos = self.pos;
                    let name = self.field_name()?;
                    if fields.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                        return Err(TypeParseError {
                            position: name_pos + 1,
                            message: format!("duplicate struct field `{name}`"),
                        });
                    }
                    self.expect(':')?;
                    let ty = self.parse_type()?;
                    fields.push((name, ty));
                    match self.peek() {
                        Some(',') => self.pos += 1,
                        Some('>') => {
                            self.pos += 1;
                            break;
                        }
                        Some(c) => {
                            return Err(self.error(format!("expected `,` or `>`, found `{c}`")))
                        }
                        None => {
                            return Err(self.error("expected `,` or `>`, found the end of the type"))
                        }
                    }
                }
                HiveType::Struct(fields)
            }
            "uniontype" => {
                return Err(at("uniontype is not supported (Firehose rejects it too)".into()))
            }
            _ => return Err(at(format!("unknown type `{name}`"))),
        })
    }

    fn length(&mut self, what: &str) -> Result<u32, TypeParseError> {
        self.expect('(')?;
        let n = self.number(&format!("{what} length"))?;
        self.expect(')')?;
        Ok(n)
    }

    /// A struct field name: a word, or a backquoted name (```a b```, with doubled backquotes).
    fn field_name(&mut self) -> Result<String, TypeParseError> {
        self.skip_ws();
        if self.chars.get(self.pos) == Some(&'`') {
            self.pos += 1;
            let mut name = String::new();
            loop {
                match self.chars.get(self.pos) {
                    None => return Err(self.error("unterminated backquoted field name")),
                    Some('`') if self.chars.get(self.pos + 1) == Some(&'`') => {
                        name.push('`');
                        self.pos += 2;
                    }
                    Some('`') => {
                        self.pos += 1;
                        break;
                    }
                    Some(c) => {
                        name.push(*c);
                        self.pos += 1;
                    }
                }
            }
            if name.is_empty() {
                return Err(self.error("empty struct field name"));
            }
            return Ok(name);
        }
        let name = self.word();
        if name.is_empty() {
            return Err(match self.chars.get(self.pos) {
                Some(c) => self.error(format!("expected a struct field name, found `{c}`")),
                None => self.error("expected a struct field name, found the end of the type"),
            });
        }
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> HiveType {
        HiveType::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn every_primitive_glue_type_parses_and_maps_to_its_arrow_type() {
        let cases = [
            ("string", DataType::Utf8),
            ("varchar(10)", DataType::Utf8),
            ("char(3)", DataType::Utf8),
            ("int", DataType::Int32),
            ("integer", DataType::Int32),
            ("bigint", DataType::Int64),
            ("smallint", DataType::Int16),
            ("tinyint", DataType::Int8),
            ("double", DataType::Float64),
            ("float", DataType::Float32),
            ("boolean", DataType::Boolean),
            ("timestamp", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))),
            ("date", DataType::Date32),
            ("decimal(12,2)", DataType::Decimal128(12, 2)),
            ("decimal", DataType::Decimal128(10, 0)),
            ("decimal(38)", DataType::Decimal128(38, 0)),
            ("binary", DataType::Binary),
        ];
        for (text, arrow) in cases {
            assert_eq!(parse(text).to_arrow(), arrow, "{text}");
            assert_eq!(parse(&text.to_uppercase()).to_arrow(), arrow, "{text} in upper case");
        }
    }

    #[test]
    fn nested_types_parse_case_insensitively_with_spaces() {
        let ty = parse(" ARRAY < Struct< Id : INT , tags: map<string, array<bigint>> > >");
        assert_eq!(ty.to_string(), "array<struct<Id:int,tags:map<string,array<bigint>>>>");
        let DataType::List(item) = ty.to_arrow() else { panic!("not a list") };
        assert_eq!(item.name(), "element");
        let DataType::Struct(fields) = item.data_type() else { panic!("not a struct") };
        assert_eq!(fields[0].name(), "Id");
        let DataType::Map(entries, sorted) = fields[1].data_type() else { panic!("not a map") };
        assert!(!sorted);
        assert_eq!(entries.name(), "key_value");
        let DataType::Struct(kv) = entries.data_type() else { panic!("entries") };
        assert_eq!((kv[0].name().as_str(), kv[0].is_nullable()), ("key", false));
        assert_eq!(kv[1].name(), "value");
    }

    #[test]
    fn canonical_form_reparses_to_the_same_type() {
        for text in [
            "map<int,struct<a:decimal(5,2),b:array<date>>>",
            "struct<x:timestamp,y:binary,z:varchar(4),w:char(2)>",
            "array<array<array<tinyint>>>",
        ] {
            let ty = parse(text);
            assert_eq!(ty.to_string(), text);
            assert_eq!(parse(&ty.to_string()), ty);
        }
    }

    #[test]
    fn backquoted_struct_field_names_are_accepted() {
        let ty = parse("struct<`a b`:int,`x``y`:string>");
        assert_eq!(
            ty,
            HiveType::Struct(vec![("a b".into(), HiveType::Int), ("x`y".into(), HiveType::String)])
        );
    }

    #[test]
    fn errors_name_the_position_and_the_problem() {
        let cases = [
            ("strnig", 1, "unknown type `strnig`"),
            ("array<int", 10, "expected `>`"),
            ("struct<a int>", 10, "expected `:`"),
            ("map<array<int>,string>", 5, "map keys must be a primitive type"),
            ("decimal(40,2)", 1, "precision must be 1..=38"),
            ("decimal(5,6)", 1, "must not exceed its precision"),
            ("varchar", 8, "expected `(`"),
            ("int extra", 5, "unexpected `e`"),
            ("struct<a:int,a:string>", 14, "duplicate struct field `a`"),
            ("struct<>", 8, "at least one field"),
            ("uniontype<int,string>", 1, "uniontype is not supported"),
            ("", 1, "expected a type name"),
        ];
        for (text, position, message) in cases {
            let err = HiveType::parse(text).expect_err(text);
            assert_eq!(err.position, position, "{text}: {err}");
            assert!(err.message.contains(message), "{text}: {err}");
        }
    }
}
