//! What `hydrant bench` measures beside the load: a process's CPU time and peak memory, the
//! server's counters, the `psql \copy` baseline and the in-process HTTP endpoint receiver.

use super::*;

/// CPU time (user + system) a process has used, from /proc (Linux; 100 ticks per second).
pub(super) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Runs one SQL statement.
pub(super) async fn pg_execute(url: &str, sql: &str) -> anyhow::Result<()> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    tokio::spawn(connection);
    client.batch_execute(sql).await.with_context(|| sql.to_string())?;
    Ok(())
}

/// `psql \copy` of `count` records (cycling through `records`) into a fresh table: the
/// yardstick for the warehouse destination. Returns (bytes, time).
pub(super) async fn psql_baseline(
    url: &str,
    records: &[Vec<u8>],
    count: usize,
) -> anyhow::Result<(u64, Duration)> {
    let table = format!("{}_psql", pg_table());
    pg_execute(url, &format!("CREATE TABLE {table} ({PG_COLUMNS})")).await?;
    let path = std::env::temp_dir().join(format!("{table}.csv"));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let mut bytes = 0u64;
    for r in records.iter().cycle().take(count) {
        file.write_all(r)?;
        bytes += r.len() as u64;
    }
    file.flush()?;
    drop(file);
    let t = Instant::now();
    let status = std::process::Command::new("psql")
        .arg(url)
        .arg("-q")
        .arg("-c")
        .arg(format!("\\copy {table} FROM '{}' CSV", path.display()))
        .status()
        .context("running psql")?;
    let took = t.elapsed();
    let _ = std::fs::remove_file(&path);
    if !status.success() {
        bail!("psql exited with {status}");
    }
    Ok((bytes, took))
}

/// A Firehose HTTP endpoint receiver inside the bench process: answers every request as a
/// healthy endpoint would, counting what it gets.
pub(super) struct Receiver {
    pub(super) url: String,
    pub(super) records: Arc<AtomicU64>,
    pub(super) requests: Arc<AtomicU64>,
}

pub(super) async fn start_receiver() -> anyhow::Result<Receiver> {
    let records = Arc::new(AtomicU64::new(0));
    let requests = Arc::new(AtomicU64::new(0));
    let (r, q) = (records.clone(), requests.clone());
    let app = axum::Router::new().route(
        "/in",
        axum::routing::post(move |body: bytes::Bytes| {
            let (r, q) = (r.clone(), q.clone());
            async move {
                #[derive(serde::Deserialize)]
                struct Request {
                    #[serde(rename = "requestId")]
                    request_id: String,
                    records: Vec<serde::de::IgnoredAny>,
                }
                let Ok(req) = serde_json::from_slice::<Request>(&body) else {
                    return (axum::http::StatusCode::BAD_REQUEST, String::new());
                };
                r.fetch_add(req.records.len() as u64, Ordering::Relaxed);
                q.fetch_add(1, Ordering::Relaxed);
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis();
                (
                    axum::http::StatusCode::OK,
                    format!("{{\"requestId\":\"{}\",\"timestamp\":{now}}}", req.request_id),
                )
            }
        }),
    );
    // Requests carry up to 64 MiB of records: no body limit (axum's default is 2 MB).
    let app = app.layer(axum::extract::DefaultBodyLimit::disable());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/in", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(Receiver { url, records, requests })
}

/// Peak resident memory of a process, from /proc (Linux).
pub(super) fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// One counter from the server's Prometheus text, summed over label sets.
pub(super) async fn metric(
    client: &reqwest::Client,
    target: &str,
    name: &str,
    stream: &str,
) -> anyhow::Result<f64> {
    let text = client.get(format!("{target}/metrics")).send().await?.text().await?;
    let want = format!("stream=\"{stream}\"");
    Ok(text
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{') && l.contains(&want))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}
