//! `MetadataExtraction`: partition keys from a jq query (dynamic partitioning, inline parsing).
//!
//! The query (`MetadataExtractionQuery`) is compiled once, with the [`jaq`] engine and its
//! standard library, and run on every record. Firehose's only `JsonParsingEngine` is `JQ-1.6`;
//! jaq follows jq 1.7 in a few corners (see the differences below), which do not matter for the
//! usual partitioning queries such as
//! `{customer_id:.customer_id, device:.type.device, day:(.ts/1000|strftime("%Y-%m-%d"))}`.
//!
//! # What a record must give
//!
//! * The record must be one JSON value (strict JSON, parsed with `serde_json`; surrounding
//!   whitespace such as a trailing newline is fine; `NaN`, comments or two concatenated
//!   documents are not; nesting deeper than 128 levels is rejected, serde_json's limit). A
//!   record that is not JSON fails with `MetadataExtraction.NonJsonRecord`.
//! * The query must produce exactly one output, and that output must be an object whose keys
//!   are strings. Each member becomes one partition key (`!{partitionKeyFromQuery:<key>}`).
//! * Values become strings: strings as they are; `true`/`false`; numbers as JSON text, with
//!   integral floats written as integers like jq 1.6 does (`1.0` and `1690000000000/1000` give
//!   `1`, `1690000000`), other floats in their shortest round-trip form (`1.5`). `null` fails
//!   with `MetadataExtraction.MissingKey` naming the key, because `.absent_field` yields
//!   `null`: a key that is absent from the record must not silently become the text `null` in
//!   an S3 prefix. Objects, arrays and NaN/infinite numbers fail with
//!   `MetadataExtraction.InvalidKeyValue` naming the key. An empty string is returned as it
//!   is; dynamic partitioning then refuses it (with `.`, `..` and control characters) as a
//!   value no object key can hold (`naming::UnnameableRecord`).
//! * An empty object `{}` is accepted and yields no keys; a prefix that references a key then
//!   fails when the prefix is evaluated.
//!
//! # Builtins
//!
//! Everything of jaq's core, std and json libraries is there, including `strftime`,
//! `strptime`, `mktime`, `gmtime`, `todate`, `fromdate`, `todateiso8601`, `now`, `test`,
//! `match`, `capture`, `sub`, `gsub`, `split`, `ascii_downcase`, `ltrimstr`, `tostring`,
//! `tonumber`, `@base64`, `@uri`, `@sh`, `@json`, ... `strftime` takes epoch seconds (integer
//! or with fractions, so `.ts/1000` works) or a broken-down time array and formats in UTC with
//! jiff's `strtime`, which knows the C conversion specifiers (`%Y %m %d %H %M %S %j %a %A %b
//! %B %e %s %u %U %V %W %Z %z %F %T %D %R`, ...). Added here ([`JQ16_COMPAT_DEFS`] and native
//! hooks):
//!
//! * jq 1.6 builtins jaq lacks: `date`, `dateadd`, `datesub`, `leaf_paths`, `recurse_down`,
//!   `IN/1`, `IN/2`, `INDEX/1`, `INDEX/2`, `input_filename` (null), `@csv`, `@tsv`.
//! * `strftime`/`strflocaltime` give `%c`, `%x`, `%X`, `%r` their glibc C-locale meaning
//!   (jiff's defaults differ, e.g. `%c` would be `2023 M07 22, Sat 04:26:40`) and ignore the
//!   `E`/`O` modifiers, which jiff rejects.
//!
//! Still missing (not useful for key extraction): `@base32`, `@base32d`, `tostream`,
//! `fromstream`, `truncate_stream`, `builtins`, `$__loc__`,
//! `input_line_number`, `lgamma_r`, `get_search_list`, `modulemeta`, and the `?//`
//! destructuring alternative operator. They fail at config time as undefined.
//!
//! Deliberately unavailable: `env` (it would copy the server's environment, secrets included,
//! into S3 object keys; it fails with an error), `$ENV` (undefined variable, rejected at
//! config time), `input`/`inputs` (undefined), `import`/`include` (module loading is off).
//! `halt`/`halt_error` fail the record instead of stopping the process.
//!
//! # Differences from jq 1.6 worth knowing
//!
//! * `todate` of a number with fractions keeps the fractions (`"…41.5Z"`); jq 1.6 drops them.
//! * Integers stay exact at any size (`12345678901234567890` stays that); jq 1.6 rounds every
//!   number to a double. Big floats print as `1e100` where jq 1.6 prints `1e+100`, and `-0`
//!   prints as `0`.
//! * `localtime`, `strflocaltime` use the server's time zone; Firehose runs in UTC, so use
//!   `strftime`/`gmtime`.
//!
//! # Limits
//!
//! A query is a program, and API clients write it: `def f: f; f` loops forever, `def f: 1 +
//! f; f` recurses until the stack overflows (which would abort the process, and every restart
//! would replay the record into the same abort), `"x" * 1e12` asks for a terabyte. jaq has no
//! limit of its own, so Hydrant bounds every record's evaluation ([`budget`]: steps, stack,
//! time and bytes built; [`natives`] and [`rewrite`]: no single step builds an unbounded
//! value). A record whose evaluation runs out fails with
//! `MetadataExtraction.QueryLimitExceeded` and goes to the error output like any other
//! extraction failure; the shard moves on. The query text itself is at most
//! [`MAX_QUERY_CHARS`] characters (Firehose's limit for a parameter value) and is parsed on a
//! large stack, since jaq's parser recurses once per nesting level.
//!
//! [`jaq`]: https://github.com/01mf02/jaq

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use jaq_core::load::{Arena, File, Loader};
use jaq_core::native::{v, Fun};
use jaq_core::{Compiler, Ctx, Native, Vars};
use jaq_json::{Num, Val};

mod budget;
mod compare;
mod natives;
mod rewrite;

pub use budget::{mark_evaluator_thread, EVALUATOR_THREAD_STACK_BYTES, MAX_STEPS};
use budget::{Aborted, Guarded};

/// The only accepted `JsonParsingEngine` value.
pub const JQ_1_6: &str = "JQ-1.6";

/// Longest error message kept (error messages end up in error-output documents).
const MAX_MESSAGE_CHARS: usize = 512;

/// Longest query accepted, in characters (Firehose's limit for a `ParameterValue`).
pub const MAX_QUERY_CHARS: usize = 5120;

/// The query, compiled as the body of this definition after [`rewrite`] (the text the user
/// wrote is compiled first, on its own, for error messages that point into it).
const QUERY_DEF: &str = "_hydrant_query";

/// jq 1.6 builtins that jaq does not define, written in jq, and the `strftime` wrappers that
/// give `%c`, `%x`, `%X`, `%r` their C-locale meaning (see [`c_locale_format`]).
pub const JQ16_COMPAT_DEFS: &str = r#"
def date: todate;
def dateadd(u; n): . + n;
def datesub(u; n): . - n;
def leaf_paths: paths(scalars);
def recurse_down: recurse;
def IN(s): any(s == .; .);
def IN(src; s): any(src == s; .);
def INDEX(stream; idx_expr): reduce stream as $row ({}; .[$row | idx_expr | tostring] |= $row);
def INDEX(idx_expr): INDEX(.[]; idx_expr);
def input_filename: null;
def @csv:
  if type != "array" then error("\(type) (\(tojson)) cannot be csv-formatted, only an array can be")
  else map(
    if type == "string" then "\"" + (split("\"") | join("\"\"")) + "\""
    elif type == "number" or type == "boolean" then tostring
    elif . == null then ""
    else error("\(type) (\(tojson)) is not valid in a csv row") end
  ) | join(",") end;
def @tsv:
  if type != "array" then error("\(type) (\(tojson)) cannot be tsv-formatted, only an array can be")
  else map(
    if type == "string" then
      split("\\") | join("\\\\") | split("\t") | join("\\t")
      | split("\n") | join("\\n") | split("\r") | join("\\r")
    elif type == "number" or type == "boolean" then tostring
    elif . == null then ""
    else error("\(type) (\(tojson)) is not valid in a tsv row") end
  ) | join("\t") end;
def strftime($fmt): _strftime_jiff($fmt | _c_locale_format);
def strflocaltime($fmt): _strflocaltime_jiff($fmt | _c_locale_format);
"#;

type Data = Guarded;
type Filter = jaq_core::compile::Filter<Native<Data>>;

/// A compiled `MetadataExtractionQuery`. `Send + Sync`, cheap to clone (the compiled program
/// is shared); extraction takes `&self`.
#[derive(Clone)]
pub struct MetadataExtractor {
    query: String,
    filter: Arc<Filter>,
}

impl fmt::Debug for MetadataExtractor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetadataExtractor").field("query", &self.query).finish_non_exhaustive()
    }
}

/// Why a query does not compile. The message says what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    pub message: String,
}

/// Why partition keys could not be extracted from one record. Each error goes to the error
/// output with [`ExtractError::code`] as its error code and the `Display` text as its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("Non JSON record provided: {detail}")]
    NotJson { detail: String },
    #[error("the MetadataExtractionQuery failed on this record: {detail}")]
    QueryFailed { detail: String },
    #[error("the MetadataExtractionQuery produced no output for this record; it must produce one object of partition keys")]
    NoResult,
    #[error("the MetadataExtractionQuery produced more than one output for this record; it must produce exactly one object of partition keys")]
    MultipleResults,
    #[error("the MetadataExtractionQuery produced {found} instead of an object of partition keys such as {{\"customer_id\": .customer_id}}")]
    NotAnObject { found: String },
    #[error(
        "the MetadataExtractionQuery produced a partition key name that is not a string: {key}"
    )]
    NonStringKey { key: String },
    #[error("partition key \"{key}\" is null: the record has no value for it")]
    MissingKey { key: String },
    #[error("partition key \"{key}\" is {found}; partition key values must be strings, numbers or booleans")]
    InvalidKeyValue { key: String, found: String },
    #[error("the MetadataExtractionQuery was stopped on this record: {detail}")]
    LimitExceeded { detail: String },
}

impl ExtractError {
    /// Error code for the error output (Hydrant's own names: Firehose's codes for dynamic
    /// partitioning failures are not documented).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotJson { .. } => "MetadataExtraction.NonJsonRecord",
            Self::QueryFailed { .. } => "MetadataExtraction.QueryFailed",
            Self::NoResult => "MetadataExtraction.NoResult",
            Self::MultipleResults => "MetadataExtraction.MultipleResults",
            Self::NotAnObject { .. } => "MetadataExtraction.NotAnObject",
            Self::NonStringKey { .. } => "MetadataExtraction.InvalidKeyName",
            Self::MissingKey { .. } => "MetadataExtraction.MissingKey",
            Self::InvalidKeyValue { .. } => "MetadataExtraction.InvalidKeyValue",
            Self::LimitExceeded { .. } => "MetadataExtraction.QueryLimitExceeded",
        }
    }
}

impl MetadataExtractor {
    /// Compile `query` with the jq standard library. Fails with a message naming the syntax
    /// error or the undefined filter/variable.
    pub fn new(query: &str) -> Result<Self, QueryError> {
        if query.trim().is_empty() {
            return Err(QueryError {
                message: "the query is empty; give a jq object such as {customer_id: .customer_id}"
                    .into(),
            });
        }
        let chars = query.chars().count();
        if chars > MAX_QUERY_CHARS {
            return Err(QueryError {
                message: format!(
                    "the query is {chars} characters long; at most {MAX_QUERY_CHARS} are allowed"
                ),
            });
        }
        // jaq's parser and compiler recurse once per nesting level of the text.
        let filter = budget::on_large_stack(|| compile(query))?;
        Ok(Self { query: query.to_owned(), filter: Arc::new(filter) })
    }

    /// The query text as configured.
    pub fn query(&self) -> &str {
        &self.query
    }

    /// Run the query on one record and return its partition keys. The evaluation is bounded
    /// ([`budget`]): a query that runs out fails the record with
    /// [`ExtractError::LimitExceeded`], never the thread.
    pub fn extract(&self, record: &[u8]) -> Result<BTreeMap<String, String>, ExtractError> {
        let filter = &*self.filter;
        // Every value lives inside the evaluation (jq values are neither Send nor cheap to
        // drop when deep): only the keys or the error come out.
        budget::evaluate(&filter.lut, |data| run(filter, data, record)).unwrap_or_else(|aborted| {
            Err(match aborted {
                Aborted::Exhausted(why) => ExtractError::LimitExceeded { detail: why.describe() },
                Aborted::Panicked(message) => ExtractError::QueryFailed {
                    detail: truncate(format!("the jq engine failed on this record: {message}")),
                },
            })
        })
    }
}

/// Parses and compiles `query` twice: as written (so errors point into the user's text),
/// then rewritten ([`rewrite`]) as the body of [`QUERY_DEF`], which is what runs.
fn compile(query: &str) -> Result<Filter, QueryError> {
    let arena = Arena::default();
    let modules = Loader::new(prelude())
        .load(&arena, File { code: query, path: () })
        .map_err(|errs| QueryError { message: load_errors(query, errs) })?;
    Compiler::default()
        .with_funs(funs())
        .compile(modules)
        .map_err(|errs| QueryError { message: compile_errors(errs) })?;

    let body = jaq_core::load::parse(query, |p| p.term()).ok_or_else(|| QueryError {
        message: "invalid jq query: the query does not parse".into(),
    })?;
    let query_def =
        jaq_core::load::parse::Def { name: QUERY_DEF, args: Vec::new(), body: rewrite::term(body) };
    let modules = Loader::new(prelude().chain([query_def]))
        .load(&arena, File { code: QUERY_DEF, path: () })
        .map_err(|errs| QueryError { message: load_errors(query, errs) })?;
    Compiler::default()
        .with_funs(funs())
        .compile(modules)
        .map_err(|errs| QueryError { message: compile_errors(errs) })
}

/// jq's standard library plus the jq 1.6 compatibility definitions, rewritten.
fn prelude<'s>() -> impl Iterator<Item = jaq_core::load::parse::Def<&'s str>> {
    let compat = jaq_core::load::parse(JQ16_COMPAT_DEFS, |p| p.defs())
        .expect("the built-in jq 1.6 compatibility definitions parse");
    jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs())
        .chain(compat)
        .map(|d| rewrite::def(d))
}

/// jaq's natives, minus `env` and those [`natives`] replaces, plus Hydrant's.
fn funs() -> impl Iterator<Item = Fun<Data>> {
    let keep = |name: &str| !natives::REPLACED.contains(&name);
    jaq_core::funs::<Data>()
        .filter(move |(name, _, _)| keep(name))
        .chain(jaq_std::funs::<Data>().filter_map(move |(name, args, f)| match name {
            "env" => None,
            "strftime" => Some(("_strftime_jiff", args, f)),
            "strflocaltime" => Some(("_strflocaltime_jiff", args, f)),
            _ => keep(name).then_some((name, args, f)),
        }))
        .chain(jaq_json::funs::<Data>().filter(move |(name, _, _)| keep(name)))
        .chain(hydrant_funs())
        .chain(natives::funs())
}

/// One evaluation: the record as a jq value, the query's single output, its keys.
fn run(
    filter: &Filter,
    data: budget::GuardedData<'_>,
    record: &[u8],
) -> Result<BTreeMap<String, String>, ExtractError> {
    let input: Val = serde_json::from_slice(record)
        .map_err(|e| ExtractError::NotJson { detail: truncate(e.to_string()) })?;
    let ctx = Ctx::<Data>::new(data, Vars::new([]));
    let mut outputs = filter.id.run((ctx, input));
    let first = match outputs.next() {
        None => return Err(ExtractError::NoResult),
        Some(Err(e)) => return Err(query_failed(e)),
        Some(Ok(v)) => v,
    };
    match outputs.next() {
        None => {}
        Some(Ok(_)) => return Err(ExtractError::MultipleResults),
        Some(Err(e)) => return Err(query_failed(e)),
    }
    drop(outputs);

    let Val::Obj(members) = first else {
        return Err(ExtractError::NotAnObject { found: describe(&first) });
    };
    let mut keys = BTreeMap::new();
    for (name, value) in members.iter() {
        let name = match name {
            Val::TStr(b) | Val::BStr(b) => String::from_utf8_lossy(b).into_owned(),
            other => {
                return Err(ExtractError::NonStringKey {
                    key: natives::render(other, MAX_MESSAGE_CHARS),
                })
            }
        };
        let value = key_value(&name, value)?;
        keys.insert(name, value);
    }
    Ok(keys)
}

/// Native filters of Hydrant's own: `env` fails instead of exposing the server's environment
/// variables (secrets included) in S3 object keys; `_c_locale_format` backs the `strftime`
/// wrapper of [`JQ16_COMPAT_DEFS`].
fn hydrant_funs() -> impl Iterator<Item = Fun<Data>> {
    fn env(_: jaq_core::Cv<'_, Data>) -> jaq_core::ValXs<'_, Val> {
        let err = jaq_core::Error::str("env is not available in Hydrant's MetadataExtractionQuery");
        Box::new(std::iter::once(Err(jaq_core::Exn::from(err))))
    }
    fn c_locale(cv: jaq_core::Cv<'_, Data>) -> jaq_core::ValXs<'_, Val> {
        let out = match &cv.1 {
            Val::TStr(fmt) => match std::str::from_utf8(fmt) {
                Ok(fmt) => Ok(Val::from(c_locale_format(fmt))),
                Err(_) => Err(jaq_core::Error::str("strftime/1 requires a UTF-8 format string")),
            },
            other => Err(jaq_core::Error::str(format_args!(
                "strftime/1 requires a string format, got {other}"
            ))),
        };
        Box::new(std::iter::once(out.map_err(jaq_core::Exn::from)))
    }
    [
        ("env", v(0), Native::<Data>::new(env)),
        ("_c_locale_format", v(0), Native::<Data>::new(c_locale)),
    ]
    .into_iter()
}

/// Rewrite a C `strftime` format so that jiff's `strtime` formats it like glibc in the C
/// locale (what jq 1.6 uses): `%c` → `%a %b %e %H:%M:%S %Y`, `%x` → `%m/%d/%y`,
/// `%X` → `%H:%M:%S`, `%r` → `%I:%M:%S %p`, and the `E`/`O` locale modifiers are dropped
/// (`%Ey` → `%y`). `%%` stays a literal percent sign. Everything else is left to jiff.
pub fn c_locale_format(fmt: &str) -> String {
    let mut out = String::with_capacity(fmt.len());
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if matches!(chars.peek(), Some('E' | 'O')) {
            chars.next();
        }
        match chars.next() {
            Some('c') => out.push_str("%a %b %e %H:%M:%S %Y"),
            Some('x') => out.push_str("%m/%d/%y"),
            Some('X') => out.push_str("%H:%M:%S"),
            Some('r') => out.push_str("%I:%M:%S %p"),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

fn query_failed(e: jaq_core::Exn<'_, Val>) -> ExtractError {
    let detail = match e.get_err() {
        // jaq's message embeds whole values: write at most what is kept. `error("text")`
        // displays as a JSON string; its message is the text.
        Ok(err) => {
            let shown = natives::capped_display(&err, MAX_MESSAGE_CHARS);
            match serde_json::from_str::<String>(&shown) {
                Ok(text) => text,
                Err(_) => shown,
            }
        }
        Err(exn) => match exn.get_halt() {
            Ok(code) => format!("halt({code}) stops the query; it is not supported here"),
            Err(_) => "the query ended abnormally".to_owned(),
        },
    };
    ExtractError::QueryFailed { detail: truncate(detail) }
}

fn key_value(name: &str, value: &Val) -> Result<String, ExtractError> {
    let invalid = |found: String| ExtractError::InvalidKeyValue { key: name.to_owned(), found };
    Ok(match value {
        Val::TStr(b) | Val::BStr(b) => String::from_utf8_lossy(b).into_owned(),
        Val::Bool(b) => b.to_string(),
        Val::Null => return Err(ExtractError::MissingKey { key: name.to_owned() }),
        Val::Num(n) => number_text(n).ok_or_else(|| invalid(format!("the number {n}")))?,
        Val::Arr(_) | Val::Obj(_) => return Err(invalid(describe(value))),
    })
}

/// A number as partition-key text: integers as digits, integral floats (up to 2^53) as
/// integers like jq 1.6 prints them, other finite floats in shortest round-trip form.
/// `None` for NaN and infinities.
fn number_text(n: &Num) -> Option<String> {
    let f = match n {
        Num::Int(i) => return Some(i.to_string()),
        Num::BigInt(i) => return Some(i.to_string()),
        Num::Float(f) => *f,
        Num::Dec(s) => s.parse::<f64>().ok()?,
    };
    if !f.is_finite() {
        return None;
    }
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if f.fract() == 0.0 && f.abs() <= EXACT {
        // Exact: |f| <= 2^53 and integral, so the cast loses nothing.
        return Some(format!("{}", f as i64));
    }
    Some(format!("{}", Num::Float(f)))
}

/// "an array", "the string \"x\"", ... for error messages.
fn describe(v: &Val) -> String {
    match v {
        Val::Null => "null".into(),
        Val::Bool(b) => format!("the boolean {b}"),
        Val::Num(n) => format!("the number {n}"),
        Val::TStr(_) | Val::BStr(_) => {
            format!("the string {}", natives::render(v, MAX_MESSAGE_CHARS))
        }
        Val::Arr(_) => format!("an array ({})", natives::render(v, MAX_MESSAGE_CHARS)),
        Val::Obj(_) => format!("an object ({})", natives::render(v, MAX_MESSAGE_CHARS)),
    }
}

fn truncate(mut s: String) -> String {
    if let Some((cut, _)) = s.char_indices().nth(MAX_MESSAGE_CHARS) {
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// Character offset of `part` in `whole`, if `part` is a slice of `whole`.
fn offset_in(whole: &str, part: &str) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (start + part.len() <= whole.len()).then(|| whole[..start].chars().count())
}

fn near(query: &str, part: &str) -> String {
    let snippet: String = part.chars().take(20).collect();
    match offset_in(query, part) {
        Some(at) if snippet.is_empty() => format!("at character {at} (end of query)"),
        Some(at) => format!("at character {at}, near `{snippet}`"),
        None => format!("near `{snippet}`"),
    }
}

fn load_errors(query: &str, errs: jaq_core::load::Errors<&str, ()>) -> String {
    use jaq_core::load::Error;
    let mut msgs = Vec::new();
    for (_file, err) in errs {
        match err {
            Error::Io(items) => {
                for (path, msg) in items {
                    msgs.push(format!("cannot load module `{path}`: {msg}"));
                }
            }
            Error::Lex(items) => {
                for (expect, part) in items {
                    msgs.push(format!(
                        "syntax error: expected {} {}",
                        expect.as_str(),
                        near(query, part)
                    ));
                }
            }
            Error::Parse(items) => {
                for (expect, part) in items {
                    msgs.push(format!(
                        "syntax error: expected {} {}",
                        expect.as_str(),
                        near(query, part)
                    ));
                }
            }
        }
    }
    if msgs.is_empty() {
        msgs.push("the query does not parse".into());
    }
    format!("invalid jq query: {}", msgs.join("; "))
}

fn compile_errors(errs: jaq_core::compile::Errors<&str, ()>) -> String {
    use jaq_core::compile::Undefined;
    let mut msgs = Vec::new();
    for (_file, items) in errs {
        for (name, undefined) in items {
            msgs.push(match undefined {
                Undefined::Filter(arity) => format!("undefined function `{name}/{arity}`"),
                other => format!("undefined {} `{name}`", other.as_str()),
            });
        }
    }
    if msgs.is_empty() {
        msgs.push("the query does not compile".into());
    }
    format!("invalid jq query: {}", msgs.join("; "))
}

#[cfg(test)]
mod tests;
