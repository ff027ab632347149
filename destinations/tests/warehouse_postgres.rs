//! The PostgreSQL loader against a real PostgreSQL (`FH_TEST_DATABASE_URL`, e.g. from
//! `source /tmp/hyd-svc-dev/env`). Without it the tests skip with a message, unless
//! `HYDRANT_REQUIRE_SERVICES=1`, which turns a missing database into a failure.
//!
//! Every test works in tables of its own (random names) and with load ids of its own, so the
//! tests run in parallel and next to other users of the same database.

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use hydrant_destinations::warehouse::{
    CopyCommand, CredentialsClause, LoadRequest, PostgresLoader, RedshiftLoadRequest,
    RedshiftLoader, WarehouseSettings, MAX_BAD_ROWS,
};
use hydrant_destinations::{deliver_with_retry, Destination, Outcome, Rejected};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

fn database_url() -> Option<String> {
    match std::env::var("FH_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("HYDRANT_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("FH_TEST_DATABASE_URL is not set and HYDRANT_REQUIRE_SERVICES=1")
        }
        _ => {
            eprintln!(
                "skipping: FH_TEST_DATABASE_URL is not set (start PostgreSQL with \
                 scripts/services.sh and source its env file)"
            );
            None
        }
    }
}

macro_rules! database_url_or_skip {
    () => {
        match database_url() {
            Some(url) => url,
            None => return,
        }
    };
}

async fn admin(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{:016x}", rand::random::<u64>())
}

fn settings(url: &str, table: &str, columns: Option<&str>, options: &str) -> WarehouseSettings {
    WarehouseSettings::from_firehose(
        url,
        &CopyCommand {
            data_table_name: table.into(),
            data_table_columns: columns.map(Into::into),
            copy_options: Some(options.into()),
        },
        "",
        "",
        Some(0),
    )
    .expect("valid settings")
}

fn loader(url: &str, table: &str, columns: Option<&str>, options: &str) -> PostgresLoader {
    PostgresLoader::new(settings(url, table, columns, options)).unwrap()
}

fn request(load_id: &str, body: impl Into<Bytes>, gzip: bool) -> LoadRequest {
    LoadRequest {
        load_id: load_id.into(),
        object_url: format!("s3://staging/{load_id}"),
        body: body.into(),
        gzip,
    }
}

/// The rows of `sql`, every value as text (`None` for NULL).
async fn rows(client: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    client
        .simple_query(sql)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(String::from)).collect())
            }
            _ => None,
        })
        .collect()
}

fn row(values: &[Option<&str>]) -> Vec<Option<String>> {
    values.iter().map(|v| v.map(String::from)).collect()
}

fn delivered(outcome: Outcome<LoadRequest>) -> Vec<Rejected> {
    match outcome {
        Outcome::Delivered { rejected } => rejected,
        Outcome::RetryPartial { .. } => {
            panic!("the PostgreSQL loader never asks for a partial retry")
        }
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[tokio::test]
async fn json_records_load_into_columns_by_key_ignoring_case_with_missing_keys_null() {
    let url = database_url_or_skip!();
    let db = admin(&url).await;
    let table = unique("wh_json");
    db.batch_execute(&format!(
        "CREATE TABLE {table} (id int, name text, tags jsonb, ts timestamptz, note text)"
    ))
    .await
    .unwrap();
    let body = concat!(
        r#"{"ID":1,"Name":"a\tb","tags":["x",{"y":2}],"ts":"2026-01-02T03:04:05Z","note":""}"#,
        "\n",
        r#"{"id":2,"ts":"2026-01-02 04:05:06+00","unknown":true}{"id":3,"name":null}"#,
        "\n"
    );
    let dest = loader(&url, &table, None, "JSON 'auto' TIMEFORMAT 'auto'");
    let rejected = delivered(dest.deliver(&request(&unique("load"), body, false)).await.unwrap());
    assert_eq!(rejected, []);
    let got = rows(
        &db,
        &format!(
            "SELECT id, name, tags::text, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), \
             note FROM {table} ORDER BY id"
        ),
    )
    .await;
    assert_eq!(
        got,
        [
            row(&[
                Some("1"),
                Some("a\tb"),
                Some(r#"["x", {"y": 2}]"#),
                Some("2026-01-02 03:04:05"),
                Some("")
            ]),
            row(&[Some("2"), None, None, Some("2026-01-02 04:05:06"), None]),
            row(&[Some("3"), None, None, None, None]),
        ]
    );
    db.batch_execute(&format!("DROP TABLE {table}")).await.unwrap();
}

#[tokio::test]
async fn csv_with_delimiter_header_lines_and_null_as_loads_every_data_line() {
    let url = database_url_or_skip!();
    let db = admin(&url).await;
    let table = unique("wh_csv");
    db.batch_execute(&format!("CREATE TABLE {table} (id int, city text, temp numeric)"))
        .await
        .unwrap();
    let body = "exported by sensor-7\nid;city;temp\n1;\"Saint-Denis; Réunion\";21.5\r\n2;NULL;\n\n3;\"\";-4\n";
    let dest = loader(&url, &table, None, "CSV DELIMITER ';' IGNOREHEADER 2 NULL AS 'NULL'");
    let rejected = delivered(dest.deliver(&request(&unique("load"), body, false)).await.unwrap());
    assert_eq!(rejected, []);
    let got = rows(&db, &format!("SELECT id, city, temp FROM {table} ORDER BY id")).await;
    assert_eq!(
        got,
        [
            row(&[Some("1"), Some("Saint-Denis; Réunion"), Some("21.5")]),
            row(&[Some("2"), None, None]),
            row(&[Some("3"), Some(""), Some("-4")]),
        ]
    );
    db.batch_execute(&format!("DROP TABLE {table}")).await.unwrap();
}

#[tokio::test]
async fn a_gzip_body_is_decompressed_before_loading() {
    let url = database_url_or_skip!();
    let db = admin(&url).await;
    let table = unique("wh_gzip");
    db.batch_execute(&format!("CREATE TABLE {table} (a text, b int)")).await.unwrap();
    let body = gzip(b"x|1\ny|2\n  |\n");
    let dest = loader(&url, &table, None, "GZIP BLANKSASNULL");
    let rejected = delivered(dest.deliver(&request(&unique("load"), body, true)).await.unwrap());
    assert_eq!(rejected, []);
    let got = rows(&db, &format!("SELECT a, b FROM {table} ORDER BY b NULLS LAST")).await;
    assert_eq!(
        got,
        [row(&[Some("x"), Some("1")]), row(&[Some("y"), Some("2")]), row(&[None, None])]
    );
    db.batch_execute(&format!("DROP TABLE {table}")).await.unwrap();
}

#[tokio::test]
async fn a_column_subset_fills_only_the_listed_columns_and_the_rest_take_defaults() {
    let url = database_url_or_skip!();
    let db = admin(&url).await;
    let table = unique("wh_cols");
    db.batch_execute(&format!(
        "CREATE TABLE {table} (a int, b text, c text DEFAULT 'dflt', loaded timestamptz DEFAULT now())"
    ))
    .await
    .unwrap();
    let dest = loader(&url, &table, Some("B, a"), "DELIMITER ','");
    let rejected =
        delivered(dest.deliver(&request(&unique("load"), "one,1\ntwo,2\n", false)).await.unwrap());
    assert_eq!(rejected, []);
    let got =
        rows(&db, &format!("SELECT a, b, c, loaded IS NOT NULL FROM {table} ORDER BY a")).await;
    assert_eq!(
        got,
        [
            row(&[Some("1"), Some("one"), Some("dflt"), Some("t")]),
            row(&[Some("2"), Some("two"), Some("dflt"), Some("t")])
        ]
    );
    db.batch_execute(&format!("DROP TABLE {table}")).await.unwrap();
}

#[tokio::test]
async fn bad_rows_are_rejected_with_their_record_index_and_the_others_load() {
    let url = database_url_or_skip!();
    let db = admin(&url).await;
    let table = unique("wh_bad");
    db.batch_execute(&format!("CREATE TABLE {table} (id int PRIMARY KEY, n int CHECK (n >= 0))"))
        .await
        .unwrap();
    let body = [
        r#"{"id":1,"n":10}"#,    // 0
        r#"{"id":2,"n":"ten"}"#, // 1: not an integer (22P02)
        r#"{"id":3,"n":30}"#,    // 2
        r#"{"id":1,"n":11}"#,    // 3: duplicate key (23505), found after row 4's error
        r#"{"id":4,"n":-1}"#,    // 4: check constraint (23514)
        r#"{"id":5,"n":"#,       // 5: not JSON: refused before the database sees it
        r#"{"id":6,"n":60}"#,    // 6
    ]
    .join("\n");
    let dest = loader(&url, &table, None, "JSON 'auto'");
    let rejected = delivered(dest.deliver(&request(&unique("load"), body, false)).await.unwrap());
    let indexes: Vec<_> = rejected.iter().map(|r| r.index).collect();
    assert_eq!(indexes, [1, 3, 4, 5]);
    assert!(rejected.iter().all(|r| r.code == "Redshift.DataLoadFailed"));
    assert!(
        rejected[0].message.contains("invalid input syntax for type integer"),
        "{:?}",
        rejected[0]
    );
    assert!(rejected[0].message.contains("22P02"), "{:?}", rejected[0]);
    assert!(rejected[1].message.contains("duplicate key"), "{:?}", rejected[1]);
    assert!(rejected[2].message.contains("check constraint"), "{:?}", rejected[2]);
    assert!(rejected[3].message.contains("not valid JSON"), "{:?}", rejected[3]);
    let got = rows(&db, &format!("SELECT id, n FROM {table} ORDER BY id")).await;
    assert_eq!(
        got,
        [
            row(&[Some("1"), Some("10")]),
            row(&[Some("3"), Some("30")]),
            row(&[Some("6"), Some("60")])
        ]
    );
    db.batch_execute(&format!("DROP TABLE {table}")).await.unwrap();
}

#[tokio::test]
async fn the_same_load_id_delivered_twice_loads_once_and_reports_the_same_rejections() {
    let url = database_url_or_skip!();
    let db = admin(&url).await;
    let table = unique("wh_once");
    db.batch_execute(&format!("CREATE TABLE {table} (n int)")).await.unwrap();
    let req = request(&unique("load"), "1\nnope\n3\n", false);
    let first = delivered(loader(&url, &table, None, "").deliver(&req).await.unwrap());
    // A second loader, as after a restart that lost the first answer.
    let second = delivered(loader(&url, &table, None, "").deliver(&req).await.unwrap());
    assert_eq!(first.iter().map(|r| r.index).collect::<Vec<_>>(), [1]);
    assert_eq!(first, second);
    assert_eq!(rows(&db, &format!("SELECT count(*) FROM {table}")).await, [row(&[Some("2")])]);
    let checkpoint = rows(
        &db,
        &format!(
            "SELECT object_url, rows, jsonb_array_length(rejected::jsonb) FROM hydrant_load_checkpoints \
             WHERE load_id = '{}'",
            req.load_id
        ),
    )
    .await;
    assert_eq!(checkpoint, [row(&[Some(req.object_url.as_str()), Some("2"), Some("1")])]);
    db.batch_execute(&format!("DROP TABLE {table}")).await.unwrap();
}

#[tokio::test]
async fn concurrent_deliveries_of_one_batch_load_it_once() {
    let url = database_url_or_skip!();
    let db = admin(&url).await;
    let table = unique("wh_race");
    db.batch_execute(&format!("CREATE TABLE {table} (n int)")).await.unwrap();
    let body: String = (0..5000).map(|i| format!("{i}\n")).collect();
    let req = Arc::new(request(&unique("load"), body, false));
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let dest = loader(&url, &table, None, "");
            let req = Arc::clone(&req);
            tokio::spawn(async move { dest.deliver(&req).await.map(delivered) })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), []);
    }
    assert_eq!(rows(&db, &format!("SELECT count(*) FROM {table}")).await, [row(&[Some("5000")])]);
    db.batch_execute(&format!("DROP TABLE {table}")).await.unwrap();
}

#[tokio::test]
async fn a_missing_table_is_a_transient_error_naming_the_table_until_it_is_created() {
    let url = database_url_or_skip!();
    let db = admin(&url).await;
    let table = unique("wh_missing");
    let dest = loader(&url, &table, None, "");
    let req = request(&unique("load"), "1\n", false);
    let err = dest.deliver(&req).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(err.code, "Redshift.TableNotFound");
    assert!(err.message.contains(&format!("table {table} does not exist")), "{err}");
    // With RetryOptions.DurationInSeconds 0 the retry driver gives up after one attempt.
    let gave_up = deliver_with_retry(&dest, req.clone(), |_, _, _| {}).await.unwrap_err();
    assert_eq!(gave_up.attempts, 1);
    assert_eq!(gave_up.error.code, "Redshift.TableNotFound");
    // An operator creates the table: the same batch now loads.
    db.batch_execute(&format!("CREATE TABLE {table} (n int)")).await.unwrap();
    assert_eq!(delivered(dest.deliver(&req).await.unwrap()), []);
    assert_eq!(rows(&db, &format!("SELECT n FROM {table}")).await, [row(&[Some("1")])]);
    db.batch_execute(&format!("DROP TABLE {table}")).await.unwrap();
}

#[tokio::test]
async fn a_listed_column_the_table_lacks_is_a_transient_error_naming_it() {
    let url = database_url_or_skip!();
    let db = admin(&url).await;
    let table = unique("wh_nocol");
    db.batch_execute(&format!("CREATE TABLE {table} (a int)")).await.unwrap();
    let dest = loader(&url, &table, Some("a,zzz"), "");
    let err = dest.deliver(&request(&unique("load"), "1|2\n", false)).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(err.code, "Redshift.ColumnNotFound");
    assert!(err.message.contains("column zzz"), "{err}");
    db.batch_execute(&format!("DROP TABLE {table}")).await.unwrap();
}

#[tokio::test]
async fn more_bad_rows_than_the_cap_roll_the_whole_batch_back_for_a_retry() {
    let url = database_url_or_skip!();
    let db = admin(&url).await;
    let table = unique("wh_cap");
    db.batch_execute(&format!("CREATE TABLE {table} (n int)")).await.unwrap();
    let body: String = (0..MAX_BAD_ROWS + 5).map(|i| format!("{i}\nbad{i}\n")).collect();
    let req = request(&unique("load"), body, false);
    let err = loader(&url, &table, None, "").deliver(&req).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(err.code, "Redshift.DataLoadFailed");
    assert!(err.message.contains(&format!("more than {MAX_BAD_ROWS} rows")), "{err}");
    assert_eq!(rows(&db, &format!("SELECT count(*) FROM {table}")).await, [row(&[Some("0")])]);
    let checkpoint = rows(
        &db,
        &format!("SELECT 1 FROM hydrant_load_checkpoints WHERE load_id = '{}'", req.load_id),
    )
    .await;
    assert!(checkpoint.is_empty(), "a failed load leaves no checkpoint");
    db.batch_execute(&format!("DROP TABLE {table}")).await.unwrap();
}

#[tokio::test]
async fn an_unreachable_database_is_a_transient_connection_error() {
    // No database needed: a port nobody listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let closed = format!("postgres://postgres@127.0.0.1:{port}/hydrant");
    let dest = loader(&closed, "t", None, "");
    let err = dest.deliver(&request("never", "1\n", false)).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(err.code, "Redshift.ConnectionFailed");
    assert!(err.message.contains("refused"), "{err}");
}

#[tokio::test]
async fn a_broken_connection_is_reopened_for_the_next_delivery() {
    let url = database_url_or_skip!();
    let db = admin(&url).await;
    let table = unique("wh_reconnect");
    db.batch_execute(&format!("CREATE TABLE {table} (n int)")).await.unwrap();
    let app = unique("hydrant_test");
    let sep = if url.contains('?') { '&' } else { '?' };
    let dest = loader(&format!("{url}{sep}application_name={app}"), &table, None, "");
    delivered(dest.deliver(&request(&unique("load"), "1\n", false)).await.unwrap());
    let killed = rows(
        &db,
        &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{app}'"),
    )
    .await;
    assert_eq!(killed, [row(&[Some("t")])]);
    // The loader may only notice on its next use; that attempt fails as a retryable error
    // and the one after it reconnects.
    let req = request(&unique("load"), "2\n", false);
    let mut attempts = 0;
    loop {
        attempts += 1;
        match dest.deliver(&req).await {
            Ok(outcome) => break assert_eq!(delivered(outcome), []),
            Err(e) => {
                assert!(e.is_retryable(), "{e}");
                assert!(attempts < 2, "still failing after reconnecting: {e}");
            }
        }
    }
    assert_eq!(
        rows(&db, &format!("SELECT n FROM {table} ORDER BY n")).await,
        [row(&[Some("1")]), row(&[Some("2")])]
    );
    db.batch_execute(&format!("DROP TABLE {table}")).await.unwrap();
}

/// PostgreSQL stands in for Redshift on the wire: the checkpoint protocol and the manifest are
/// real, the COPY itself is Redshift-only syntax that PostgreSQL refuses.
#[tokio::test]
async fn the_redshift_loader_writes_its_manifest_and_skips_a_batch_already_loaded() {
    let url = database_url_or_skip!();
    let db = admin(&url).await;
    let root = tempfile::tempdir().unwrap();
    let store =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(root.path()).unwrap());
    let redshift_url =
        url.replacen("postgres://", "jdbc:redshift://", 1).replacen("postgres@", "", 1);
    let settings = WarehouseSettings::from_firehose(
        &redshift_url,
        &CopyCommand {
            data_table_name: "clicks".into(),
            data_table_columns: None,
            copy_options: Some("JSON 'auto'".into()),
        },
        "postgres",
        "",
        Some(0),
    )
    .unwrap();
    let role = CredentialsClause::iam_role("arn:aws:iam::123456789012:role/r").unwrap();
    let dest = RedshiftLoader::new(settings, role, store, "staging");
    let load_id = unique("rs");
    let req = RedshiftLoadRequest {
        load_id: load_id.clone(),
        object_urls: vec!["s3://staging/clicks/o1".into()],
        manifest_key: format!("manifests/{load_id}"),
    };

    // Not loaded yet: the COPY runs, PostgreSQL refuses Redshift's syntax, nothing is recorded.
    let err = dest.deliver(&req).await.unwrap_err();
    assert_eq!(err.code, "Redshift.SyntaxError", "{err}");
    assert!(!err.is_retryable());
    let manifest = std::fs::read_to_string(root.path().join("manifests").join(&load_id)).unwrap();
    assert_eq!(manifest, r#"{"entries":[{"url":"s3://staging/clicks/o1","mandatory":true}]}"#);
    let query = format!("SELECT 1 FROM hydrant_load_checkpoints WHERE load_id = '{load_id}'");
    assert!(rows(&db, &query).await.is_empty());

    // Loaded by an earlier attempt: nothing runs, the batch counts as delivered.
    db.batch_execute(&format!(
        "INSERT INTO hydrant_load_checkpoints (load_id, object_url, loaded_at, rows, rejected) \
         VALUES ('{load_id}', 's3://staging/manifests/{load_id}', now(), 1, '[]')"
    ))
    .await
    .unwrap();
    match dest.deliver(&req).await.unwrap() {
        Outcome::Delivered { rejected } => assert_eq!(rejected, []),
        Outcome::RetryPartial { .. } => panic!("no partial retries for Redshift"),
    }
}
