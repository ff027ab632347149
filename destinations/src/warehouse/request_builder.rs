//! From a staged object to PostgreSQL COPY rows.
//!
//! Hydrant parses the staged object itself (delimited text, CSV or JSON, as `CopyOptions` say)
//! and feeds PostgreSQL one canonical stream in COPY's text format: one line per record,
//! tab-separated, `\N` for NULL, backslash escapes. Doing the parsing here rather than with
//! PostgreSQL's own CSV mode buys three things: `JSON 'auto'` (PostgreSQL has no JSON COPY),
//! Redshift's null rules (`NULL AS`, `BLANKSASNULL`, `EMPTYASNULL`, empty non-text fields are
//! NULL), and an exact map from COPY's `line N` in an error back to the record that caused it.
//!
//! What a *record* is, for [`Rejected::index`](crate::Rejected) and [`record_spans`]:
//! - delimited text and CSV: every line after the `IGNOREHEADER` lines, counted from 0. Blank
//!   lines keep their number but load nothing (Redshift skips them too). A record is one line:
//!   a quoted CSV field cannot span lines.
//! - `JSON 'auto'`: every top-level JSON value, whether the values are separated by newlines or
//!   simply concatenated (`{..}{..}`, which Firehose users often send and Redshift accepts).
//!   Text that is not JSON is one rejected record up to the end of its line.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;
use std::ops::Range;

use bytes::Bytes;
use serde_json::value::RawValue;

use super::config::{Ident, TableName};
use super::copy_options::{PgCopyOptions, PgFormat};
use super::retry::DATA_LOAD_FAILED;
use crate::{DestinationError, Rejected};

/// The table in the target database that records every completed load.
pub const CHECKPOINT_TABLE: &str = "hydrant_load_checkpoints";

/// One staged object to load into PostgreSQL.
#[derive(Debug, Clone)]
pub struct LoadRequest {
    /// Deterministic id of the batch (the staged object key is a good one): a load_id that is
    /// already in `hydrant_load_checkpoints` is never loaded again.
    pub load_id: String,
    /// `s3://bucket/key` of the staged object; recorded with the checkpoint.
    pub object_url: String,
    /// The staged object exactly as it is in S3.
    pub body: Bytes,
    /// Whether `body` is GZIP-compressed (`S3Configuration.CompressionFormat: GZIP`).
    pub gzip: bool,
}

/// A column of the target table, as the loader found it in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// A string type (`text`, `varchar`, `char`, ...): empty fields stay empty strings unless
    /// `EMPTYASNULL`/`BLANKSASNULL`; for every other type an empty or blank field is NULL.
    pub is_text: bool,
}

/// The staged object's bytes, gunzipped when `gzip` (all gzip members, as `gzip -d` would).
/// A body that is not valid gzip cannot load however often it is tried: a permanent error.
pub fn decompress(body: &Bytes, gzip: bool) -> Result<Bytes, DestinationError> {
    if !gzip {
        return Ok(body.clone());
    }
    let mut out = Vec::with_capacity(body.len() * 4);
    flate2::read::MultiGzDecoder::new(&body[..]).read_to_end(&mut out).map_err(|e| {
        DestinationError::permanent(
            DATA_LOAD_FAILED,
            format!("the staged object is not valid GZIP ({e}); it cannot be loaded"),
        )
    })?;
    Ok(out.into())
}

/// `"name"`, with embedded quotes doubled.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'`, with embedded quotes doubled (for the simple-query protocol).
pub(crate) fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The COPY statement the PostgreSQL loader runs: always COPY's text format, because the rows
/// are Hydrant's own canonical rendering of the records (see the module docs).
pub fn postgres_copy_sql(table: &TableName, columns: &[Column]) -> String {
    if columns.is_empty() {
        return format!("COPY {} FROM STDIN", table.sql());
    }
    let list: Vec<_> = columns.iter().map(|c| quote_ident(&c.name)).collect();
    format!("COPY {} ({}) FROM STDIN", table.sql(), list.join(", "))
}

/// The columns records fill: `DataTableColumns` resolved against the table's columns, or all
/// of the table's columns in table order. Errors name a configured column the table lacks.
pub(crate) fn resolve_columns(
    configured: Option<&[Ident]>,
    table: Vec<Column>,
) -> Result<Vec<Column>, String> {
    let Some(configured) = configured else { return Ok(table) };
    configured
        .iter()
        .map(|c| table.iter().find(|t| t.name == c.name).cloned().ok_or_else(|| c.name.clone()))
        .collect()
}

enum Piece {
    Blank,
    Data,
    Invalid(String),
}

struct Record {
    span: Range<usize>,
    piece: Piece,
}

fn split_records(body: &[u8], options: &PgCopyOptions) -> Vec<Record> {
    if options.format == PgFormat::JsonAuto {
        return split_json(body);
    }
    let mut records = Vec::new();
    let mut start = 0;
    let mut skipped = 0;
    while start < body.len() {
        let end = body[start..].iter().position(|&b| b == b'\n').map_or(body.len(), |p| start + p);
        if skipped < options.ignore_header {
            skipped += 1;
        } else {
            let line = &body[start..end];
            let blank = line.is_empty() || line == b"\r";
            records.push(Record {
                span: start..end,
                piece: if blank { Piece::Blank } else { Piece::Data },
            });
        }
        start = end + 1;
    }
    records
}

fn split_json(body: &[u8]) -> Vec<Record> {
    let mut records = Vec::new();
    let mut pos = 0;
    loop {
        while pos < body.len() && body[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if pos >= body.len() {
            return records;
        }
        let mut values =
            serde_json::Deserializer::from_slice(&body[pos..]).into_iter::<serde::de::IgnoredAny>();
        match values.next() {
            Some(Ok(_)) => {
                let end = pos + values.byte_offset();
                records.push(Record { span: pos..end, piece: Piece::Data });
                pos = end;
            }
            Some(Err(e)) => {
                let end =
                    body[pos..].iter().position(|&b| b == b'\n').map_or(body.len(), |p| pos + p);
                let span_end = if end > pos && body[end - 1] == b'\r' { end - 1 } else { end };
                records.push(Record {
                    span: pos..span_end,
                    piece: Piece::Invalid(format!("record is not valid JSON: {e}")),
                });
                pos = end;
            }
            None => return records,
        }
    }
}

/// Byte ranges of the records in the decompressed staged object, by record index (see the
/// module docs for what a record is). `Rejected::index` indexes this list, so the caller can
/// put the rejected record's bytes in its error output.
pub fn record_spans(body: &[u8], options: &PgCopyOptions) -> Vec<Range<usize>> {
    split_records(body, options).into_iter().map(|r| r.span).collect()
}

/// The records of one staged object as COPY text-format rows, plus the records refused before
/// the database saw them.
#[derive(Debug)]
pub(crate) struct CopyRows {
    data: Bytes,
    /// Row `i` is `data[starts[i]..starts[i + 1]]`.
    starts: Vec<usize>,
    /// Record index of row `i`.
    pub indexes: Vec<usize>,
    pub rejected: Vec<Rejected>,
}

impl CopyRows {
    pub fn len(&self) -> usize {
        self.indexes.len()
    }

    /// The COPY data of rows `rows` (contiguous, zero-copy).
    pub fn slice(&self, rows: Range<usize>) -> Bytes {
        self.data.slice(self.starts[rows.start]..self.starts[rows.end])
    }
}

/// Converts the decompressed staged object into COPY rows for `columns`.
pub(crate) fn copy_rows(body: &[u8], options: &PgCopyOptions, columns: &[Column]) -> CopyRows {
    let mut data = Vec::with_capacity(body.len() + body.len() / 8);
    let mut starts = vec![0];
    let mut indexes = Vec::new();
    let mut rejected = Vec::new();
    for (index, record) in split_records(body, options).into_iter().enumerate() {
        let bytes = &body[record.span];
        let fields = match record.piece {
            Piece::Blank => continue,
            Piece::Invalid(message) => Err(message),
            Piece::Data => match &options.format {
                PgFormat::JsonAuto => json_fields(bytes, options, columns),
                PgFormat::Text { delimiter, escape } => line_str(bytes)
                    .map(|line| text_fields(line, *delimiter, *escape, options, columns)),
                PgFormat::Csv { delimiter, quote } => line_str(bytes)
                    .and_then(|line| csv_fields(line, *delimiter, *quote, options, columns)),
            },
        };
        match fields {
            Ok(fields) => {
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        data.push(b'\t');
                    }
                    push_field(&mut data, field.as_deref());
                }
                data.push(b'\n');
                starts.push(data.len());
                indexes.push(index);
            }
            Err(message) => {
                rejected.push(Rejected { index, code: DATA_LOAD_FAILED.into(), message })
            }
        }
    }
    CopyRows { data: data.into(), starts, indexes, rejected }
}

fn line_str(bytes: &[u8]) -> Result<&str, String> {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "record is not valid UTF-8 (invalid byte at offset {}); the database stores UTF-8 text",
            e.valid_up_to()
        )
    })
}

/// COPY text format: `\N` is NULL; backslash, newline, carriage return and tab are escaped.
fn push_field(out: &mut Vec<u8>, value: Option<&str>) {
    let Some(value) = value else {
        out.extend_from_slice(b"\\N");
        return;
    };
    for &b in value.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.push(b),
        }
    }
}

/// Redshift's null rules for an unquoted field (`raw` as written, `value` after unescaping).
fn null_rules(
    raw: &str,
    value: Cow<'_, str>,
    options: &PgCopyOptions,
    column: Option<&Column>,
    null_as: bool,
) -> Option<String> {
    let is_text = column.is_none_or(|c| c.is_text);
    if null_as && raw == options.null_as {
        None
    } else if value.is_empty() {
        (is_text && !options.empty_as_null && !options.blanks_as_null).then(String::new)
    } else if value.trim().is_empty() && (!is_text || options.blanks_as_null) {
        None
    } else {
        Some(value.into_owned())
    }
}

fn text_fields(
    line: &str,
    delimiter: u8,
    escape: bool,
    options: &PgCopyOptions,
    columns: &[Column],
) -> Vec<Option<String>> {
    let delimiter = char::from(delimiter);
    let mut fields = Vec::new();
    let mut push = |raw: &str, value: Cow<'_, str>| {
        let column = columns.get(fields.len());
        fields.push(null_rules(raw, value, options, column, true));
    };
    if !escape {
        for raw in line.split(delimiter) {
            push(raw, Cow::Borrowed(raw));
        }
        return fields;
    }
    let mut start = 0;
    let mut value = String::new();
    let mut chars = line.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some((_, next)) => value.push(next),
                None => value.push('\\'),
            }
        } else if c == delimiter {
            push(&line[start..i], Cow::Owned(std::mem::take(&mut value)));
            start = i + 1;
        } else {
            value.push(c);
        }
    }
    push(&line[start..], Cow::Owned(value));
    fields
}

fn csv_fields(
    line: &str,
    delimiter: u8,
    quote: u8,
    options: &PgCopyOptions,
    columns: &[Column],
) -> Result<Vec<Option<String>>, String> {
    let b = line.as_bytes();
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        let column = columns.get(fields.len());
        if i < b.len() && b[i] == quote {
            // Delimiter and quote are ASCII, so byte offsets are always char boundaries.
            let mut value = String::new();
            let mut start = i + 1;
            loop {
                let Some(j) = b[start..].iter().position(|&c| c == quote).map(|p| start + p) else {
                    return Err(format!(
                        "unterminated quoted field in column {} (a record is one line; a quoted \
                         field cannot span lines)",
                        fields.len() + 1
                    ));
                };
                value.push_str(&line[start..j]);
                if b.get(j + 1) == Some(&quote) {
                    value.push(char::from(quote));
                    start = j + 2;
                } else {
                    i = j + 1;
                    break;
                }
            }
            // A quoted field is never NULL, as in PostgreSQL and Redshift CSV.
            fields.push(Some(value));
            match b.get(i) {
                None => return Ok(fields),
                Some(&c) if c == delimiter => i += 1,
                Some(_) => {
                    return Err(format!(
                        "unexpected character after the closing quote of column {}",
                        fields.len()
                    ))
                }
            }
        } else {
            let end = b[i..].iter().position(|&c| c == delimiter).map_or(b.len(), |p| i + p);
            let raw = &line[i..end];
            fields.push(null_rules(raw, Cow::Borrowed(raw), options, column, true));
            if end == b.len() {
                return Ok(fields);
            }
            i = end + 1;
        }
    }
}

fn json_kind(b: u8) -> &'static str {
    match b {
        b'[' => "an array",
        b'"' => "a string",
        b'n' => "null",
        b't' | b'f' => "a boolean",
        _ => "a number",
    }
}

/// `JSON 'auto'`: each column takes the value of the key with its name (an exact match first,
/// then ignoring case); a missing key or `null` is NULL, strings load unquoted, numbers and
/// booleans as written, nested objects and arrays as their JSON text.
fn json_fields(
    bytes: &[u8],
    options: &PgCopyOptions,
    columns: &[Column],
) -> Result<Vec<Option<String>>, String> {
    if bytes.first() != Some(&b'{') {
        return Err(format!(
            "JSON 'auto' needs one JSON object per record; this record is {}",
            json_kind(bytes[0])
        ));
    }
    let object: HashMap<String, &RawValue> = serde_json::from_slice(bytes)
        .map_err(|e| format!("record is not a valid JSON object: {e}"))?;
    let mut folded: HashMap<String, &RawValue> = HashMap::with_capacity(object.len());
    for (key, value) in &object {
        folded.entry(key.to_lowercase()).or_insert(value);
    }
    let mut fields = Vec::with_capacity(columns.len());
    for column in columns {
        let raw = object
            .get(&column.name)
            .or_else(|| folded.get(&column.name.to_lowercase()))
            .map(|v| v.get());
        fields.push(match raw {
            None | Some("null") => None,
            Some(raw) if raw.starts_with('"') => {
                let s: String = serde_json::from_str(raw).map_err(|e| e.to_string())?;
                null_rules(raw, Cow::Owned(s), options, Some(column), false)
            }
            Some(raw) => Some(raw.to_owned()),
        });
    }
    Ok(fields)
}

#[cfg(test)]
mod tests;
