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
    #[error("{}", yaml_message(message, *line, *column))]
    Yaml {
        /// The parser's description of the problem.
        message: String,
        /// 1-based line of the problem, when the parser knows it.
        line: Option<usize>,
        /// 1-based column of the problem, when the parser knows it.
        column: Option<usize>,
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

fn yaml_message(message: &str, line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) if !message.contains(" at line ") => {
            format!("invalid YAML at line {line} column {column}: {message}")
        }
        _ => format!("invalid YAML: {message}"),
    }
}

fn issues_message(issues: &[Issue]) -> String {
    issues.iter().map(Issue::to_string).collect::<Vec<_>>().join("\n")
}
