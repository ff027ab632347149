//! Column builders: JSON values in, Arrow arrays out.
//!
//! Each column of the schema has one [`ColumnBuilder`] that converts JSON values into its Hive
//! type (applying the deserializer's rules) and keeps them in plain vectors. Builders can be
//! truncated back to a row count, which is how a record that fails half-way through is taken
//! back out without touching the rows before it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, TimestampMicrosecondType,
};
use arrow_array::{
    ArrayRef, ArrowPrimitiveType, BinaryArray, BooleanArray, ListArray, MapArray, PrimitiveArray,
    StringArray, StructArray,
};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, FieldRef, Fields};
use base64::Engine as _;
use serde_json::{Map, Value};

use super::schema::{list_item_field, map_entries_field, struct_fields, HiveType};
use super::timestamp::{self, json_kind, HiveTimestampFormat};

mod scalar;
use scalar::{float, integer, parse_decimal};

/// How JSON is read: the deserializer's rules.
#[derive(Debug)]
pub(crate) enum Deser {
    OpenX { case_insensitive: bool, convert_dots: bool },
    Hive { formats: Vec<HiveTimestampFormat> },
}

impl Deser {
    fn is_openx(&self) -> bool {
        matches!(self, Deser::OpenX { .. })
    }

    /// The form in which a JSON object key is matched against (normalised) field names. Both
    /// deserializers match struct fields and columns case-insensitively by default.
    pub(crate) fn field_key<'a>(&self, key: &'a str) -> Cow<'a, str> {
        let (lower, dots) = match self {
            Deser::OpenX { case_insensitive, convert_dots } => (*case_insensitive, *convert_dots),
            Deser::Hive { .. } => (true, false),
        };
        normalise(key, lower, dots)
    }

    /// The key stored in a map column: OpenX lowercases (and converts dots in) every JSON key,
    /// map keys included; Hive keeps them.
    fn map_key<'a>(&self, key: &'a str) -> Cow<'a, str> {
        match self {
            Deser::OpenX { case_insensitive, convert_dots } => {
                normalise(key, *case_insensitive, *convert_dots)
            }
            Deser::Hive { .. } => Cow::Borrowed(key),
        }
    }
}

fn normalise(key: &str, lower: bool, dots: bool) -> Cow<'_, str> {
    let needs_lower = lower && key.chars().any(|c| c.is_uppercase());
    let needs_dots = dots && key.contains('.');
    match (needs_lower, needs_dots) {
        (false, false) => Cow::Borrowed(key),
        (true, false) => Cow::Owned(key.to_lowercase()),
        (false, true) => Cow::Owned(key.replace('.', "_")),
        (true, true) => Cow::Owned(key.to_lowercase().replace('.', "_")),
    }
}

/// Where in the record a value failed, and why.
#[derive(Debug)]
pub(crate) struct ValueError {
    /// Innermost segment first.
    path: Vec<Segment>,
    /// The type the value should have had.
    ty: String,
    message: String,
}

#[derive(Debug)]
enum Segment {
    Field(String),
    Index(usize),
    MapKey(String),
}

impl ValueError {
    fn new(ty: &HiveType, message: String) -> Self {
        ValueError { path: Vec::new(), ty: ty.to_string(), message }
    }
    fn within(mut self, segment: Segment) -> Self {
        self.path.push(segment);
        self
    }
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("column `")?;
        for (i, segment) in self.path.iter().rev().enumerate() {
            match segment {
                Segment::Field(name) if i == 0 => f.write_str(name)?,
                Segment::Field(name) => write!(f, ".{name}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
                Segment::MapKey(k) => write!(f, "[{k:?}]")?,
            }
        }
        write!(f, "` ({}): {}", self.ty, self.message)
    }
}

type Result<T> = std::result::Result<T, ValueError>;

/// Builds one Arrow array of a Hive type from JSON values.
#[derive(Debug)]
pub(crate) struct ColumnBuilder {
    ty: HiveType,
    validity: Vec<bool>,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Boolean(Vec<bool>),
    Int8(Vec<i8>),
    Int16(Vec<i16>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Float32(Vec<f32>),
    Float64(Vec<f64>),
    Timestamp(Vec<i64>),
    Date(Vec<i32>),
    Decimal(Vec<i128>),
    Utf8 { offsets: Vec<i32>, data: Vec<u8> },
    Binary { offsets: Vec<i32>, data: Vec<u8> },
    List { offsets: Vec<i32>, item: Box<ColumnBuilder>, field: FieldRef },
    Struct(StructBuilder),
    Map { offsets: Vec<i32>, keys: Box<ColumnBuilder>, values: Box<ColumnBuilder>, field: FieldRef },
}

/// The fields of a struct (or of the whole row) and the keys that fill them.
#[derive(Debug)]
pub(crate) struct StructBuilder {
    pub(crate) children: Vec<ColumnBuilder>,
    names: Vec<String>,
    fields: Fields,
    /// Normalised JSON key -> child index.
    index: HashMap<String, usize>,
}

impl StructBuilder {
    /// `keys[i]` is the JSON key (already normalised) that fills child `i`.
    pub(crate) fn new(fields: &[(String, HiveType)], keys: Vec<String>, deser: &Deser) -> Self {
        let index = keys.into_iter().enumerate().map(|(i, k)| (k, i)).collect();
        StructBuilder {
            children: fields.iter().map(|(_, ty)| ColumnBuilder::new(ty.clone(), deser)).collect(),
            names: fields.iter().map(|(n, _)| n.clone()).collect(),
            fields: struct_fields(fields),
            index,
        }
    }

    fn for_type(fields: &[(String, HiveType)], deser: &Deser) -> Self {
        let keys = fields.iter().map(|(n, _)| deser.field_key(n).into_owned()).collect();
        StructBuilder::new(fields, keys, deser)
    }

    /// Appends one object: its keys fill the matching fields, missing ones are null, extra
    /// keys are ignored. When two keys normalise to the same field, the later one in key
    /// order wins.
    pub(crate) fn append_object(
        &mut self,
        object: &Map<String, Value>,
        deser: &Deser,
    ) -> Result<()> {
        let mut slots: Vec<Option<&Value>> = vec![None; self.children.len()];
        for (key, value) in object {
            if let Some(&i) = self.index.get(deser.field_key(key).as_ref()) {
                slots[i] = Some(value);
            }
        }
        for ((child, slot), name) in self.children.iter_mut().zip(slots).zip(&self.names) {
            match slot {
                Some(value) => child
                    .append(value, deser)
                    .map_err(|e| e.within(Segment::Field(name.clone())))?,
                None => child.append_null(),
            }
        }
        Ok(())
    }

    fn append_null(&mut self) {
        for child in &mut self.children {
            child.append_null();
        }
    }

    pub(crate) fn truncate(&mut self, len: usize) {
        for child in &mut self.children {
            child.truncate(len);
        }
    }

    pub(crate) fn finish_children(&mut self) -> std::result::Result<Vec<ArrayRef>, ArrowError> {
        self.children.iter_mut().map(ColumnBuilder::finish).collect()
    }
}

impl ColumnBuilder {
    /// A builder for `ty`; `deser` normalises the field names of nested structs.
    pub(crate) fn new(ty: HiveType, deser: &Deser) -> Self {
        let kind = match &ty {
            HiveType::Boolean => Kind::Boolean(Vec::new()),
            HiveType::TinyInt => Kind::Int8(Vec::new()),
            HiveType::SmallInt => Kind::Int16(Vec::new()),
            HiveType::Int => Kind::Int32(Vec::new()),
            HiveType::BigInt => Kind::Int64(Vec::new()),
            HiveType::Float => Kind::Float32(Vec::new()),
            HiveType::Double => Kind::Float64(Vec::new()),
            HiveType::Timestamp => Kind::Timestamp(Vec::new()),
            HiveType::Date => Kind::Date(Vec::new()),
            HiveType::Decimal { .. } => Kind::Decimal(Vec::new()),
            HiveType::String | HiveType::Varchar(_) | HiveType::Char(_) => {
                Kind::Utf8 { offsets: vec![0], data: Vec::new() }
            }
            HiveType::Binary => Kind::Binary { offsets: vec![0], data: Vec::new() },
            HiveType::Array(item) => Kind::List {
                offsets: vec![0],
                item: Box::new(ColumnBuilder::new((**item).clone(), deser)),
                field: list_item_field(item),
            },
            HiveType::Struct(fields) => Kind::Struct(StructBuilder::for_type(fields, deser)),
            HiveType::Map(k, v) => Kind::Map {
                offsets: vec![0],
                keys: Box::new(ColumnBuilder::new((**k).clone(), deser)),
                values: Box::new(ColumnBuilder::new((**v).clone(), deser)),
                field: map_entries_field(k, v),
            },
        };
        ColumnBuilder { ty, validity: Vec::new(), kind }
    }

    pub(crate) fn append_null(&mut self) {
        self.validity.push(false);
        match &mut self.kind {
            Kind::Boolean(v) => v.push(false),
            Kind::Int8(v) => v.push(0),
            Kind::Int16(v) => v.push(0),
            Kind::Int32(v) | Kind::Date(v) => v.push(0),
            Kind::Int64(v) | Kind::Timestamp(v) => v.push(0),
            Kind::Float32(v) => v.push(0.0),
            Kind::Float64(v) => v.push(0.0),
            Kind::Decimal(v) => v.push(0),
            Kind::Utf8 { offsets, .. }
            | Kind::Binary { offsets, .. }
            | Kind::List { offsets, .. }
            | Kind::Map { offsets, .. } => offsets.push(*offsets.last().unwrap_or(&0)),
            Kind::Struct(s) => s.append_null(),
        }
    }

    /// Appends one JSON value (null appends a null).
    pub(crate) fn append(&mut self, value: &Value, deser: &Deser) -> Result<()> {
        if value.is_null() {
            self.append_null();
            return Ok(());
        }
        self.append_value(value, deser, false)
    }

    /// `key_text`: the value is a map key (always a JSON string), so numeric and boolean
    /// types read it from text under either deserializer.
    fn append_value(&mut self, value: &Value, deser: &Deser, key_text: bool) -> Result<()> {
        let strings_ok = key_text || deser.is_openx();
        let ColumnBuilder { ty, validity, kind } = self;
        let ty: &HiveType = ty;
        let err = |message: String| ValueError::new(ty, message);
        match kind {
            Kind::Boolean(v) => {
                let b = match value {
                    Value::Bool(b) => *b,
                    Value::String(s) if s.eq_ignore_ascii_case("true") => true,
                    Value::String(s) if s.eq_ignore_ascii_case("false") => false,
                    other => {
                        return Err(err(format!(
                            "expected true or false, found {}",
                            json_kind(other)
                        )))
                    }
                };
                v.push(b);
            }
            Kind::Int8(v) => {
                let i = integer(value, strings_ok, i8::MIN.into(), i8::MAX.into()).map_err(err)?;
                v.push(i as i8);
            }
            Kind::Int16(v) => {
                let i =
                    integer(value, strings_ok, i16::MIN.into(), i16::MAX.into()).map_err(err)?;
                v.push(i as i16);
            }
            Kind::Int32(v) => {
                let i =
                    integer(value, strings_ok, i32::MIN.into(), i32::MAX.into()).map_err(err)?;
                v.push(i as i32);
            }
            Kind::Int64(v) => {
                let i = integer(value, strings_ok, i64::MIN, i64::MAX).map_err(err)?;
                v.push(i);
            }
            Kind::Float32(v) => {
                let f = float(value, strings_ok).map_err(err)?;
                let narrowed = f as f32;
                if f.is_finite() && !narrowed.is_finite() {
                    return Err(err(format!("{f} is out of range for float")));
                }
                v.push(narrowed);
            }
            Kind::Float64(v) => {
                let f = float(value, strings_ok).map_err(err)?;
                v.push(f);
            }
            Kind::Timestamp(v) => {
                let t = match deser {
                    Deser::OpenX { .. } => timestamp::openx_timestamp(value),
                    Deser::Hive { formats } => timestamp::hive_timestamp(value, formats),
                };
                v.push(t.map_err(err)?);
            }
            Kind::Date(v) => {
                let d = timestamp::parse_date(value).map_err(err)?;
                v.push(d);
            }
            Kind::Decimal(v) => {
                let HiveType::Decimal { precision, scale } = *ty else { unreachable!() };
                let text = match value {
                    Value::Number(n) => n.to_string(),
                    Value::String(s) => s.clone(),
                    other => {
                        return Err(err(format!(
                            "expected a decimal number, found {}",
                            json_kind(other)
                        )))
                    }
                };
                let d = parse_decimal(&text, precision, scale).map_err(err)?;
                v.push(d);
            }
            Kind::Utf8 { offsets, data } => {
                let start = data.len();
                match value {
                    Value::String(s) => data.extend_from_slice(s.as_bytes()),
                    Value::Number(n) => data.extend_from_slice(n.to_string().as_bytes()),
                    Value::Bool(b) => data.extend_from_slice(if *b { b"true" } else { b"false" }),
                    Value::Object(_) | Value::Array(_) if deser.is_openx() => {
                        // OpenX keeps nested JSON in a string column as its JSON text.
                        serde_json::to_writer(&mut *data, value).map_err(|e| {
                            ValueError::new(ty, format!("cannot re-serialize nested JSON: {e}"))
                        })?;
                    }
                    other => {
                        return Err(err(format!(
                            "expected a string, found {} (HiveJsonSerDe does not turn nested JSON \
                             into strings; use OpenXJsonSerDe or declare a struct, array or map \
                             column)",
                            json_kind(other)
                        )))
                    }
                }
                match *ty {
                    HiveType::Varchar(n) => truncate_chars(data, start, n as usize),
                    HiveType::Char(n) => {
                        truncate_chars(data, start, n as usize);
                        let chars = String::from_utf8_lossy(&data[start..]).chars().count();
                        data.resize(data.len() + (n as usize).saturating_sub(chars), b' ');
                    }
                    _ => {}
                }
                offsets.push(data.len() as i32);
            }
            Kind::Binary { offsets, data } => {
                let Value::String(s) = value else {
                    return Err(err(format!(
                        "expected a base64 string, found {}",
                        json_kind(value)
                    )));
                };
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|e| ValueError::new(ty, format!("expected base64: {e}")))?;
                data.extend_from_slice(&bytes);
                offsets.push(data.len() as i32);
            }
            Kind::List { offsets, item, .. } => {
                let Value::Array(items) = value else {
                    return Err(ValueError::new(
                        ty,
                        format!("expected a JSON array, found {}", json_kind(value)),
                    ));
                };
                for (i, v) in items.iter().enumerate() {
                    item.append(v, deser).map_err(|e| e.within(Segment::Index(i)))?;
                }
                offsets.push(offsets.last().unwrap_or(&0) + items.len() as i32);
            }
            Kind::Struct(s) => {
                let Value::Object(object) = value else {
                    return Err(ValueError::new(
                        ty,
                        format!("expected a JSON object, found {}", json_kind(value)),
                    ));
                };
                s.append_object(object, deser)?;
            }
            Kind::Map { offsets, keys, values, .. } => {
                let Value::Object(object) = value else {
                    return Err(ValueError::new(
                        ty,
                        format!("expected a JSON object, found {}", json_kind(value)),
                    ));
                };
                for (key, v) in object {
                    let key = deser.map_key(key);
                    keys.append_value(&Value::String(key.to_string()), deser, true)
                        .map_err(|e| e.within(Segment::MapKey(key.to_string())))?;
                    values
                        .append(v, deser)
                        .map_err(|e| e.within(Segment::MapKey(key.to_string())))?;
                }
                offsets.push(offsets.last().unwrap_or(&0) + object.len() as i32);
            }
        }
        validity.push(true);
        Ok(())
    }

    /// Drops everything after the first `len` values.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.validity.truncate(len);
        match &mut self.kind {
            Kind::Boolean(v) => v.truncate(len),
            Kind::Int8(v) => v.truncate(len),
            Kind::Int16(v) => v.truncate(len),
            Kind::Int32(v) | Kind::Date(v) => v.truncate(len),
            Kind::Int64(v) | Kind::Timestamp(v) => v.truncate(len),
            Kind::Float32(v) => v.truncate(len),
            Kind::Float64(v) => v.truncate(len),
            Kind::Decimal(v) => v.truncate(len),
            Kind::Utf8 { offsets, data } | Kind::Binary { offsets, data } => {
                if let Some(&end) = offsets.get(len) {
                    offsets.truncate(len + 1);
                    data.truncate(end as usize);
                }
            }
            Kind::List { offsets, item, .. } => {
                if let Some(&end) = offsets.get(len) {
                    offsets.truncate(len + 1);
                    item.truncate(end as usize);
                }
            }
            Kind::Struct(s) => s.truncate(len),
            Kind::Map { offsets, keys, values, .. } => {
                if let Some(&end) = offsets.get(len) {
                    offsets.truncate(len + 1);
                    keys.truncate(end as usize);
                    values.truncate(end as usize);
                }
            }
        }
    }

    /// Takes the values appended so far as an Arrow array and starts empty again.
    pub(crate) fn finish(&mut self) -> std::result::Result<ArrayRef, ArrowError> {
        let validity = std::mem::take(&mut self.validity);
        let nulls =
            if validity.iter().all(|v| *v) { None } else { Some(NullBuffer::from(validity)) };
        Ok(match &mut self.kind {
            Kind::Boolean(v) => {
                Arc::new(BooleanArray::new(BooleanBuffer::from(std::mem::take(v)), nulls))
            }
            Kind::Int8(v) => primitive::<Int8Type>(v, nulls),
            Kind::Int16(v) => primitive::<Int16Type>(v, nulls),
            Kind::Int32(v) => primitive::<Int32Type>(v, nulls),
            Kind::Int64(v) => primitive::<Int64Type>(v, nulls),
            Kind::Float32(v) => primitive::<Float32Type>(v, nulls),
            Kind::Float64(v) => primitive::<Float64Type>(v, nulls),
            Kind::Date(v) => primitive::<Date32Type>(v, nulls),
            Kind::Timestamp(v) => Arc::new(
                PrimitiveArray::<TimestampMicrosecondType>::new(
                    ScalarBuffer::from(std::mem::take(v)),
                    nulls,
                )
                .with_timezone("UTC"),
            ),
            Kind::Decimal(v) => {
                let HiveType::Decimal { precision, scale } = self.ty else { unreachable!() };
                Arc::new(
                    PrimitiveArray::<Decimal128Type>::new(
                        ScalarBuffer::from(std::mem::take(v)),
                        nulls,
                    )
                    .with_precision_and_scale(precision, scale as i8)?,
                )
            }
            Kind::Utf8 { offsets, data } => {
                let (offsets, data) = take_offsets(offsets, data);
                Arc::new(StringArray::try_new(offsets, data, nulls)?)
            }
            Kind::Binary { offsets, data } => {
                let (offsets, data) = take_offsets(offsets, data);
                Arc::new(BinaryArray::try_new(offsets, data, nulls)?)
            }
            Kind::List { offsets, item, field } => {
                let offsets = take_offset_buffer(offsets);
                Arc::new(ListArray::try_new(field.clone(), offsets, item.finish()?, nulls)?)
            }
            Kind::Struct(s) => {
                let children = s.finish_children()?;
                Arc::new(StructArray::try_new(s.fields.clone(), children, nulls)?)
            }
            Kind::Map { offsets, keys, values, field } => {
                let offsets = take_offset_buffer(offsets);
                let arrow_schema::DataType::Struct(entry_fields) = field.data_type() else {
                    unreachable!("map entries are a struct")
                };
                let entries = StructArray::try_new(
                    entry_fields.clone(),
                    vec![keys.finish()?, values.finish()?],
                    None,
                )?;
                Arc::new(MapArray::try_new(field.clone(), offsets, entries, nulls, false)?)
            }
        })
    }
}

fn primitive<T: ArrowPrimitiveType>(v: &mut Vec<T::Native>, nulls: Option<NullBuffer>) -> ArrayRef {
    Arc::new(PrimitiveArray::<T>::new(ScalarBuffer::from(std::mem::take(v)), nulls))
}

fn take_offset_buffer(offsets: &mut Vec<i32>) -> OffsetBuffer<i32> {
    let taken = std::mem::replace(offsets, vec![0]);
    OffsetBuffer::new(ScalarBuffer::from(taken))
}

fn take_offsets(offsets: &mut Vec<i32>, data: &mut Vec<u8>) -> (OffsetBuffer<i32>, Buffer) {
    (take_offset_buffer(offsets), Buffer::from_vec(std::mem::take(data)))
}

/// Keeps at most `n` characters of the string that starts at `data[start..]`.
fn truncate_chars(data: &mut Vec<u8>, start: usize, n: usize) {
    let s = String::from_utf8_lossy(&data[start..]);
    if let Some((cut, _)) = s.char_indices().nth(n) {
        data.truncate(start + cut);
    }
}

#[cfg(test)]
mod tests;
