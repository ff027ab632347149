//! The loaders: one connection each, a COPY and a checkpoint row per transaction.
//!
//! Exactly once: every load inserts its `load_id` into `hydrant_load_checkpoints` in the same
//! transaction as its COPY. A batch whose id is already there was loaded (perhaps by an attempt
//! whose answer was lost in a crash) and is not loaded again; its rejected rows were stored with
//! the checkpoint and are reported again, so they reach the error output whichever attempt
//! finished the load. On PostgreSQL the checkpoint row is inserted *first*
//! (`ON CONFLICT DO NOTHING`), which also makes a concurrent load of the same batch wait for
//! this one and then find it done.
//!
//! Connections are opened on the first delivery, reused, and reopened after they break. One
//! loader runs one load at a time (Firehose also runs one COPY after the other per stream).

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::SinkExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, MutexGuard};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage, Transaction};

use super::config::{Target, WarehouseSettings};
use super::copy_options::PgCopyOptions;
use super::manifest::{manifest_json, redshift_load_statements, CredentialsClause};
use super::request_builder::{
    copy_rows, decompress, postgres_copy_sql, resolve_columns, Column, LoadRequest,
};
use super::retry::{
    classify, copy_error_line, describe, retry_policy, CONNECTION_FAILED, DATA_LOAD_FAILED,
};
use crate::{Destination, DestinationError, Outcome, Rejected, RetryPolicy};

/// Rows one PostgreSQL load may reject. Each rejection costs one more COPY of the rest of the
/// batch, and a batch where many rows fail usually has a systematic problem (a column of the
/// wrong type): past this many, the whole load is rolled back and fails as a transient
/// `Redshift.DataLoadFailed`, so the batch is retried and, if nobody fixes the table within the
/// retry duration, skipped to an `errors/` manifest whole, as Firehose would.
pub const MAX_BAD_ROWS: usize = 100;

/// COPY data is sent in pieces of this size.
const SEND_CHUNK: usize = 256 * 1024;

const PG_CREATE_CHECKPOINTS: &str = "CREATE TABLE IF NOT EXISTS hydrant_load_checkpoints (\
     load_id text PRIMARY KEY, object_url text NOT NULL, \
     loaded_at timestamptz NOT NULL DEFAULT now(), rows bigint, \
     rejected jsonb NOT NULL DEFAULT '[]')";

/// Runs `CREATE TABLE IF NOT EXISTS` for the checkpoint table. `IF NOT EXISTS` is not safe
/// against a concurrent create (PostgreSQL checks, then inserts into its catalogs): the loser
/// of two loaders starting at once gets a duplicate table, type (42710) or catalog key error,
/// which means the table is there.
async fn create_checkpoints(client: &Client, sql: &str) -> Result<(), tokio_postgres::Error> {
    match client.batch_execute(sql).await {
        Err(e)
            if [
                SqlState::UNIQUE_VIOLATION,
                SqlState::DUPLICATE_TABLE,
                SqlState::DUPLICATE_OBJECT,
            ]
            .iter()
            .any(|code| e.code() == Some(code)) =>
        {
            Ok(())
        }
        other => other,
    }
}

struct Conn {
    client: Client,
    checkpoints_ready: bool,
}

/// A lazily opened connection that is reopened after it breaks.
struct Session {
    config: tokio_postgres::Config,
    /// The TLS connector (`None`: `sslmode=disable`), or why it cannot be made.
    tls: Option<Result<tokio_postgres_rustls::MakeRustlsConnect, String>>,
    table: String,
    conn: Mutex<Option<Conn>>,
}

impl Session {
    fn new(settings: &WarehouseSettings) -> Self {
        let tls = (settings.tls.mode != super::tls::TlsMode::Disable)
            .then(|| settings.tls.connector().map_err(|e| e.to_string()));
        Self {
            config: settings.connection.clone(),
            tls,
            table: settings.table.sql(),
            conn: Mutex::new(None),
        }
    }

    /// The connection, opened first if there is none or the last one broke. The guard keeps
    /// other loads of this loader waiting until this one is done.
    async fn connected(&self) -> Result<MutexGuard<'_, Option<Conn>>, DestinationError> {
        let mut guard = self.conn.lock().await;
        if guard.as_ref().is_some_and(|c| c.client.is_closed()) {
            *guard = None;
        }
        if guard.is_none() {
            let client = match &self.tls {
                None => {
                    let (client, connection) =
                        self.config.connect(NoTls).await.map_err(|e| classify(&e, &self.table))?;
                    tokio::spawn(watch(connection));
                    client
                }
                Some(Ok(tls)) => {
                    let (client, connection) = (self.config.connect(tls.clone()).await)
                        .map_err(|e| classify(&e, &self.table))?;
                    tokio::spawn(watch(connection));
                    client
                }
                Some(Err(message)) => {
                    return Err(DestinationError::transient(CONNECTION_FAILED, message.clone()))
                }
            };
            *guard = Some(Conn { client, checkpoints_ready: false });
        }
        Ok(guard)
    }
}

/// Runs a connection until it ends.
async fn watch<F, E>(connection: F)
where
    F: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    if let Err(e) = connection.await {
        tracing::warn!(error = %e, "warehouse connection ended");
    }
}

/// Forgets a connection that broke during a load, so the next load reconnects. A connection
/// error is enough: the client may report "connection closed" a moment before it knows.
fn forget_if_broken<T>(guard: &mut Option<Conn>, result: &Result<T, DestinationError>) {
    let failed = matches!(result, Err(e) if e.code == CONNECTION_FAILED);
    if failed || guard.as_ref().is_some_and(|c| c.client.is_closed()) {
        *guard = None;
    }
}

/// A rejected row as stored with its checkpoint.
#[derive(Serialize, Deserialize)]
struct StoredRejected {
    index: usize,
    code: String,
    message: String,
}

fn store_rejected(rejected: &[Rejected]) -> String {
    let stored: Vec<_> = rejected
        .iter()
        .map(|r| StoredRejected {
            index: r.index,
            code: r.code.clone(),
            message: r.message.clone(),
        })
        .collect();
    serde_json::to_string(&stored).expect("rejected rows always serialize")
}

fn load_rejected(json: &str) -> Vec<Rejected> {
    match serde_json::from_str::<Vec<StoredRejected>>(json) {
        Ok(stored) => stored
            .into_iter()
            .map(|r| Rejected { index: r.index, code: r.code, message: r.message })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "unreadable rejected rows in hydrant_load_checkpoints");
            Vec::new()
        }
    }
}

/// Loads staged objects into PostgreSQL with `COPY ... FROM STDIN` (see the module docs of
/// `request_builder.rs` for how records become rows).
pub struct PostgresLoader {
    settings: WarehouseSettings,
    options: PgCopyOptions,
    session: Session,
}

impl fmt::Debug for PostgresLoader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresLoader").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl PostgresLoader {
    /// A loader for a PostgreSQL target; it connects on its first delivery.
    pub fn new(settings: WarehouseSettings) -> Result<Self, DestinationError> {
        let Target::Postgres(options) = &settings.target else {
            return Err(DestinationError::permanent(
                "Redshift.InvalidConfiguration",
                "ClusterJDBCURL is a jdbc:redshift:// URL; use RedshiftLoader for Redshift",
            ));
        };
        let options = options.clone();
        let session = Session::new(&settings);
        Ok(Self { settings, options, session })
    }

    /// The columns of the target table, in table order (generated columns left out).
    async fn table_columns(&self, client: &Client) -> Result<Vec<Column>, DestinationError> {
        let rows = client
            .query(
                "SELECT a.attname::text, t.typcategory = 'S' \
                 FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
                 WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped \
                 AND a.attgenerated = '' ORDER BY a.attnum",
                &[&self.session.table],
            )
            .await
            .map_err(|e| classify(&e, &self.session.table))?;
        Ok(rows.iter().map(|r| Column { name: r.get(0), is_text: r.get(1) }).collect())
    }

    async fn load(
        &self,
        conn: &mut Conn,
        request: &LoadRequest,
    ) -> Result<Outcome<LoadRequest>, DestinationError> {
        let table = self.session.table.as_str();
        let err = |e: tokio_postgres::Error| classify(&e, table);
        if !conn.checkpoints_ready {
            create_checkpoints(&conn.client, PG_CREATE_CHECKPOINTS).await.map_err(err)?;
            conn.checkpoints_ready = true;
        }
        if let Some(rejected) =
            stored_checkpoint(&conn.client, &request.load_id).await.map_err(err)?
        {
            return Ok(Outcome::Delivered { rejected });
        }

        let body = decompress(&request.body, request.gzip)?;
        let columns = resolve_columns(
            self.settings.columns.as_deref(),
            self.table_columns(&conn.client).await?,
        )
        .map_err(|missing| {
            DestinationError::transient(
                "Redshift.ColumnNotFound",
                format!(
                    "column {missing} of CopyCommand.DataTableColumns does not exist in table \
                     {table}; add it or fix DataTableColumns"
                ),
            )
        })?;
        let rows = copy_rows(&body, &self.options, &columns);
        let sql = postgres_copy_sql(&self.settings.table, &columns);
        let mut rejected = rows.rejected.clone();

        let mut tx = conn.client.transaction().await.map_err(err)?;
        let claimed = tx
            .execute(
                "INSERT INTO hydrant_load_checkpoints (load_id, object_url, loaded_at, rejected) \
                 VALUES ($1, $2, now(), '[]') ON CONFLICT (load_id) DO NOTHING",
                &[&request.load_id, &request.object_url],
            )
            .await
            .map_err(err)?;
        if claimed == 0 {
            // A concurrent load of the same batch committed while we waited on its row.
            tx.rollback().await.map_err(err)?;
            let stored = stored_checkpoint(&conn.client, &request.load_id).await.map_err(err)?;
            return Ok(Outcome::Delivered { rejected: stored.unwrap_or_default() });
        }

        // Load the rows range by range; a data error names its line, that row is rejected,
        // and the rows on either side are tried again. The rows before the named line are not
        // known to be good: PostgreSQL checks unique indexes when it flushes a batch of rows,
        // after per-row checks of later lines.
        let mut loaded = 0u64;
        let mut refused_by_database = 0;
        let mut pending = VecDeque::new();
        pending.push_back(0..rows.len());
        while let Some(range) = pending.pop_front() {
            if range.is_empty() {
                continue;
            }
            let attempt = tx.savepoint("hydrant_copy").await.map_err(err)?;
            let e = match copy_data(&attempt, &sql, rows.slice(range.clone())).await {
                Ok(n) => {
                    attempt.commit().await.map_err(err)?;
                    loaded += n;
                    continue;
                }
                Err(e) => e,
            };
            let Some(line) = copy_error_line(&e) else { return Err(err(e)) };
            attempt.rollback().await.map_err(err)?;
            let bad = range.start + line - 1;
            if bad >= range.end {
                return Err(err(e));
            }
            refused_by_database += 1;
            if refused_by_database > MAX_BAD_ROWS {
                return Err(DestinationError::transient(
                    DATA_LOAD_FAILED,
                    format!(
                        "more than {MAX_BAD_ROWS} rows of the batch were rejected by table \
                         {table}, which looks like a table or CopyOptions problem; nothing was \
                         loaded (latest: record {}: {})",
                        rows.indexes[bad],
                        describe(&e)
                    ),
                ));
            }
            rejected.push(Rejected {
                index: rows.indexes[bad],
                code: DATA_LOAD_FAILED.into(),
                message: describe(&e),
            });
            pending.push_front(bad + 1..range.end);
            pending.push_front(range.start..bad);
        }
        rejected.sort_by_key(|r| r.index);

        let loaded = i64::try_from(loaded).unwrap_or(i64::MAX);
        tx.execute(
            "UPDATE hydrant_load_checkpoints SET rows = $2, rejected = $3::text::jsonb, \
             loaded_at = now() WHERE load_id = $1",
            &[&request.load_id, &loaded, &store_rejected(&rejected)],
        )
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(Outcome::Delivered { rejected })
    }
}

/// The rejected rows stored with `load_id`'s checkpoint, or `None` when it was never loaded.
async fn stored_checkpoint(
    client: &Client,
    load_id: &str,
) -> Result<Option<Vec<Rejected>>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT rejected::text FROM hydrant_load_checkpoints WHERE load_id = $1",
            &[&load_id],
        )
        .await?;
    Ok(row.map(|r| load_rejected(r.get(0))))
}

/// Streams `data` (COPY text rows) into `sql`; returns the number of rows loaded.
async fn copy_data(
    tx: &Transaction<'_>,
    sql: &str,
    data: Bytes,
) -> Result<u64, tokio_postgres::Error> {
    let sink = tx.copy_in::<_, Bytes>(sql).await?;
    let mut sink = std::pin::pin!(sink);
    let mut offset = 0;
    while offset < data.len() {
        let end = (offset + SEND_CHUNK).min(data.len());
        sink.send(data.slice(offset..end)).await?;
        offset = end;
    }
    sink.as_mut().finish().await
}

#[async_trait]
impl Destination for PostgresLoader {
    type Request = LoadRequest;

    fn kind(&self) -> &'static str {
        "warehouse"
    }

    fn retry_policy(&self) -> RetryPolicy {
        retry_policy(self.settings.retry_duration)
    }

    async fn deliver(
        &self,
        request: &LoadRequest,
    ) -> Result<Outcome<LoadRequest>, DestinationError> {
        let mut guard = self.session.connected().await?;
        let conn = guard.as_mut().expect("connected() leaves a connection");
        let result = self.load(conn, request).await;
        forget_if_broken(&mut guard, &result);
        result
    }
}

/// One Redshift load: the staged objects, listed in a manifest the loader writes first.
#[derive(Debug, Clone)]
pub struct RedshiftLoadRequest {
    /// Deterministic id of the batch (the manifest key is a good one).
    pub load_id: String,
    /// `s3://bucket/key` of every staged object of the batch.
    pub object_urls: Vec<String>,
    /// Key of the manifest in the loader's bucket, e.g. `<prefix>manifests/2026/01/02/03/<id>`.
    pub manifest_key: String,
}

/// Loads staged objects into Redshift: writes the manifest (the same bytes on every attempt)
/// through `object_store`, then runs `COPY ... MANIFEST` and the checkpoint insert in one
/// transaction (see [`redshift_load_statements`]). Redshift reports no per-row errors to a
/// COPY without `MAXERROR`, so a failed COPY fails the whole batch (retried, then skipped to
/// an `errors/` manifest), exactly as on Firehose.
pub struct RedshiftLoader {
    settings: WarehouseSettings,
    credentials: CredentialsClause,
    store: Arc<dyn ObjectStore>,
    bucket: String,
    session: Session,
}

impl fmt::Debug for RedshiftLoader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedshiftLoader")
            .field("settings", &self.settings)
            .field("credentials", &self.credentials)
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

impl RedshiftLoader {
    /// A loader whose manifests go to `bucket` in `store` (the intermediate bucket, e.g.
    /// [`crate::s3::S3Destination::store`]); the cluster reads them with `credentials`.
    pub fn new(
        settings: WarehouseSettings,
        credentials: CredentialsClause,
        store: Arc<dyn ObjectStore>,
        bucket: impl Into<String>,
    ) -> Self {
        let session = Session::new(&settings);
        Self { settings, credentials, store, bucket: bucket.into(), session }
    }

    /// `s3://<bucket>/<key>` of a manifest.
    pub fn manifest_url(&self, manifest_key: &str) -> String {
        format!("s3://{}/{}", self.bucket, manifest_key)
    }

    async fn put_manifest(&self, request: &RedshiftLoadRequest) -> Result<(), DestinationError> {
        let path = ObjectPath::parse(&request.manifest_key).map_err(|e| {
            DestinationError::permanent("S3.InvalidKey", format!("{}: {e}", request.manifest_key))
        })?;
        let body = Bytes::from(manifest_json(&request.object_urls));
        self.store
            .put_opts(&path, PutPayload::from_bytes(body), PutOptions::default())
            .await
            .map_err(|e| {
                DestinationError::transient(
                    "S3.ServiceException",
                    format!("cannot write the manifest {}: {e}", request.manifest_key),
                )
            })?;
        Ok(())
    }

    async fn load(
        &self,
        conn: &mut Conn,
        request: &RedshiftLoadRequest,
    ) -> Result<Outcome<RedshiftLoadRequest>, DestinationError> {
        let table = self.session.table.as_str();
        let err = |e: tokio_postgres::Error| classify(&e, table);
        let manifest_url = self.manifest_url(&request.manifest_key);
        let sql = redshift_load_statements(
            &self.settings,
            &request.load_id,
            &manifest_url,
            &self.credentials,
        );
        if !conn.checkpoints_ready {
            create_checkpoints(&conn.client, &sql.create_checkpoints).await.map_err(err)?;
            conn.checkpoints_ready = true;
        }
        conn.client.batch_execute(&sql.begin).await.map_err(err)?;
        let result = async {
            conn.client.batch_execute(&sql.lock).await?;
            let found = conn.client.simple_query(&sql.already_loaded).await?;
            if found.iter().any(|m| matches!(m, SimpleQueryMessage::Row(_))) {
                return Ok(None);
            }
            conn.client.batch_execute(&sql.copy).await?;
            let count = conn.client.simple_query(&sql.copy_count).await?;
            let rows = count
                .iter()
                .find_map(|m| match m {
                    SimpleQueryMessage::Row(r) => r.get(0).and_then(|v| v.parse::<i64>().ok()),
                    _ => None,
                })
                .unwrap_or(0);
            conn.client.batch_execute(&sql.insert_checkpoint(rows)).await?;
            conn.client.batch_execute(&sql.commit).await?;
            Ok(Some(rows))
        }
        .await;
        match result {
            Ok(Some(_)) => Ok(Outcome::delivered()),
            Ok(None) => {
                conn.client.batch_execute("ROLLBACK").await.map_err(err)?;
                Ok(Outcome::delivered())
            }
            Err(e) => {
                // Best effort: a broken connection rolls back by itself.
                let _ = conn.client.batch_execute("ROLLBACK").await;
                Err(err(e))
            }
        }
    }
}

#[async_trait]
impl Destination for RedshiftLoader {
    type Request = RedshiftLoadRequest;

    fn kind(&self) -> &'static str {
        "redshift"
    }

    fn retry_policy(&self) -> RetryPolicy {
        retry_policy(self.settings.retry_duration)
    }

    async fn deliver(
        &self,
        request: &RedshiftLoadRequest,
    ) -> Result<Outcome<RedshiftLoadRequest>, DestinationError> {
        self.put_manifest(request).await?;
        let mut guard = self.session.connected().await?;
        let conn = guard.as_mut().expect("connected() leaves a connection");
        let result = self.load(conn, request).await;
        forget_if_broken(&mut guard, &result);
        result
    }
}
