//! Redshift `CopyOptions` for PostgreSQL targets.
//!
//! Redshift's COPY options are appended verbatim to a Redshift COPY; PostgreSQL's COPY speaks a
//! different dialect (no JSON, one header line at most, no blank-as-null, ...). Hydrant therefore
//! parses the common Redshift options itself ([`parse_pg_copy_options`]) and does the work they
//! ask for while it converts the staged object into PostgreSQL COPY rows
//! (`request_builder.rs`). Anything it does not understand is rejected at configuration time
//! with a message naming the option: a load must never silently mean something else than it
//! would on Redshift.

/// How the records of the staged object are laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgFormat {
    /// Redshift's default: fields separated by `delimiter` (`|` unless given). With `escape`
    /// (`ESCAPE`), a backslash makes the next character literal.
    Text { delimiter: u8, escape: bool },
    /// `CSV`: RFC 4180 fields separated by `delimiter` (`,` unless given), quoted by `quote`.
    Csv { delimiter: u8, quote: u8 },
    /// `JSON 'auto'`: one JSON object per record, keys matched to column names.
    JsonAuto,
}

/// The Redshift COPY options Hydrant understands for PostgreSQL targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgCopyOptions {
    pub format: PgFormat,
    /// `GZIP`: informational (the request says whether the object is compressed); checked
    /// against `S3Configuration.CompressionFormat` by [`super::WarehouseSettings::check_compression`].
    pub gzip: bool,
    /// `IGNOREHEADER n`: lines skipped at the start of every staged object.
    pub ignore_header: u64,
    /// `NULL AS 'x'`: an unquoted field equal to this is NULL (Redshift's default is `\N`).
    pub null_as: String,
    /// `BLANKSASNULL`: an unquoted field that is empty or only white space is NULL.
    pub blanks_as_null: bool,
    /// `EMPTYASNULL`: an unquoted empty field is NULL.
    pub empty_as_null: bool,
    /// `TIMEFORMAT 'auto'` / `DATEFORMAT 'auto'`: accepted; PostgreSQL's own input parsing
    /// already reads ISO 8601 and the other common forms.
    pub time_format_auto: bool,
    pub date_format_auto: bool,
}

impl Default for PgCopyOptions {
    fn default() -> Self {
        Self {
            format: PgFormat::Text { delimiter: b'|', escape: false },
            gzip: false,
            ignore_header: 0,
            null_as: "\\N".into(),
            blanks_as_null: false,
            empty_as_null: false,
            time_format_auto: false,
            date_format_auto: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A keyword or a number, as written.
    Word(String),
    /// A `'quoted'` string with `''` unescaped.
    Str(String),
    /// A trailing `;`.
    Semicolon,
}

fn tokenize(s: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        if c.is_whitespace() || c == ',' {
            // Redshift accepts commas between some options; they carry no meaning.
            chars.next();
        } else if c == ';' {
            chars.next();
            tokens.push(Token::Semicolon);
        } else if c == '\'' {
            chars.next();
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some((_, '\'')) if chars.peek().is_some_and(|&(_, n)| n == '\'') => {
                        chars.next();
                        value.push('\'');
                    }
                    Some((_, '\'')) => break,
                    Some((_, ch)) => value.push(ch),
                    None => {
                        return Err(format!(
                            "CopyOptions: the string starting at character {} is not closed; \
                             add the closing quote '",
                            i + 1
                        ))
                    }
                }
            }
            tokens.push(Token::Str(value));
        } else if c.is_alphanumeric() || c == '_' {
            let mut word = String::new();
            while let Some(&(_, ch)) = chars.peek() {
                if !(ch.is_alphanumeric() || ch == '_') {
                    break;
                }
                word.push(ch);
                chars.next();
            }
            tokens.push(Token::Word(word));
        } else {
            return Err(format!(
                "CopyOptions: unexpected character {c:?} at position {}; options are keywords \
                 and 'quoted' values",
                i + 1
            ));
        }
    }
    if let Some(at) = tokens.iter().position(|t| *t == Token::Semicolon) {
        if at + 1 != tokens.len() {
            return Err("CopyOptions: ';' is only allowed at the very end; remove it".into());
        }
        tokens.pop();
    }
    Ok(tokens)
}

/// Checks `CopyOptions` meant for Redshift, which are appended to the COPY verbatim: they must be
/// keywords, numbers and `'quoted'` values (with `''` inside), separated by white space or
/// commas, with at most a trailing `;`. Anything else (a `;` in the middle, `--` or `/*`
/// comments, double quotes, parentheses) could end the COPY and run another statement.
pub(crate) fn check_redshift_copy_options(options: &str) -> Result<(), String> {
    tokenize(options).map(|_| ())
}

/// Whether `options` contains `keyword` as a word outside quoted values (case-insensitive).
/// Used for Redshift targets, whose options are otherwise passed through untouched.
pub(crate) fn mentions_keyword(options: &str, keyword: &str) -> bool {
    tokenize(options).is_ok_and(|tokens| {
        tokens.iter().any(|t| matches!(t, Token::Word(w) if w.eq_ignore_ascii_case(keyword)))
    })
}

/// Options that only make sense on Redshift or that Hydrant cannot honour on PostgreSQL, with
/// a hint where there is something better to say than "remove it".
fn unsupported_hint(keyword: &str) -> &'static str {
    match keyword {
        "LZOP" | "BZIP2" | "ZSTD" => {
            "only GZIP is supported (Firehose stages Redshift objects as GZIP or UNCOMPRESSED); \
             remove it"
        }
        "MANIFEST" => "Hydrant loads the staged object itself; remove it",
        "REGION"
        | "CREDENTIALS"
        | "IAM_ROLE"
        | "ACCESS_KEY_ID"
        | "SECRET_ACCESS_KEY"
        | "SESSION_TOKEN"
        | "ENCRYPTED"
        | "MASTER_SYMMETRIC_KEY" => "PostgreSQL loads never read S3 themselves; remove it",
        "FORMAT" => "use JSON 'auto', CSV or the default delimited text; remove it",
        "AVRO" | "PARQUET" | "ORC" | "FIXEDWIDTH" | "SHAPEFILE" => {
            "use JSON 'auto', CSV or the default delimited text"
        }
        "MAXERROR" => {
            "Hydrant rejects bad rows one by one to the error output and loads the rest; remove it"
        }
        _ => "remove it",
    }
}

/// Parses Redshift `CopyOptions` for a PostgreSQL target. Keywords are case-insensitive.
/// Every problem is reported (one message each), each naming the option and what to do.
pub fn parse_pg_copy_options(options: &str) -> Result<PgCopyOptions, Vec<String>> {
    let tokens = tokenize(options).map_err(|e| vec![e])?;
    let mut out = PgCopyOptions::default();
    let mut errors = Vec::new();
    let mut format: Option<&'static str> = None;
    let mut delimiter: Option<u8> = None;
    let mut quote: Option<u8> = None;
    let mut escape = false;
    let mut null_as_given = false;
    let mut it = tokens.into_iter().peekable();

    // `KEYWORD [AS] 'value'` and `KEYWORD [AS] n`.
    fn value(
        it: &mut std::iter::Peekable<std::vec::IntoIter<Token>>,
        keyword: &str,
        what: &str,
    ) -> Result<Token, String> {
        if matches!(it.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case("AS")) {
            it.next();
        }
        it.next().ok_or_else(|| format!("CopyOptions: {keyword} needs {what}; add it"))
    }

    while let Some(token) = it.next() {
        let word = match token {
            Token::Word(w) => w.to_ascii_uppercase(),
            Token::Str(s) => {
                errors.push(format!(
                    "CopyOptions: unexpected value '{s}' that belongs to no option; remove it"
                ));
                continue;
            }
            Token::Semicolon => continue,
        };
        let mut set_format = |name: &'static str, errors: &mut Vec<String>| {
            if let Some(previous) = format.replace(name) {
                errors.push(format!(
                    "CopyOptions: {previous} and {name} both choose the data format; keep one"
                ));
            }
        };
        let mut word = word;
        if word == "FORMAT" {
            if matches!(it.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case("AS")) {
                it.next();
            }
            match it.next() {
                Some(Token::Word(w))
                    if w.eq_ignore_ascii_case("JSON") || w.eq_ignore_ascii_case("CSV") =>
                {
                    word = w.to_ascii_uppercase()
                }
                Some(Token::Word(w)) => {
                    let w = w.to_ascii_uppercase();
                    errors.push(format!(
                        "CopyOptions: FORMAT AS {w} is not supported for PostgreSQL targets; {}",
                        unsupported_hint(&w)
                    ));
                    continue;
                }
                _ => {
                    errors.push("CopyOptions: FORMAT needs JSON or CSV; add it".into());
                    continue;
                }
            }
        }
        match word.as_str() {
            "JSON" => {
                set_format("JSON", &mut errors);
                match it.next() {
                    Some(Token::Str(s))
                        if s.eq_ignore_ascii_case("auto")
                            || s.eq_ignore_ascii_case("auto ignorecase") =>
                    {
                        out.format = PgFormat::JsonAuto
                    }
                    Some(Token::Str(s)) => errors.push(format!(
                        "CopyOptions: JSON '{s}' is not supported for PostgreSQL targets (JSONPaths \
                         files are Redshift-only); use JSON 'auto'"
                    )),
                    _ => errors.push(
                        "CopyOptions: JSON needs 'auto' for PostgreSQL targets; write JSON 'auto'"
                            .into(),
                    ),
                }
            }
            "CSV" => {
                set_format("CSV", &mut errors);
                if matches!(it.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case("QUOTE")) {
                    it.next();
                    match value(&mut it, "QUOTE", "a 'character'") {
                        Ok(Token::Str(s)) => match single_char(&s) {
                            Ok(c) => quote = Some(c),
                            Err(e) => errors.push(format!("CopyOptions: QUOTE AS '{s}': {e}")),
                        },
                        Ok(_) => errors
                            .push("CopyOptions: QUOTE needs a 'character'; write QUOTE AS '\"'".into()),
                        Err(e) => errors.push(e),
                    }
                }
            }
            "QUOTE" => {
                errors.push("CopyOptions: QUOTE must follow CSV; write CSV QUOTE AS 'x'".into());
                let _ = value(&mut it, "QUOTE", "a 'character'");
            }
            "DELIMITER" => match value(&mut it, "DELIMITER", "a 'character'") {
                Ok(Token::Str(s)) => match single_char(&s) {
                    Ok(c) => delimiter = Some(c),
                    Err(e) => errors.push(format!("CopyOptions: DELIMITER '{s}': {e}")),
                },
                Ok(_) => errors
                    .push("CopyOptions: DELIMITER needs a 'character'; write DELIMITER '|'".into()),
                Err(e) => errors.push(e),
            },
            "GZIP" => out.gzip = true,
            "IGNOREHEADER" => match value(&mut it, "IGNOREHEADER", "a number of lines") {
                Ok(Token::Word(n)) => match n.parse::<u64>() {
                    Ok(n) => out.ignore_header = n,
                    Err(_) => errors.push(format!(
                        "CopyOptions: IGNOREHEADER {n}: expected a number of lines, e.g. IGNOREHEADER 1"
                    )),
                },
                Ok(_) => errors.push(
                    "CopyOptions: IGNOREHEADER needs a number of lines, e.g. IGNOREHEADER 1".into(),
                ),
                Err(e) => errors.push(e),
            },
            "NULL" => match value(&mut it, "NULL AS", "a 'string'") {
                Ok(Token::Str(s)) => {
                    null_as_given = true;
                    out.null_as = s;
                }
                Ok(_) => errors
                    .push("CopyOptions: NULL AS needs a 'string'; write NULL AS '\\N'".into()),
                Err(e) => errors.push(e),
            },
            "BLANKSASNULL" => out.blanks_as_null = true,
            "EMPTYASNULL" => out.empty_as_null = true,
            // Blank lines are always skipped (they hold no record).
            "IGNOREBLANKLINES" => {}
            "ESCAPE" => escape = true,
            "TIMEFORMAT" | "DATEFORMAT" => match value(&mut it, &word, "'auto'") {
                Ok(Token::Str(s)) if s.eq_ignore_ascii_case("auto") => {
                    if word == "TIMEFORMAT" {
                        out.time_format_auto = true
                    } else {
                        out.date_format_auto = true
                    }
                }
                Ok(Token::Str(s)) => errors.push(format!(
                    "CopyOptions: {word} '{s}' is not supported for PostgreSQL targets (PostgreSQL \
                     parses ISO 8601 and the other common forms itself); use {word} 'auto' or \
                     remove it"
                )),
                Ok(_) => errors.push(format!("CopyOptions: {word} needs 'auto'; write {word} 'auto'")),
                Err(e) => errors.push(e),
            },
            other => {
                errors.push(format!(
                    "CopyOptions: {other} is not supported for PostgreSQL targets; {}",
                    unsupported_hint(other)
                ));
                // Skip the option's own arguments so they do not produce errors of their own.
                while matches!(it.peek(), Some(Token::Str(_)))
                    || matches!(it.peek(), Some(Token::Word(w))
                        if w.eq_ignore_ascii_case("AS") || w.chars().all(|c| c.is_ascii_digit()))
                {
                    it.next();
                }
            }
        }
    }

    let json = format == Some("JSON");
    if json {
        for (given, name) in [
            (delimiter.is_some(), "DELIMITER"),
            (out.ignore_header > 0, "IGNOREHEADER"),
            (null_as_given, "NULL AS"),
            (escape, "ESCAPE"),
        ] {
            if given {
                errors.push(format!(
                    "CopyOptions: {name} cannot be combined with JSON 'auto'; remove it"
                ));
            }
        }
    }
    if format == Some("CSV") && escape {
        errors.push(
            "CopyOptions: ESCAPE cannot be combined with CSV (CSV quotes instead); remove it"
                .into(),
        );
    }
    out.format = match format {
        Some("JSON") => PgFormat::JsonAuto,
        Some("CSV") => {
            let delimiter = delimiter.unwrap_or(b',');
            let quote = quote.unwrap_or(b'"');
            if delimiter == quote {
                errors.push("CopyOptions: DELIMITER and QUOTE must differ; change one".into());
            }
            PgFormat::Csv { delimiter, quote }
        }
        _ => PgFormat::Text { delimiter: delimiter.unwrap_or(b'|'), escape },
    };
    if let PgFormat::Text { delimiter: b'\\', escape: true } = out.format {
        errors.push(
            "CopyOptions: DELIMITER '\\\\' cannot be combined with ESCAPE; change one".into(),
        );
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// A Redshift delimiter or quote: one ASCII character, written as itself, `\t`, or an octal
/// escape `\ddd`.
fn single_char(s: &str) -> Result<u8, &'static str> {
    let b = s.as_bytes();
    let c = match b {
        [c] => *c,
        [b'\\', b't'] => b'\t',
        [b'\\', b'\\'] => b'\\',
        [b'\\', d @ ..] if d.len() == 3 && d.iter().all(|d| (b'0'..=b'7').contains(d)) => {
            let v = d.iter().fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            u8::try_from(v).map_err(|_| "octal escapes go up to \\177")?
        }
        _ => return Err("expected one ASCII character, \\t, or an octal escape like \\001"),
    };
    if !c.is_ascii() {
        return Err("expected one ASCII character, \\t, or an octal escape like \\001");
    }
    if c == b'\n' || c == b'\r' || c == 0 {
        return Err("newline, carriage return and NUL separate records; pick another character");
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> PgCopyOptions {
        parse_pg_copy_options(s).unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    fn err(s: &str) -> String {
        parse_pg_copy_options(s).expect_err(s).join("\n")
    }

    #[test]
    fn empty_options_mean_pipe_delimited_text_with_backslash_n_nulls() {
        assert_eq!(ok(""), PgCopyOptions::default());
        assert_eq!(ok("  ").format, PgFormat::Text { delimiter: b'|', escape: false });
        assert_eq!(ok("").null_as, "\\N");
    }

    #[test]
    fn json_auto_is_accepted_in_every_spelling() {
        for s in [
            "JSON 'auto'",
            "json 'AUTO'",
            "FORMAT AS JSON 'auto'",
            "format json 'auto'",
            "JSON 'auto ignorecase'",
            "JSON 'auto';",
        ] {
            assert_eq!(ok(s).format, PgFormat::JsonAuto, "{s}");
        }
    }

    #[test]
    fn csv_takes_a_quote_and_defaults_to_comma() {
        assert_eq!(ok("CSV").format, PgFormat::Csv { delimiter: b',', quote: b'"' });
        assert_eq!(ok("csv quote as '%'").format, PgFormat::Csv { delimiter: b',', quote: b'%' });
        assert_eq!(ok("CSV QUOTE ''''").format, PgFormat::Csv { delimiter: b',', quote: b'\'' });
        assert_eq!(
            ok("FORMAT AS CSV DELIMITER ';'").format,
            PgFormat::Csv { delimiter: b';', quote: b'"' }
        );
    }

    #[test]
    fn delimiter_accepts_as_tab_and_octal() {
        assert_eq!(ok("DELIMITER ','").format, PgFormat::Text { delimiter: b',', escape: false });
        assert_eq!(
            ok("delimiter as '\\t'").format,
            PgFormat::Text { delimiter: b'\t', escape: false }
        );
        assert_eq!(ok("DELIMITER '\\001'").format, PgFormat::Text { delimiter: 1, escape: false });
        assert_eq!(
            ok("delimiter '|' escape").format,
            PgFormat::Text { delimiter: b'|', escape: true }
        );
    }

    #[test]
    fn the_remaining_accepted_options_set_their_fields() {
        let o = ok("gzip IGNOREHEADER 2 NULL AS 'nil' BLANKSASNULL EMPTYASNULL TIMEFORMAT 'auto' \
                    DATEFORMAT AS 'AUTO' IGNOREBLANKLINES");
        assert!(o.gzip && o.blanks_as_null && o.empty_as_null);
        assert!(o.time_format_auto && o.date_format_auto);
        assert_eq!(o.ignore_header, 2);
        assert_eq!(o.null_as, "nil");
        assert_eq!(ok("IGNOREHEADER AS 1").ignore_header, 1);
        assert_eq!(ok("NULL AS ''").null_as, "");
    }

    #[test]
    fn unsupported_options_are_rejected_by_name() {
        assert_eq!(
            err("MAXERROR 10"),
            "CopyOptions: MAXERROR is not supported for PostgreSQL targets; Hydrant rejects bad \
             rows one by one to the error output and loads the rest; remove it"
        );
        assert!(err("TRUNCATECOLUMNS").starts_with("CopyOptions: TRUNCATECOLUMNS is not supported"));
        assert!(err("lzop").contains("LZOP is not supported for PostgreSQL targets; only GZIP"));
        assert!(err("REGION 'eu-west-1'").contains("REGION is not supported"));
        assert!(err("FORMAT AS PARQUET").contains("FORMAT AS PARQUET is not supported"));
        assert!(err("fixedwidth 'a:3,b:4'").contains("FIXEDWIDTH is not supported"));
        assert!(err("JSON 's3://b/jsonpaths.json'")
            .contains("JSON 's3://b/jsonpaths.json' is not supported"));
        assert!(err("TIMEFORMAT 'epochsecs'").contains("TIMEFORMAT 'epochsecs' is not supported"));
        // The option's argument does not produce a second error.
        assert_eq!(parse_pg_copy_options("MAXERROR AS 10 GZIP").unwrap_err().len(), 1);
        // Every bad option is reported.
        assert_eq!(parse_pg_copy_options("ACCEPTINVCHARS TRIMBLANKS").unwrap_err().len(), 2);
    }

    #[test]
    fn contradictions_and_malformed_values_are_reported() {
        assert!(err("JSON 'auto' CSV").contains("JSON and CSV both choose the data format"));
        assert!(err("JSON 'auto' DELIMITER ','").contains("DELIMITER cannot be combined with JSON"));
        assert!(err("CSV ESCAPE").contains("ESCAPE cannot be combined with CSV"));
        assert!(err("CSV DELIMITER '\"'").contains("DELIMITER and QUOTE must differ"));
        assert!(err("DELIMITER 'ab'").contains("DELIMITER 'ab': expected one ASCII character"));
        assert!(err("DELIMITER '\\n'").contains("expected one ASCII character"));
        assert!(err("DELIMITER '\\012'").contains("newline"));
        assert!(err("IGNOREHEADER x").contains("IGNOREHEADER x: expected a number"));
        assert!(err("IGNOREHEADER").contains("IGNOREHEADER needs a number of lines"));
        assert!(err("NULL AS 'x").contains("not closed"));
        assert!(err("GZIP; CSV").contains("';' is only allowed at the very end"));
        assert!(err("QUOTE AS 'x'").contains("QUOTE must follow CSV"));
        assert!(err("JSON").contains("JSON needs 'auto'"));
        assert!(err("DELIMITER = ','").contains("unexpected character '='"));
    }

    #[test]
    fn keywords_are_found_outside_quoted_values_only() {
        assert!(mentions_keyword("delimiter '|' gzip", "GZIP"));
        assert!(!mentions_keyword("NULL AS 'gzip'", "GZIP"));
        assert!(!mentions_keyword("GZIPPED", "GZIP"));
    }
}
