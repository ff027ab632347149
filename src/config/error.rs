//! Errors of loading a configuration.

use std::fmt;
use std::path::PathBuf;

/// Why a configuration could not be loaded. Every variant's message names the place in the
/// file (path of the field, or line and column) and what to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Io {
        /// The file that was being read.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// The text is not valid YAML.
    #[error("{}", yaml_message(message, *line, *column, hint.as_deref()))]
    Yaml {
        /// The parser's description of the problem.
        message: String,
        /// 1-based line of the problem, when the parser knows it.
        line: Option<usize>,
        /// 1-based column of the problem, when the parser knows it.
        column: Option<usize>,
        /// How to fix a mistake we recognise (an unquoted `${NAME}` inside `{ }` or `[ ]`).
        hint: Option<String>,
    },

    /// A `${NAME}` reference could not be expanded.
    #[error("{path}: {reason}")]
    Env {
        /// The variable name as written between `${` and `}`.
        var: String,
        /// Path of the field whose value holds the reference, e.g.
        /// `object_stores.minio.secret_access_key`.
        path: String,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// The file parsed but its content is wrong: unknown keys, wrong types, values out of
    /// range, broken cross-field rules. Holds every problem found (type errors stop at the
    /// first one, semantic checks report all of them).
    #[error("{}", issues_message(.0))]
    Invalid(Vec<Issue>),
}

impl ConfigError {
    /// The individual problems of an [`ConfigError::Invalid`] error (empty for the others).
    pub fn issues(&self) -> &[Issue] {
        match self {
            ConfigError::Invalid(issues) => issues,
            _ => &[],
        }
    }
}

/// One problem in a configuration: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Path of the offending field, e.g.
    /// `delivery_streams[1].ExtendedS3DestinationConfiguration.BufferingHints.SizeInMBs`.
    pub path: String,
    /// What is wrong, the value given, and how to fix it.
    pub message: String,
}

impl Issue {
    /// An issue at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Issue { path: path.into(), message: message.into() }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

fn yaml_message(
    message: &str,
    line: Option<usize>,
    column: Option<usize>,
    hint: Option<&str>,
) -> String {
    let text = match (line, column) {
        (Some(line), Some(column)) if !message.contains(" at line ") => {
            format!("invalid YAML at line {line} column {column}: {message}")
        }
        _ => format!("invalid YAML: {message}"),
    };
    match hint {
        Some(hint) => format!("{text}; {hint}"),
        None => text,
    }
}

/// The fix for a YAML mistake that is easy to make (the README once made it): a `${NAME}`
/// reference written without quotes inside a flow collection
/// (`minio: { access_key_id: ${MINIO_ROOT_USER} }`). There `{` is an indicator, so the plain value ends at `$` and the parser stops just after
/// the reference starts. References are expanded after parsing (so that a secret cannot change
/// the file's structure, see `env.rs`), which is why the text must be valid YAML as written.
///
/// Returns a hint when the parser stopped in a flow mapping or sequence and the text of the
/// failing line up to the failing column holds an unquoted `${`.
pub(super) fn flow_reference_hint(
    yaml: &str,
    message: &str,
    line: Option<usize>,
    column: Option<usize>,
) -> Option<String> {
    if !message.contains("while parsing a flow") {
        return None;
    }
    let text = yaml.lines().nth(line?.checked_sub(1)?)?;
    let end = text.char_indices().nth(column?).map_or(text.len(), |(i, _)| i);
    let start = text[..end].rfind("${")?;
    if text[..start].ends_with(['"', '\'']) {
        return None;
    }
    let reference = match text[start..].find('}') {
        Some(close) => &text[start..=start + close],
        None => "${NAME}",
    };
    let collection = if message.contains("flow sequence") { "[ ]" } else { "{ }" };
    Some(format!(
        "line {}: {reference} inside {collection} must be quoted, because YAML ends an unquoted \
         value at `{{` there: write \"{reference}\"",
        line?
    ))
}

fn issues_message(issues: &[Issue]) -> String {
    issues.iter().map(Issue::to_string).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use std::env::VarError;
    use std::path::Path;

    use super::*;
    use crate::config::parse_with_env;

    fn parse(yaml: &str) -> Result<crate::config::Config, ConfigError> {
        parse_with_env(yaml, Path::new("/etc/hydrant"), |name| match name {
            "MINIO_ROOT_USER" | "MINIO_ROOT_PASSWORD" => Ok(format!("{name} value: with #, {{ }}")),
            _ => Err(VarError::NotPresent),
        })
    }

    // The README's example before it was fixed.
    const UNQUOTED: &str = "object_stores:
  minio: { type: s3, endpoint: http://127.0.0.1:9000, access_key_id: ${MINIO_ROOT_USER},
           secret_access_key: ${MINIO_ROOT_PASSWORD}, allow_http: true }
";

    #[test]
    fn an_unquoted_reference_inside_braces_is_a_yaml_error_that_says_to_quote_it() {
        let err = parse(UNQUOTED).unwrap_err();
        let ConfigError::Yaml { line: Some(2), hint: Some(hint), .. } = &err else {
            panic!("unexpected {err:?}");
        };
        assert_eq!(
            hint,
            "line 2: ${MINIO_ROOT_USER} inside { } must be quoted, because YAML ends an unquoted \
             value at `{` there: write \"${MINIO_ROOT_USER}\""
        );
        assert!(err.to_string().ends_with(&format!("; {hint}")), "{err}");

        // What the hint says to write loads, and the values stay what the variables hold.
        let quoted = UNQUOTED
            .replace("${MINIO_ROOT_USER}", "\"${MINIO_ROOT_USER}\"")
            .replace("${MINIO_ROOT_PASSWORD}", "\"${MINIO_ROOT_PASSWORD}\"");
        let config = parse(&quoted).unwrap();
        let crate::config::ObjectStoreConfig::S3(crate::config::S3StoreConfig {
            access_key_id,
            ..
        }) = &config.object_stores["minio"]
        else {
            panic!("minio is not an s3 store");
        };
        assert_eq!(access_key_id.as_deref(), Some("MINIO_ROOT_USER value: with #, { }"));
    }

    #[test]
    fn an_unquoted_reference_inside_brackets_gets_the_same_hint() {
        let err = parse("api_streams: { object_stores: [default, ${STORE}] }\n").unwrap_err();
        let ConfigError::Yaml { hint: Some(hint), .. } = &err else { panic!("{err:?}") };
        assert!(hint.starts_with("line 1: ${STORE} inside [ ] must be quoted"), "{hint}");
    }

    #[test]
    fn other_yaml_errors_get_no_hint() {
        for yaml in [
            // A flow mapping broken by something else, with a quoted reference on the line.
            "object_stores: { minio: { type: s3, access_key_id: \"${MINIO_ROOT_USER}\" x: 1 } }\n",
            // Unclosed flow mapping.
            "delivery_streams: [\n  {a: b\n",
            // Not in a flow collection at all.
            "a: 1\na: 2\n",
        ] {
            let err = parse(yaml).unwrap_err();
            assert!(matches!(&err, ConfigError::Yaml { hint: None, .. }), "{yaml}: {err:?}");
        }
        // Block style needs no quotes: `{` may appear inside a plain value there.
        parse("object_stores:\n  minio:\n    type: s3\n    access_key_id: ${MINIO_ROOT_USER}\n    secret_access_key: ${MINIO_ROOT_PASSWORD}\n")
            .unwrap();
    }
}
