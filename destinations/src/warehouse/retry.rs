//! Which database failures are worth retrying, under which Firehose error code.
//!
//! Firehose retries every failed COPY until `RetryOptions.DurationInSeconds` runs out and then
//! skips the batch to an `errors/` manifest; Hydrant does the same, so nearly everything here
//! is transient: a missing table or column, a refused password or a full disk are all things an
//! operator can fix while the batch waits. Only errors that no fix outside Hydrant's
//! configuration can cure (a syntax error in the generated COPY) are permanent. Rows the
//! database refuses one at a time are not errors at all: the loader rejects them
//! (`service.rs`).

use std::time::Duration;

use tokio_postgres::error::SqlState;

use crate::{DestinationError, RetryPolicy};

/// Firehose's code for a COPY that failed on the data (and for rejected rows).
pub const DATA_LOAD_FAILED: &str = "Redshift.DataLoadFailed";

/// Firehose's code for a database that cannot be reached or dropped the connection.
pub const CONNECTION_FAILED: &str = "Redshift.ConnectionFailed";

/// Backoff for warehouse loads: 1 s doubling to 60 s with ±20 % jitter, for
/// `RetryOptions.DurationInSeconds` in all.
pub(crate) fn retry_policy(duration: Duration) -> RetryPolicy {
    RetryPolicy {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(60),
        multiplier: 2.0,
        jitter: 0.2,
        max_duration: Some(duration),
        ..RetryPolicy::default()
    }
}

/// The line of the COPY data a data error (SQLSTATE class 22 or 23) points at, 1-based, from
/// the error's context (`COPY clicks, line 3, column id: "x"`). `None` for any other error.
pub(crate) fn copy_error_line(e: &tokio_postgres::Error) -> Option<usize> {
    let db = e.as_db_error()?;
    let code = db.code().code();
    if !(code.starts_with("22") || code.starts_with("23")) {
        return None;
    }
    let context = db.where_()?;
    let copy = context.find("COPY ")?;
    let rest = &context[copy..];
    let at = rest.find(", line ")? + ", line ".len();
    let digits: String = rest[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|n| *n > 0)
}

/// What the database said, with its SQLSTATE, detail and hint.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                s.push_str("; detail: ");
                s.push_str(detail);
            }
            if let Some(hint) = db.hint() {
                s.push_str("; hint: ");
                s.push_str(hint);
            }
            if let Some(context) = db.where_() {
                s.push_str("; context: ");
                s.push_str(context);
            }
            s
        }
        None => {
            // The Display of a connection error leaves out its cause ("error connecting to
            // server" rather than "Connection refused"): add the source chain.
            let mut s = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                s.push_str(": ");
                s.push_str(&cause.to_string());
                source = cause.source();
            }
            s
        }
    }
}

/// Maps a database or connection error to a Firehose-style code and a class. `table` is the
/// target table as configured, for messages that tell the operator what to fix.
pub fn classify(e: &tokio_postgres::Error, table: &str) -> DestinationError {
    let said = describe(e);
    let Some(db) = e.as_db_error() else {
        return DestinationError::transient(
            CONNECTION_FAILED,
            format!("cannot reach the database or lost the connection: {said}"),
        );
    };
    let code = db.code();
    let class = &code.code()[..2];
    let (code, message, transient) = if *code == SqlState::UNDEFINED_TABLE {
        (
            "Redshift.TableNotFound",
            format!(
                "table {table} does not exist in the target database; create it (Hydrant never \
                 creates the target table): {said}"
            ),
            true,
        )
    } else if *code == SqlState::UNDEFINED_COLUMN {
        (
            "Redshift.ColumnNotFound",
            format!(
                "a column of CopyCommand.DataTableColumns is missing from table {table}; add it \
                 or fix DataTableColumns: {said}"
            ),
            true,
        )
    } else if *code == SqlState::INVALID_CATALOG_NAME {
        (
            "Redshift.DatabaseNotFound",
            format!("the database in ClusterJDBCURL does not exist: {said}"),
            true,
        )
    } else if *code == SqlState::INVALID_PASSWORD
        || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
    {
        (
            "Redshift.AuthenticationFailed",
            format!("the database refused Username/Password: {said}"),
            true,
        )
    } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
        (
            "Redshift.InsufficientPrivilege",
            format!(
                "the load user lacks a privilege: grant INSERT on {table} (and CREATE on the \
                 schema for hydrant_load_checkpoints on first use): {said}"
            ),
            true,
        )
    } else if *code == SqlState::SYNTAX_ERROR {
        (
            "Redshift.SyntaxError",
            format!("the COPY statement is not valid SQL; check CopyCommand: {said}"),
            false,
        )
    } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
        ("Redshift.ReadOnlyCluster", format!("the database is read-only: {said}"), true)
    } else if *code == SqlState::DISK_FULL {
        ("Redshift.DiskFull", format!("the database is out of disk space: {said}"), true)
    } else if *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
    {
        (
            "Redshift.SerializationFailure",
            format!("the load conflicted with a concurrent transaction: {said}"),
            true,
        )
    } else if class == "08"
        || class == "53"
        || *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
    {
        (CONNECTION_FAILED, format!("the database is unavailable: {said}"), true)
    } else if said.contains("S3") && (said.contains("does not exist") || said.contains("not found"))
    {
        // Redshift reports S3 problems as internal errors; recognise them by their wording.
        (
            "Redshift.MissingS3File",
            format!("a staged object listed in the manifest is missing: {said}"),
            true,
        )
    } else if said.contains("S3") && said.contains("Access Denied") {
        (
            "Redshift.S3BucketAccessDenied",
            format!("the cluster cannot read the staged objects: {said}"),
            true,
        )
    } else {
        (DATA_LOAD_FAILED, format!("the load failed: {said}"), true)
    };
    if transient {
        DestinationError::transient(code, message)
    } else {
        DestinationError::permanent(code, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_policy_starts_at_a_second_caps_at_a_minute_and_ends_with_the_retry_duration() {
        let p = retry_policy(Duration::from_secs(3600));
        assert_eq!(p.initial, Duration::from_secs(1));
        assert_eq!(p.max, Duration::from_secs(60));
        assert_eq!(p.max_duration, Some(Duration::from_secs(3600)));
        assert!(p.jitter > 0.0);
        assert!(retry_policy(Duration::ZERO).backoff().next_wait().is_none());
    }
}
