//! The server's settings: account id, `storage:`, byte sizes, `object_stores:`, `auth:`
//! (SigV4 keys), `tls:`.

use super::*;

#[test]
fn the_account_id_must_be_twelve_digits() {
    assert_issue("account_id: \"1234\"\n", "account_id", &["\"1234\"", "exactly 12 digits"]);
    assert_issue("account_id: 12345678901a\n", "account_id", &["\"12345678901a\""]);
    assert_eq!(parse_ok("account_id: 123456789012\n").account_id, "123456789012");
    assert_eq!(parse_ok("account_id: \"000000000042\"\n").account_id, "000000000042");
}

#[test]
fn storage_settings_are_checked() {
    assert_issue(
        "storage: { segment_bytes: 100 }\n",
        "storage.segment_bytes",
        &["at least 4096 bytes, got 100"],
    );
    assert_issue(
        "storage: { fsync: { interval_ms: 0 } }\n",
        "storage.fsync.interval_ms",
        &["must be 1..=60000, got 0"],
    );
    assert_issue(
        "storage: { max_bytes: 1MiB, segment_bytes: 64MiB }\n",
        "storage.max_bytes",
        &["1048576 bytes is less than one log segment"],
    );
    let c = parse_ok(
        "storage: { fsync: { interval_ms: 50 }, max_bytes: \"512 MiB\", segment_bytes: 1MiB }\n",
    );
    assert_eq!(c.storage.fsync, FsyncSetting::Interval { interval_ms: 50 });
    assert_eq!(c.storage.max_bytes, Some(512 << 20));
    assert_eq!(c.storage.segment_bytes, 1 << 20);
}

#[test]
fn byte_sizes_accept_plain_numbers_and_units() {
    assert_eq!(parse_byte_size("4096"), Ok(4096));
    assert_eq!(parse_byte_size("4096B"), Ok(4096));
    assert_eq!(parse_byte_size("10GiB"), Ok(10 << 30));
    assert_eq!(parse_byte_size("512 MiB"), Ok(512 << 20));
    assert_eq!(parse_byte_size("64kib"), Ok(64 << 10));
    assert_eq!(parse_byte_size("1TiB"), Ok(1 << 40));
    assert_eq!(parse_byte_size("500MB"), Ok(500_000_000));
    assert_eq!(parse_byte_size("2GB"), Ok(2_000_000_000));
    assert!(parse_byte_size("").is_err());
    assert!(parse_byte_size("GiB").is_err());
    assert!(parse_byte_size("1.5GiB").is_err());
    assert!(parse_byte_size("-1").is_err());
    assert!(parse_byte_size("99999999999TiB").unwrap_err().contains("too large"));
}

#[test]
fn object_store_settings_are_checked() {
    assert_issue(
        "object_stores:\n  minio: { type: s3, endpoint: \"http://127.0.0.1:9000\" }\n",
        "object_stores.minio.endpoint",
        &["plain http", "allow_http: true"],
    );
    assert_issue(
        "object_stores:\n  minio: { type: s3, endpoint: \"127.0.0.1:9000\" }\n",
        "object_stores.minio.endpoint",
        &["\"127.0.0.1:9000\"", "http://"],
    );
    assert_issue(
        "object_stores:\n  minio: { type: s3, access_key_id: k }\n",
        "object_stores.minio.secret_access_key",
        &["is missing while access_key_id is set"],
    );
    assert_issue(
        "object_stores:\n  minio: { type: s3, access_key_id: \"\", secret_access_key: s }\n",
        "object_stores.minio.access_key_id",
        &["is empty"],
    );
    assert_issue(
        "object_stores:\n  l: { type: local, root: \"\" }\n",
        "object_stores.l.root",
        &["is empty"],
    );
    parse_ok("object_stores:\n  aws: { type: s3, region: eu-west-1 }\n  r2: { type: s3, endpoint: \"https://x.r2.example\", virtual_hosted_style: true }\n");
}

#[test]
fn sigv4_credentials_load_with_secrets_from_the_environment_and_optional_allow_lists() {
    let yaml = r#"
auth:
  mode: sigv4
  credentials:
    - { access_key_id: AKIAPRODUCER, secret_access_key: "${PRODUCER_SECRET}", streams: [clicks, orders] }
    - { access_key_id: AKIAADMIN, secret_access_key: "${ADMIN_SECRET}" }
"#;
    let env = env_map(&[("PRODUCER_SECRET", "p-secret"), ("ADMIN_SECRET", "a-secret")]);
    let c = parse_with_env(yaml, Path::new(BASE), env).unwrap();
    let AuthConfig::Sigv4 { credentials } = &c.auth else { panic!("{:?}", c.auth) };
    assert_eq!(credentials[0].secret_access_key.expose(), "p-secret");
    assert_eq!(credentials[0].streams, Some(vec!["clicks".to_owned(), "orders".to_owned()]));
    assert_eq!(credentials[1].streams, None);
    let debug = format!("{c:?}");
    assert!(!debug.contains("p-secret") && !debug.contains("a-secret"), "{debug}");
}

#[test]
fn bad_sigv4_credentials_are_reported_with_their_path() {
    let cred = |body: &str| format!("auth:\n  mode: sigv4\n  credentials:\n{body}");
    assert_issue("auth: { mode: sigv4 }\n", "auth.credentials", &["at least one access key"]);
    assert_issue(
        &cred("    - { access_key_id: \"AK/ID\", secret_access_key: s }\n"),
        "auth.credentials[0].access_key_id",
        &["cannot appear in a SigV4 Credential"],
    );
    assert_issue(
        &cred("    - { access_key_id: A, secret_access_key: s }\n    - { access_key_id: A, secret_access_key: t }\n"),
        "auth.credentials[1].access_key_id",
        &["already the access key of auth.credentials[0]"],
    );
    assert_issue(
        &cred("    - { access_key_id: A, secret_access_key: \"\" }\n"),
        "auth.credentials[0].secret_access_key",
        &["is empty"],
    );
    assert_issue(
        &cred("    - { access_key_id: A, secret_access_key: s, streams: [] }\n"),
        "auth.credentials[0].streams",
        &["remove `streams` to allow every stream"],
    );
    assert_issue(
        &cred("    - { access_key_id: A, secret_access_key: s, streams: [ok, \"bad name\"] }\n"),
        "auth.credentials[0].streams[1]",
        &["\"bad name\" is not a delivery stream name"],
    );
    assert_issue(
        &cred("    - { access_key_id: A, secret_access_key: s, stream: [x] }\n"),
        "auth.credentials[0].stream",
        &["unknown field `stream`"],
    );
}

#[test]
fn tls_paths_are_relative_to_the_config_file_and_their_files_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("certs")).unwrap();
    std::fs::write(
        dir.path().join("certs/server.pem"),
        include_str!("../../testdata/tls/cert.pem"),
    )
    .unwrap();
    std::fs::write(dir.path().join("certs/server.key"), include_str!("../../testdata/tls/key.pem"))
        .unwrap();
    let yaml = "tls: { cert: certs/server.pem, key: ./certs/server.key }\n";
    let c = parse_with_env(yaml, dir.path(), env_map(&[])).unwrap();
    let tls = c.tls.unwrap();
    assert_eq!(tls.cert, dir.path().join("certs/server.pem"));
    assert_eq!(tls.key, dir.path().join("certs/server.key"));

    let err = parse_with_env(
        "tls: { cert: certs/nope.pem, key: certs/server.key }\n",
        dir.path(),
        env_map(&[]),
    )
    .unwrap_err();
    assert_issue_in(&err, "tls.cert", "cannot read");
    let err = parse_with_env(
        "tls: { cert: certs/server.key, key: certs/server.key }\n",
        dir.path(),
        env_map(&[]),
    )
    .unwrap_err();
    assert_issue_in(&err, "tls.cert", "holds no certificate");
    let err = parse_with_env(
        "tls: { cert: certs/server.pem, key: certs/server.pem }\n",
        dir.path(),
        env_map(&[]),
    )
    .unwrap_err();
    assert_issue_in(&err, "tls.key", "holds no private key");
    assert_issue("tls: { cert: a.pem }\n", "tls", &["missing field `key`"]);
    assert_issue(
        "tls: { cert: a.pem, key: b.pem, ca: c.pem }\n",
        "tls.ca",
        &["unknown field `ca`"],
    );
}
