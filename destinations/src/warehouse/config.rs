//! Configuration: Firehose's `CopyCommand` block, the cluster URL, and the checked
//! [`WarehouseSettings`] both loaders run from.

use std::str::FromStr;
use std::time::Duration;

use super::tls::{TlsMode, TlsSettings};
use serde::{Deserialize, Serialize};

use super::copy_options::{
    check_redshift_copy_options, mentions_keyword, parse_pg_copy_options, PgCopyOptions,
};

/// Validation problems as `(Firehose field name, what is wrong and how to fix it)`, e.g.
/// `("CopyCommand.CopyOptions", "CopyOptions: MAXERROR is not supported ...")`. The caller
/// prefixes the path of the destination block.
pub type FieldErrors = Vec<(&'static str, String)>;

/// Firehose's `CopyCommand`: what table the staged objects are loaded into, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct CopyCommand {
    /// The target table, optionally schema-qualified (`analytics.clicks`). It must exist:
    /// Hydrant, like Firehose, never creates it. 1 to 512 characters.
    pub data_table_name: String,
    /// Comma-separated columns the records fill, in record order (for CSV and text) or by key
    /// (for `JSON 'auto'`). Leave out to use all the table's columns in table order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_table_columns: Option<String>,
    /// Redshift COPY options. Redshift targets get them verbatim; PostgreSQL targets accept the
    /// subset listed in `docs/destinations/warehouse.md` and reject anything else by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_options: Option<String>,
}

/// Which database the cluster URL points at, with the COPY options for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `jdbc:postgresql://`, `postgres://`, `postgresql://`: the staged object is streamed
    /// with `COPY ... FROM STDIN` (see [`super::PostgresLoader`]).
    Postgres(PgCopyOptions),
    /// `jdbc:redshift://`: Redshift reads the staged object from S3 through a manifest; the
    /// options are appended verbatim (see [`super::RedshiftLoader`]).
    Redshift { copy_options: String },
}

/// One SQL identifier: how it is written in SQL, and the name it denotes (unquoted
/// identifiers fold to lower case, as in PostgreSQL and Redshift).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub sql: String,
    pub name: String,
}

/// A table name, optionally schema-qualified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    pub parts: Vec<Ident>,
}

impl TableName {
    /// The name as written in SQL (`analytics.clicks`, `"Mixed"`).
    pub fn sql(&self) -> String {
        self.parts.iter().map(|p| p.sql.as_str()).collect::<Vec<_>>().join(".")
    }
}

/// Checked settings of one warehouse destination.
#[derive(Debug, Clone)]
pub struct WarehouseSettings {
    pub target: Target,
    /// Where to connect (the password is redacted from `Debug`).
    pub connection: tokio_postgres::Config,
    /// TLS: the URL's `sslmode` and `sslrootcert` ([`super::tls`]).
    pub tls: TlsSettings,
    pub table: TableName,
    /// `DataTableColumns`, when given.
    pub columns: Option<Vec<Ident>>,
    /// `RetryOptions.DurationInSeconds` (default 3600).
    pub retry_duration: Duration,
}

/// Firehose's default `RetryOptions.DurationInSeconds` for Redshift.
pub const DEFAULT_RETRY_SECONDS: u32 = 3600;

impl WarehouseSettings {
    /// Checks a `RedshiftDestinationConfiguration`'s fields: `cluster_jdbc_url`
    /// (`ClusterJDBCURL`), `copy_command`, `username`, `password` and
    /// `RetryOptions.DurationInSeconds` (`None`: 3600). Every problem is reported.
    ///
    /// `username` and `password` override a user and password given in the URL; an empty
    /// password is allowed (trust or peer authentication on a local PostgreSQL).
    pub fn from_firehose(
        cluster_jdbc_url: &str,
        copy_command: &CopyCommand,
        username: &str,
        password: &str,
        retry_duration_in_seconds: Option<u32>,
    ) -> Result<Self, FieldErrors> {
        let mut errors: FieldErrors = Vec::new();

        let parsed = parse_cluster_url(cluster_jdbc_url);
        if let Err(e) = &parsed {
            errors.push(("ClusterJDBCURL", e.clone()));
        }

        let table = check_table_name(&copy_command.data_table_name);
        if let Err(e) = &table {
            errors.push(("CopyCommand.DataTableName", e.clone()));
        }

        let columns = match copy_command.data_table_columns.as_deref() {
            None => Ok(None),
            Some(s) => check_columns(s).map(Some),
        };
        if let Err(e) = &columns {
            errors.push(("CopyCommand.DataTableColumns", e.clone()));
        }

        let options = copy_command.copy_options.as_deref().unwrap_or("").trim().to_owned();
        if options.len() > 10240 {
            errors.push((
                "CopyCommand.CopyOptions",
                format!("must be at most 10240 characters, got {}; shorten it", options.len()),
            ));
        }

        let retry_seconds = retry_duration_in_seconds.unwrap_or(DEFAULT_RETRY_SECONDS);
        if retry_seconds > 7200 {
            errors.push((
                "RetryOptions.DurationInSeconds",
                format!("must be 0..=7200 seconds, got {retry_seconds}; use 7200 at most"),
            ));
        }

        let mut target = None;
        let mut connection = None;
        let mut tls = TlsSettings::default();
        if let Ok((kind, mut config, tls_settings)) = parsed {
            // A root certificate file that cannot be read is told now, not at the first load.
            if tls_settings.mode != TlsMode::Disable {
                if let Err(e) = tls_settings.connector() {
                    errors.push(("ClusterJDBCURL", e.to_string()));
                }
            }
            tls = tls_settings;
            target = match kind {
                Kind::Postgres => match parse_pg_copy_options(&options) {
                    Ok(o) => Some(Target::Postgres(o)),
                    Err(messages) => {
                        errors.extend(messages.into_iter().map(|m| ("CopyCommand.CopyOptions", m)));
                        None
                    }
                },
                // Passed to Redshift verbatim, so only keywords and 'quoted' values (and a
                // trailing `;`): nothing that could end the COPY and start another statement.
                Kind::Redshift => match check_redshift_copy_options(&options) {
                    Ok(()) => Some(Target::Redshift { copy_options: options }),
                    Err(message) => {
                        errors.push(("CopyCommand.CopyOptions", message));
                        None
                    }
                },
            };
            if !username.is_empty() {
                config.user(username);
            } else if config.get_user().is_none() {
                errors.push((
                    "Username",
                    "required: the database user Hydrant loads as (it needs INSERT on the table, \
                     and CREATE for its checkpoint table on first use)"
                        .into(),
                ));
            }
            if !password.is_empty() {
                config.password(password);
            }
            connection = Some(config);
        }

        match (target, connection, table, columns) {
            (Some(target), Some(connection), Ok(table), Ok(columns)) if errors.is_empty() => {
                Ok(Self {
                    target,
                    connection,
                    tls,
                    table,
                    columns,
                    retry_duration: Duration::from_secs(u64::from(retry_seconds)),
                })
            }
            _ => Err(errors),
        }
    }

    /// Checks `CopyOptions` against the intermediate `S3Configuration.CompressionFormat`
    /// (`gzip`: `GZIP`, otherwise `UNCOMPRESSED`): Redshift needs `GZIP` exactly when the staged
    /// objects are compressed, and PostgreSQL targets are held to the same rule so that a
    /// configuration means the same on both.
    pub fn check_compression(&self, gzip: bool) -> FieldErrors {
        let says_gzip = match &self.target {
            Target::Postgres(o) => o.gzip,
            Target::Redshift { copy_options } => mentions_keyword(copy_options, "GZIP"),
        };
        match (gzip, says_gzip) {
            (true, false) => vec![(
                "CopyCommand.CopyOptions",
                "S3Configuration.CompressionFormat is GZIP but CopyOptions lacks GZIP; add GZIP \
                 (Redshift cannot read the staged objects otherwise)"
                    .into(),
            )],
            (false, true) => vec![(
                "CopyCommand.CopyOptions",
                "CopyOptions says GZIP but S3Configuration.CompressionFormat is not GZIP; remove \
                 GZIP or set CompressionFormat: GZIP"
                    .into(),
            )],
            _ => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Postgres,
    Redshift,
}

const URL_FORMS: &str = "use jdbc:redshift://host:5439/db, jdbc:postgresql://host:5432/db, \
                         postgres://user@host:5432/db or postgresql://...";

/// Parses `ClusterJDBCURL` into a target kind, connection and TLS settings. Messages never echo
/// the URL past its scheme: it may hold a password.
fn parse_cluster_url(url: &str) -> Result<(Kind, tokio_postgres::Config, TlsSettings), String> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    let mut tls = TlsSettings::default();
    let (kind, mut config) = if lower.starts_with("jdbc:postgresql://") {
        (Kind::Postgres, parse_jdbc(&url["jdbc:postgresql://".len()..], 5432, &mut tls)?)
    } else if lower.starts_with("jdbc:redshift://") {
        (Kind::Redshift, parse_jdbc(&url["jdbc:redshift://".len()..], 5439, &mut tls)?)
    } else if lower.starts_with("jdbc:redshift:iam://") {
        return Err("jdbc:redshift:iam:// (IAM authentication) is not supported; use \
                    jdbc:redshift://host:5439/db with Username and Password"
            .into());
    } else if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        // tokio-postgres knows sslmode up to `require`: the TLS parameters are taken out first.
        let url = take_tls_parameters(url, &mut tls)?;
        let config = tokio_postgres::Config::from_str(&url)
            .map_err(|e| format!("not a valid PostgreSQL URL: {e}; {URL_FORMS}"))?;
        if config.get_hosts().is_empty() {
            return Err(format!("the URL names no host; {URL_FORMS}"));
        }
        if config.get_dbname().is_none() {
            return Err(format!("the URL names no database; {URL_FORMS}"));
        }
        (Kind::Postgres, config)
    } else {
        let scheme = url.split("//").next().unwrap_or("");
        return Err(format!("unsupported URL scheme {scheme:?}; {URL_FORMS}"));
    };
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    if config.get_application_name().is_none() {
        config.application_name("hydrant");
    }
    config.keepalives(true);
    config.ssl_mode(tls.mode.ssl_mode());
    Ok((kind, config, tls))
}

/// Sets `tls` from one URL parameter if it is a TLS one (`sslmode`, `ssl`, `sslrootcert`);
/// `Ok(false)` for other parameters.
fn tls_parameter(key: &str, value: &str, tls: &mut TlsSettings) -> Result<bool, String> {
    match key.to_ascii_lowercase().as_str() {
        "sslmode" => tls.mode = TlsMode::parse(value)?,
        // pgJDBC: ssl=true verifies the certificate and the host name.
        "ssl" => {
            tls.mode = match value.to_ascii_lowercase().as_str() {
                "true" => TlsMode::VerifyFull,
                "false" => TlsMode::Disable,
                _ => return Err(format!("ssl={value:?} is not true or false")),
            }
        }
        "sslrootcert" => tls.root_cert = Some(value.into()),
        _ => return Ok(false),
    }
    Ok(true)
}

/// A `postgres://` URL without its TLS parameters, which go to `tls`.
fn take_tls_parameters(url: &str, tls: &mut TlsSettings) -> Result<String, String> {
    let Some((base, query)) = url.split_once('?') else { return Ok(url.to_string()) };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if !tls_parameter(key, value, tls)? {
            kept.push(pair);
        }
    }
    Ok(if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) })
}

/// `host[:port]/database[?key=value&...]`, the part after `jdbc:<driver>://`.
fn parse_jdbc(
    rest: &str,
    default_port: u16,
    tls: &mut TlsSettings,
) -> Result<tokio_postgres::Config, String> {
    let (authority, path) =
        rest.split_once('/').ok_or_else(|| format!("the URL names no database; {URL_FORMS}"))?;
    if authority.contains('@') {
        return Err("JDBC URLs carry no user@ part; put the user in Username".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| "unclosed [ in the host; write [::1]:5432".to_owned())?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(format!("the URL names no host; {URL_FORMS}"));
    }
    let port = match port {
        None => default_port,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
            format!("port {p:?} is not a number in 1..=65535; write host:{default_port}")
        })?,
    };
    let (dbname, query) = match path.split_once('?') {
        Some((d, q)) => (d, Some(q)),
        None => (path, None),
    };
    if dbname.is_empty() {
        return Err(format!("the URL names no database; {URL_FORMS}"));
    }
    let mut config = tokio_postgres::Config::new();
    config.host(host).port(port).dbname(dbname);
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if tls_parameter(key, value, tls)? {
            continue;
        }
        match key.to_ascii_lowercase().as_str() {
            "user" => {
                config.user(value);
            }
            "password" => {
                config.password(value);
            }
            "applicationname" | "application_name" => {
                config.application_name(value);
            }
            "connecttimeout" | "connect_timeout" | "logintimeout" => {
                let secs = value.parse::<u64>().map_err(|_| {
                    format!("{key}={value:?} is not a number of seconds; write {key}=10")
                })?;
                config.connect_timeout(Duration::from_secs(secs));
            }
            _ => {
                return Err(format!(
                    "URL parameter {key:?} is not supported; remove it (supported: user, password, \
                     sslmode, ssl, sslrootcert, ApplicationName, connectTimeout)"
                ))
            }
        }
    }
    Ok(config)
}

/// Parses identifiers separated by `sep` (`.` for a qualified name, `,` for a column list).
fn parse_idents(s: &str, sep: char) -> Result<Vec<Ident>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let ident = match chars.peek() {
            Some('"') => {
                chars.next();
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            name.push('"');
                        }
                        Some('"') => break,
                        Some(c) => name.push(c),
                        None => {
                            return Err("a quoted name is not closed; add the closing \"".into())
                        }
                    }
                }
                if name.is_empty() {
                    return Err("\"\" is not a name".into());
                }
                Ident { sql: format!("\"{}\"", name.replace('"', "\"\"")), name }
            }
            Some(&c) if c.is_alphabetic() || c == '_' => {
                let mut sql = String::new();
                while let Some(&c) = chars.peek() {
                    if !(c.is_alphanumeric() || c == '_' || c == '$') {
                        break;
                    }
                    sql.push(c);
                    chars.next();
                }
                Ident { name: sql.to_ascii_lowercase(), sql }
            }
            Some(c) => {
                return Err(format!(
                    "unexpected {c:?}; names are letters, digits, _ and $ (or \"quoted\")"
                ))
            }
            None => return Err("a name is missing".into()),
        };
        out.push(ident);
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => return Ok(out),
            Some(c) if c == sep => {}
            Some(c) => {
                return Err(format!(
                    "unexpected {c:?} after a name; names are letters, digits, _ and $ (or \
                     \"quoted\")"
                ))
            }
        }
    }
}

fn check_table_name(s: &str) -> Result<TableName, String> {
    let len = s.chars().count();
    if !(1..=512).contains(&len) {
        return Err(format!("must be 1 to 512 characters, got {len}; name the target table"));
    }
    let parts = parse_idents(s, '.').map_err(|e| format!("{e}; write table or schema.table"))?;
    if parts.len() > 2 {
        return Err("at most schema.table; remove the database part".into());
    }
    Ok(TableName { parts })
}

fn check_columns(s: &str) -> Result<Vec<Ident>, String> {
    if s.len() > 10240 {
        return Err(format!("must be at most 10240 characters, got {}", s.len()));
    }
    let columns = parse_idents(s, ',').map_err(|e| format!("{e}; write col1,col2,..."))?;
    for (i, c) in columns.iter().enumerate() {
        if columns[..i].iter().any(|d| d.name == c.name) {
            return Err(format!("column {} is listed twice; list it once", c.name));
        }
    }
    Ok(columns)
}

#[cfg(test)]
mod tests;
