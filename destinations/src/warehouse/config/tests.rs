use tokio_postgres::config::Host;

use super::*;
use crate::warehouse::PgFormat;

fn copy(table: &str, columns: Option<&str>, options: Option<&str>) -> CopyCommand {
    CopyCommand {
        data_table_name: table.into(),
        data_table_columns: columns.map(Into::into),
        copy_options: options.map(Into::into),
    }
}

fn settings(url: &str) -> Result<WarehouseSettings, FieldErrors> {
    WarehouseSettings::from_firehose(url, &copy("t", None, None), "loader", "secret", None)
}

fn url_error(url: &str) -> String {
    let errors = settings(url).expect_err(url);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, "ClusterJDBCURL");
    errors[0].1.clone()
}

fn host(config: &tokio_postgres::Config) -> String {
    match &config.get_hosts()[0] {
        Host::Tcp(h) => h.clone(),
        other => format!("{other:?}"),
    }
}

#[test]
fn copy_command_parses_firehose_field_names_and_refuses_unknown_ones() {
    let c: CopyCommand = serde_json::from_str(
        r#"{"DataTableName":"clicks","DataTableColumns":"a,b","CopyOptions":"JSON 'auto'"}"#,
    )
    .unwrap();
    assert_eq!(c, copy("clicks", Some("a,b"), Some("JSON 'auto'")));
    let e = serde_json::from_str::<CopyCommand>(r#"{"DataTableName":"t","Bogus":1}"#);
    assert!(e.unwrap_err().to_string().contains("unknown field `Bogus`"));
    assert_eq!(serde_json::to_string(&copy("t", None, None)).unwrap(), r#"{"DataTableName":"t"}"#);
}

#[test]
fn jdbc_postgresql_url_gives_a_postgres_target() {
    let s = settings("jdbc:postgresql://db.example.com:6432/warehouse").unwrap();
    assert!(matches!(s.target, Target::Postgres(_)));
    assert_eq!(host(&s.connection), "db.example.com");
    assert_eq!(s.connection.get_ports(), [6432]);
    assert_eq!(s.connection.get_dbname(), Some("warehouse"));
    assert_eq!(s.connection.get_user(), Some("loader"));
    assert_eq!(s.connection.get_password(), Some(&b"secret"[..]));
    assert_eq!(s.retry_duration, Duration::from_secs(3600));
}

#[test]
fn jdbc_redshift_url_gives_a_redshift_target_on_port_5439_by_default() {
    let s = settings("jdbc:redshift://c.abc.us-east-1.redshift.amazonaws.com/dev").unwrap();
    assert_eq!(s.target, Target::Redshift { copy_options: String::new() });
    assert_eq!(s.connection.get_ports(), [5439]);
    assert_eq!(s.connection.get_dbname(), Some("dev"));
}

#[test]
fn postgres_urls_give_a_postgres_target_and_keep_their_user() {
    let s = WarehouseSettings::from_firehose(
        "postgres://postgres@127.0.0.1:55432/hydrant",
        &copy("t", None, None),
        "",
        "",
        Some(0),
    )
    .unwrap();
    assert_eq!(s.connection.get_user(), Some("postgres"));
    assert_eq!(s.connection.get_password(), None);
    assert_eq!(s.retry_duration, Duration::ZERO);
    assert!(settings("postgresql://h/db").is_ok());
    assert_eq!(host(&settings("jdbc:postgresql://[::1]:5432/db").unwrap().connection), "::1");
}

#[test]
fn bad_cluster_urls_are_reported_on_cluster_jdbc_url() {
    assert!(url_error("mysql://h/db").contains("unsupported URL scheme \"mysql:\""));
    assert!(url_error("jdbc:postgresql://h:99999/db").contains("port \"99999\""));
    assert!(url_error("jdbc:postgresql://h:5432").contains("names no database"));
    assert!(url_error("jdbc:postgresql://h:5432/").contains("names no database"));
    assert!(url_error("jdbc:postgresql://:5432/db").contains("names no host"));
    assert!(url_error("jdbc:redshift:iam://c/dev").contains("IAM authentication"));
    assert!(url_error("jdbc:postgresql://h/db?sslmode=verify_full").contains("verify-full"));
    assert!(url_error("jdbc:redshift://h/db?ssl=yes").contains("true or false"));
    assert!(url_error("postgres://h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")
        .contains("sslrootcert /nonexistent/ca.pem"));
    assert!(url_error("jdbc:postgresql://h/db?tcpKeepAlive=true").contains("\"tcpKeepAlive\""));
    assert!(url_error("jdbc:postgresql://u@h/db").contains("Username"));
}

#[test]
fn sslmode_and_sslrootcert_come_from_either_url_form() {
    use crate::warehouse::tls::TlsMode;
    use tokio_postgres::config::SslMode;
    let s = settings("jdbc:postgresql://h/db?sslmode=verify-ca&ApplicationName=x").unwrap();
    assert_eq!(s.tls.mode, TlsMode::VerifyCa);
    assert_eq!(s.connection.get_ssl_mode(), SslMode::Require);
    assert_eq!(s.connection.get_application_name(), Some("x"));
    let s = settings("postgres://u@h:5433/db?sslmode=require&application_name=y").unwrap();
    assert_eq!(s.tls.mode, TlsMode::Require);
    assert_eq!(s.connection.get_application_name(), Some("y"));
    assert_eq!(settings("jdbc:redshift://h/db?ssl=true").unwrap().tls.mode, TlsMode::VerifyFull);
    let s = settings("jdbc:postgresql://h/db").unwrap();
    assert_eq!((s.tls.mode, s.connection.get_ssl_mode()), (TlsMode::Disable, SslMode::Disable));
    let s = settings("postgres://h/db?sslmode=prefer").unwrap();
    assert_eq!(s.connection.get_ssl_mode(), SslMode::Prefer);
}

#[test]
fn url_errors_never_echo_a_password() {
    let e = url_error("postgres://u:hunter22@h/db?sslmode=nonsense");
    assert!(!e.contains("hunter22"), "{e}");
    let e = url_error("jdbc:postgresql://h/db?password=hunter22&bogus=1");
    assert!(!e.contains("hunter22"), "{e}");
}

#[test]
fn a_user_is_required_from_username_or_the_url() {
    let e = WarehouseSettings::from_firehose(
        "jdbc:postgresql://h/db",
        &copy("t", None, None),
        "",
        "",
        None,
    )
    .unwrap_err();
    assert_eq!(e[0].0, "Username");
    let s = WarehouseSettings::from_firehose(
        "jdbc:postgresql://h/db?user=u&password=p",
        &copy("t", None, None),
        "",
        "",
        None,
    )
    .unwrap();
    assert_eq!(s.connection.get_user(), Some("u"));
}

#[test]
fn table_and_column_names_fold_unquoted_identifiers() {
    let s = WarehouseSettings::from_firehose(
        "jdbc:postgresql://h/db",
        &copy("Analytics.\"Click\"\"s\"", Some(" Id, \"Name\" ,ts"), None),
        "u",
        "",
        None,
    )
    .unwrap();
    assert_eq!(s.table.sql(), "Analytics.\"Click\"\"s\"");
    assert_eq!(s.table.parts[0].name, "analytics");
    assert_eq!(s.table.parts[1].name, "Click\"s");
    let names: Vec<_> = s.columns.unwrap().into_iter().map(|c| (c.sql, c.name)).collect();
    assert_eq!(
        names,
        [
            ("Id".into(), "id".into()),
            ("\"Name\"".into(), "Name".into()),
            ("ts".into(), "ts".into())
        ]
    );
}

#[test]
fn every_bad_field_is_reported_with_its_firehose_name() {
    let e = WarehouseSettings::from_firehose(
        "jdbc:postgresql://h/db",
        &copy("t; drop table x", Some("a,,b"), Some("MAXERROR 5")),
        "u",
        "",
        Some(9000),
    )
    .unwrap_err();
    let fields: Vec<_> = e.iter().map(|(f, _)| *f).collect();
    assert_eq!(
        fields,
        [
            "CopyCommand.DataTableName",
            "CopyCommand.DataTableColumns",
            "RetryOptions.DurationInSeconds",
            "CopyCommand.CopyOptions"
        ]
    );
    assert!(e[0].1.contains("unexpected ';'"), "{}", e[0].1);
    assert!(e[1].1.contains("unexpected ','"), "{}", e[1].1);
    assert!(e[3].1.contains("MAXERROR is not supported"), "{}", e[3].1);
    let e = WarehouseSettings::from_firehose(
        "jdbc:postgresql://h/db",
        &copy("a.b.c", Some("x,X"), None),
        "u",
        "",
        None,
    )
    .unwrap_err();
    assert!(e[0].1.contains("at most schema.table"));
    assert!(e[1].1.contains("column x is listed twice"));
    let e = WarehouseSettings::from_firehose(
        "jdbc:postgresql://h/db",
        &copy("", None, None),
        "u",
        "",
        None,
    )
    .unwrap_err();
    assert!(e[0].1.contains("1 to 512 characters"));
}

#[test]
fn redshift_copy_options_pass_through_verbatim_and_postgres_ones_are_parsed() {
    let s = WarehouseSettings::from_firehose(
        "jdbc:redshift://h/dev",
        &copy("t", None, Some(" MAXERROR 5 json 's3://b/paths' ")),
        "u",
        "pw",
        None,
    )
    .unwrap();
    assert_eq!(
        s.target,
        Target::Redshift { copy_options: "MAXERROR 5 json 's3://b/paths'".into() }
    );
    let s = WarehouseSettings::from_firehose(
        "jdbc:postgresql://h/db",
        &copy("t", None, Some("CSV IGNOREHEADER 1")),
        "u",
        "pw",
        None,
    )
    .unwrap();
    let Target::Postgres(o) = s.target else { panic!() };
    assert_eq!(o.format, PgFormat::Csv { delimiter: b',', quote: b'"' });
    assert_eq!(o.ignore_header, 1);
}

#[test]
fn redshift_copy_options_that_could_end_the_copy_are_refused() {
    let settings = |options: &str| {
        WarehouseSettings::from_firehose(
            "jdbc:redshift://h/dev",
            &copy("t", None, Some(options)),
            "u",
            "pw",
            None,
        )
    };
    for options in [
        "JSON 'auto'; DROP TABLE users",
        "JSON 'auto' -- comment",
        "JSON 'auto' /* x */",
        r#"DELIMITER '|' "x""#,
        "CSV; GRANT ALL ON users TO PUBLIC;",
    ] {
        let e = settings(options).unwrap_err();
        assert!(e.iter().any(|(f, _)| *f == "CopyCommand.CopyOptions"), "{options}: {e:?}");
    }
    for options in ["JSON 'auto';", "CSV, IGNOREHEADER 1, ACCEPTINVCHARS AS '^'", "DELIMITER ''''"]
    {
        settings(options).unwrap_or_else(|e| panic!("{options}: {e:?}"));
    }
}

#[test]
fn gzip_in_copy_options_must_match_the_compression_format() {
    let s = WarehouseSettings::from_firehose(
        "jdbc:redshift://h/dev",
        &copy("t", None, Some("gzip json 'auto'")),
        "u",
        "",
        None,
    )
    .unwrap();
    assert!(s.check_compression(true).is_empty());
    assert!(s.check_compression(false)[0].1.contains("remove GZIP"));
    let s = settings("jdbc:postgresql://h/db").unwrap();
    assert!(s.check_compression(false).is_empty());
    assert!(s.check_compression(true)[0].1.contains("add GZIP"));
}

#[test]
fn settings_debug_output_hides_the_password() {
    let s = settings("jdbc:postgresql://h/db").unwrap();
    assert!(!format!("{s:?}").contains("secret"));
}
