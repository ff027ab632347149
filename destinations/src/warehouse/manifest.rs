//! Redshift mode as pure functions: the manifest, the COPY statement, the statements around it,
//! and the `errors/` manifest of a batch skipped after its retry duration.
//!
//! Firehose's exact statement text and manifest key layout are not public (FIREHOSE.md §5.3):
//! the shapes here follow the documented general form
//! `COPY <table> [(<columns>)] FROM '<manifest>' CREDENTIALS '...' MANIFEST <CopyOptions>` and
//! the Redshift manifest format.

use std::fmt;

use serde::Serialize;

use super::config::{Target, WarehouseSettings};
use super::request_builder::{quote_literal, CHECKPOINT_TABLE};

#[derive(Serialize)]
struct Entry<'a> {
    url: &'a str,
    mandatory: bool,
}

#[derive(Serialize)]
struct Manifest<'a> {
    entries: Vec<Entry<'a>>,
}

fn entries(object_urls: &[String]) -> Vec<Entry<'_>> {
    object_urls.iter().map(|url| Entry { url, mandatory: true }).collect()
}

/// The Redshift manifest listing the staged objects:
/// `{"entries":[{"url":"s3://bucket/key","mandatory":true}]}`. `mandatory` makes the COPY fail
/// when an object is missing instead of silently loading less.
pub fn manifest_json(object_urls: &[String]) -> String {
    serde_json::to_string(&Manifest { entries: entries(object_urls) })
        .expect("a manifest always serializes")
}

/// How the cluster authenticates to S3 when it reads the manifest and the staged objects.
#[derive(Clone, PartialEq, Eq)]
pub enum CredentialsClause {
    /// `CREDENTIALS 'aws_iam_role=<RoleARN>'`: the cluster assumes the destination's
    /// `RoleARN` (the role must be associated with the cluster). What Firehose uses.
    IamRole(String),
    /// `CREDENTIALS 'aws_access_key_id=...;aws_secret_access_key=...[;token=...]'`: static or
    /// temporary keys, e.g. from `${AWS_ACCESS_KEY_ID}` in Hydrant's configuration.
    AccessKeys { access_key_id: String, secret_access_key: String, session_token: Option<String> },
}

impl CredentialsClause {
    /// `CREDENTIALS 'aws_iam_role=<arn>'`, after checking the ARN names an IAM role.
    pub fn iam_role(role_arn: &str) -> Result<Self, String> {
        let ok = role_arn.starts_with("arn:aws")
            && role_arn.contains(":iam::")
            && role_arn.contains(":role/");
        if !ok || role_arn.contains('\'') || role_arn.contains(';') {
            return Err(format!(
                "RoleARN {role_arn:?} is not an IAM role ARN; write arn:aws:iam::<account>:role/<name>"
            ));
        }
        Ok(Self::IamRole(role_arn.into()))
    }

    /// Access keys, checked for characters that would break the clause.
    pub fn access_keys(
        access_key_id: &str,
        secret_access_key: &str,
        session_token: Option<&str>,
    ) -> Result<Self, String> {
        let values = [Some(access_key_id), Some(secret_access_key), session_token];
        if access_key_id.is_empty() || secret_access_key.is_empty() {
            return Err("both an access key id and a secret access key are needed".into());
        }
        if values.iter().flatten().any(|v| v.contains('\'') || v.contains(';')) {
            return Err("access keys cannot contain ' or ;".into());
        }
        Ok(Self::AccessKeys {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: session_token.map(Into::into),
        })
    }

    /// The clause as it appears in the COPY statement. It holds secrets: never log it.
    pub fn sql(&self) -> String {
        match self {
            Self::IamRole(arn) => format!("CREDENTIALS 'aws_iam_role={arn}'"),
            Self::AccessKeys { access_key_id, secret_access_key, session_token } => {
                let mut s = format!(
                    "CREDENTIALS 'aws_access_key_id={access_key_id};aws_secret_access_key={secret_access_key}"
                );
                if let Some(token) = session_token {
                    s.push_str(";token=");
                    s.push_str(token);
                }
                s.push('\'');
                s
            }
        }
    }
}

impl fmt::Debug for CredentialsClause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IamRole(arn) => f.debug_tuple("IamRole").field(arn).finish(),
            Self::AccessKeys { access_key_id, .. } => f
                .debug_struct("AccessKeys")
                .field("access_key_id", access_key_id)
                .finish_non_exhaustive(),
        }
    }
}

/// `COPY <table> [(<columns>)] FROM '<manifest_url>' <credentials> MANIFEST [<CopyOptions>]`,
/// with `CopyOptions` verbatim (empty for a PostgreSQL target).
pub fn redshift_copy_sql(
    settings: &WarehouseSettings,
    manifest_url: &str,
    credentials: &CredentialsClause,
) -> String {
    let mut sql = format!("COPY {}", settings.table.sql());
    if let Some(columns) = &settings.columns {
        let list: Vec<_> = columns.iter().map(|c| c.sql.as_str()).collect();
        sql.push_str(&format!(" ({})", list.join(", ")));
    }
    sql.push_str(&format!(" FROM {} {} MANIFEST", quote_literal(manifest_url), credentials.sql()));
    if let Target::Redshift { copy_options } = &settings.target {
        if !copy_options.is_empty() {
            sql.push(' ');
            sql.push_str(copy_options);
        }
    }
    sql
}

/// The statements one Redshift load runs, in order, over the simple-query protocol (values are
/// inlined as literals: Redshift and the poolers in front of it handle that best).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedshiftStatements {
    /// Run once per connection, outside the load's transaction.
    pub create_checkpoints: String,
    /// `BEGIN`, then `LOCK` the checkpoint table: concurrent loaders of the same batch wait
    /// here (Redshift enforces no primary key, so the lock is what keeps a load unique).
    pub begin: String,
    pub lock: String,
    /// Returns a row when the batch is already loaded: then `ROLLBACK` and stop.
    pub already_loaded: String,
    pub copy: String,
    /// Rows loaded by the COPY just run, for the checkpoint.
    pub copy_count: String,
    /// Template of the checkpoint insert; see [`RedshiftStatements::insert_checkpoint`].
    insert_prefix: String,
    pub commit: String,
}

impl RedshiftStatements {
    /// Records the load with the number of rows the COPY loaded.
    pub fn insert_checkpoint(&self, rows: i64) -> String {
        format!("{}{rows}, '[]')", self.insert_prefix)
    }
}

/// The statements of one Redshift load of `manifest_url` under `load_id`.
pub fn redshift_load_statements(
    settings: &WarehouseSettings,
    load_id: &str,
    manifest_url: &str,
    credentials: &CredentialsClause,
) -> RedshiftStatements {
    RedshiftStatements {
        create_checkpoints: format!(
            "CREATE TABLE IF NOT EXISTS {CHECKPOINT_TABLE} (load_id VARCHAR(1024) NOT NULL PRIMARY \
             KEY, object_url VARCHAR(4096) NOT NULL, loaded_at TIMESTAMPTZ NOT NULL, rows BIGINT, \
             rejected VARCHAR(65535) NOT NULL)"
        ),
        begin: "BEGIN".into(),
        lock: format!("LOCK {CHECKPOINT_TABLE}"),
        already_loaded: format!(
            "SELECT 1 FROM {CHECKPOINT_TABLE} WHERE load_id = {}",
            quote_literal(load_id)
        ),
        copy: redshift_copy_sql(settings, manifest_url, credentials),
        copy_count: "SELECT pg_last_copy_count()".into(),
        insert_prefix: format!(
            "INSERT INTO {CHECKPOINT_TABLE} (load_id, object_url, loaded_at, rows, rejected) \
             VALUES ({}, {}, GETDATE(), ",
            quote_literal(load_id),
            quote_literal(manifest_url)
        ),
        commit: "COMMIT".into(),
    }
}

/// A batch given up after `RetryOptions.DurationInSeconds`, for the `errors/` manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedLoad {
    pub load_id: String,
    /// The staged objects that were not loaded.
    pub object_urls: Vec<String>,
    /// The last error's code (`Redshift.TableNotFound`, ...) and message.
    pub error_code: String,
    pub error_message: String,
    pub attempts_made: u32,
    /// Epoch milliseconds of the first and of the last attempt.
    pub first_attempt_timestamp: u64,
    pub attempt_ending_timestamp: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FailureManifest<'a> {
    entries: Vec<Entry<'a>>,
    load_id: &'a str,
    error_code: &'a str,
    error_message: &'a str,
    attempts_made: u32,
    first_attempt_timestamp: u64,
    attempt_ending_timestamp: u64,
}

/// The JSON document written under the intermediate bucket's `errors/` prefix for a skipped
/// batch: a Redshift manifest of its staged objects (so `COPY ... MANIFEST` can backfill from
/// it as is; COPY reads only `entries`) plus why it was skipped, in the camelCase field names
/// of Firehose's error documents (FIREHOSE.md §3.4).
pub fn failure_manifest_json(failed: &FailedLoad) -> String {
    serde_json::to_string(&FailureManifest {
        entries: entries(&failed.object_urls),
        load_id: &failed.load_id,
        error_code: &failed.error_code,
        error_message: &failed.error_message,
        attempts_made: failed.attempts_made,
        first_attempt_timestamp: failed.first_attempt_timestamp,
        attempt_ending_timestamp: failed.attempt_ending_timestamp,
    })
    .expect("a manifest always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warehouse::CopyCommand;

    fn redshift(columns: Option<&str>, options: Option<&str>) -> WarehouseSettings {
        WarehouseSettings::from_firehose(
            "jdbc:redshift://c.x.us-east-1.redshift.amazonaws.com:5439/dev",
            &CopyCommand {
                data_table_name: "public.clicks".into(),
                data_table_columns: columns.map(Into::into),
                copy_options: options.map(Into::into),
            },
            "firehose",
            "Secret123",
            None,
        )
        .unwrap()
    }

    fn role() -> CredentialsClause {
        CredentialsClause::iam_role("arn:aws:iam::123456789012:role/firehose-redshift").unwrap()
    }

    #[test]
    fn manifest_lists_every_object_as_mandatory() {
        assert_eq!(
            manifest_json(&[
                "s3://raw/clicks/2026/01/02/03/clicks-1-2026-01-02-03-04-05-abc".into()
            ]),
            r#"{"entries":[{"url":"s3://raw/clicks/2026/01/02/03/clicks-1-2026-01-02-03-04-05-abc","mandatory":true}]}"#
        );
        assert_eq!(
            manifest_json(&["s3://b/a".into(), "s3://b/\"q\"".into()]),
            r#"{"entries":[{"url":"s3://b/a","mandatory":true},{"url":"s3://b/\"q\"","mandatory":true}]}"#
        );
    }

    #[test]
    fn redshift_copy_has_firehoses_shape_with_options_verbatim() {
        let sql = redshift_copy_sql(
            &redshift(None, Some("JSON 'auto' GZIP")),
            "s3://raw/manifests/m1",
            &role(),
        );
        assert_eq!(
            sql,
            "COPY public.clicks FROM 's3://raw/manifests/m1' CREDENTIALS \
             'aws_iam_role=arn:aws:iam::123456789012:role/firehose-redshift' MANIFEST JSON 'auto' GZIP"
        );
    }

    #[test]
    fn redshift_copy_lists_columns_and_ends_at_manifest_without_options() {
        let sql =
            redshift_copy_sql(&redshift(Some("id,\"Name\", ts"), None), "s3://b/it's", &role());
        assert_eq!(
            sql,
            "COPY public.clicks (id, \"Name\", ts) FROM 's3://b/it''s' CREDENTIALS \
             'aws_iam_role=arn:aws:iam::123456789012:role/firehose-redshift' MANIFEST"
        );
    }

    #[test]
    fn access_key_credentials_include_the_session_token_when_given() {
        let keys = CredentialsClause::access_keys("AKIAEXAMPLE", "s3cr3t", None).unwrap();
        assert_eq!(
            keys.sql(),
            "CREDENTIALS 'aws_access_key_id=AKIAEXAMPLE;aws_secret_access_key=s3cr3t'"
        );
        let keys = CredentialsClause::access_keys("ASIA", "s", Some("tok")).unwrap();
        assert_eq!(
            keys.sql(),
            "CREDENTIALS 'aws_access_key_id=ASIA;aws_secret_access_key=s;token=tok'"
        );
        assert!(!format!("{keys:?}").contains("tok"));
        assert!(CredentialsClause::access_keys("a", "b'c", None).is_err());
        assert!(CredentialsClause::access_keys("", "b", None).is_err());
        assert!(CredentialsClause::iam_role("arn:aws:s3:::bucket")
            .unwrap_err()
            .contains("not an IAM role ARN"));
    }

    #[test]
    fn redshift_load_runs_lock_check_copy_count_insert_commit() {
        let s = redshift_load_statements(
            &redshift(None, Some("GZIP")),
            "clicks-1-o'k",
            "s3://b/m",
            &role(),
        );
        assert_eq!(s.lock, "LOCK hydrant_load_checkpoints");
        assert_eq!(
            s.already_loaded,
            "SELECT 1 FROM hydrant_load_checkpoints WHERE load_id = 'clicks-1-o''k'"
        );
        assert!(s.copy.starts_with("COPY public.clicks FROM 's3://b/m' CREDENTIALS"));
        assert!(s.copy.ends_with(" MANIFEST GZIP"));
        assert_eq!(s.copy_count, "SELECT pg_last_copy_count()");
        assert_eq!(
            s.insert_checkpoint(42),
            "INSERT INTO hydrant_load_checkpoints (load_id, object_url, loaded_at, rows, rejected) \
             VALUES ('clicks-1-o''k', 's3://b/m', GETDATE(), 42, '[]')"
        );
        assert!(s
            .create_checkpoints
            .starts_with("CREATE TABLE IF NOT EXISTS hydrant_load_checkpoints ("));
    }

    #[test]
    fn failure_manifest_is_a_loadable_manifest_plus_the_reason() {
        let json = failure_manifest_json(&FailedLoad {
            load_id: "clicks-1".into(),
            object_urls: vec!["s3://raw/clicks/o1".into()],
            error_code: "Redshift.TableNotFound".into(),
            error_message: "table clicks does not exist".into(),
            attempts_made: 7,
            first_attempt_timestamp: 1_700_000_000_000,
            attempt_ending_timestamp: 1_700_003_600_000,
        });
        assert_eq!(
            json,
            r#"{"entries":[{"url":"s3://raw/clicks/o1","mandatory":true}],"loadId":"clicks-1","errorCode":"Redshift.TableNotFound","errorMessage":"table clicks does not exist","attemptsMade":7,"firstAttemptTimestamp":1700000000000,"attemptEndingTimestamp":1700003600000}"#
        );
    }
}
