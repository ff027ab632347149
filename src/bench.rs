//! `hydrant bench`: drive a Hydrant server with PutRecordBatch and report what it sustains.
//!
//! Reports ingest throughput (MB/s and records/s of record data, with the server's fsync
//! policy), PutRecordBatch latency percentiles at full load and at half of it, end-to-end
//! delivery throughput (until every accepted record is in the destination, read from the
//! server's own metrics), the server's peak RSS, and the single-core gzip speed of the same
//! data as the yardstick for a compression-bound pipeline. Benchmarks print numbers; nothing
//! here asserts on them.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::Engine;
use rand::{Rng, SeedableRng};

mod kinesis;
mod measure;
mod spawn;
use measure::{cpu_seconds, metric, peak_rss_mib, pg_execute, psql_baseline, start_receiver};
use spawn::spawn_server;

/// Options of `hydrant bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Endpoint of a running server; several, comma-separated, for the nodes of a cluster
    /// (connections are spread over them, delivery is counted on all). Without it, bench starts
    /// its own `hydrant serve` on a temporary data directory with a local object store (and
    /// reports its peak memory).
    #[arg(long, value_delimiter = ',')]
    pub target: Vec<String>,
    /// Delivery stream to send to (with --target).
    #[arg(long, default_value = "bench")]
    pub stream: String,
    /// Concurrent connections, each sending one call at a time.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Length of the full-load phase, in seconds.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Records per PutRecordBatch call (at most 500).
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Approximate size of one JSON record, in bytes.
    #[arg(long, default_value_t = 1024)]
    pub record_size: usize,
    /// CompressionFormat of the spawned server's stream: UNCOMPRESSED or GZIP.
    #[arg(long, default_value = "GZIP")]
    pub compression: String,
    /// Shards of the spawned server's stream.
    #[arg(long, default_value_t = 2)]
    pub shards: u32,
    /// BufferingHints.SizeInMBs of the spawned server's stream.
    #[arg(long, default_value_t = 64)]
    pub buffer_mib: u32,
    /// Write objects to this S3 endpoint instead of a local directory (spawned server only;
    /// credentials from --s3-access-key/--s3-secret-key, bucket `bench` must exist).
    #[arg(long)]
    pub s3_endpoint: Option<String>,
    #[arg(long, default_value = "")]
    pub s3_access_key: String,
    #[arg(long, default_value = "")]
    pub s3_secret_key: String,
    /// Run this WebAssembly transform (a `.wasm` path) as the spawned stream's Lambda processor.
    #[arg(long)]
    pub transform: Option<String>,
    /// Encrypt the spawned stream's objects (client-side, AES-256-GCM) with a generated key.
    #[arg(long)]
    pub encrypt: bool,
    /// Also encrypt the spawned stream's log at rest (implies --encrypt's keys).
    #[arg(long)]
    pub encrypt_log: bool,
    /// How long to wait for the server to deliver everything it accepted.
    #[arg(long, default_value_t = 300)]
    pub drain_seconds: u64,
    /// Also run a phase at half the measured peak request rate and report its latency.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub half_load: bool,
    /// Destination of the spawned stream: `s3` (a local directory or --s3-endpoint),
    /// `postgres` (COPY into a table bench creates; needs --postgres-url), `opensearch`
    /// (`_bulk`; needs --opensearch-endpoint) or `http` (Firehose HTTP endpoint delivery to a
    /// receiver bench runs itself). Non-S3 destinations stage / write failures to the local
    /// directory (or --s3-endpoint).
    #[arg(long, value_enum, default_value = "s3")]
    pub destination: BenchDestination,
    /// Which API to drive: `firehose` (PutRecordBatch into a delivery stream, delivered to its
    /// destination) or `kinesis` (PutRecords into a Kinesis stream of --shards shards, read
    /// back with GetRecords, and the latency cost of a SplitShard under load).
    #[arg(long, value_enum, default_value = "firehose")]
    pub api: BenchApi,
    /// PostgreSQL to load into, e.g. postgres://postgres@127.0.0.1:55432/hydrant.
    #[arg(long)]
    pub postgres_url: Option<String>,
    /// OpenSearch / Elasticsearch endpoint, e.g. http://127.0.0.1:19200.
    #[arg(long)]
    pub opensearch_endpoint: Option<String>,
}

/// The APIs `hydrant bench` can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchApi {
    Firehose,
    Kinesis,
}

/// A call `load` sends: its `X-Amz-Target`, and how many of a call's `records` its (successful)
/// answer says were stored; `None` counts the call as failed.
struct Call {
    target: &'static str,
    stored: fn(answer: &str, records: u64) -> Option<u64>,
}

/// Firehose's PutRecordBatch: a call counts when every record was stored.
const PUT_RECORD_BATCH: Call = Call {
    target: "Firehose_20150804.PutRecordBatch",
    stored: |answer, records| answer.contains("\"FailedPutCount\":0").then_some(records),
};

/// Destinations `hydrant bench` can spawn a stream for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchDestination {
    S3,
    Postgres,
    Opensearch,
    Http,
}

impl BenchDestination {
    /// The counter of delivered records for this destination.
    fn delivered_metric(self) -> &'static str {
        match self {
            BenchDestination::S3 => "hydrant_delivery_to_s3_records_total",
            BenchDestination::Postgres => "hydrant_delivery_to_redshift_records_total",
            BenchDestination::Opensearch => {
                "hydrant_delivery_to_amazon_opensearch_service_records_total"
            }
            BenchDestination::Http => "hydrant_delivery_to_http_endpoint_records_total",
        }
    }
}

/// The table `--destination postgres` loads into (and the psql baseline's copy of it).
const PG_COLUMNS: &str = "ts text, request_id text, \"user\" int, method text, path text, \
    status int, bytes int, latency_ms float8, agent text, tags text";

/// The sample records as CSV lines with the same fields (what `CopyOptions: CSV` loads).
pub fn csv_records(json: &[Vec<u8>]) -> Vec<Vec<u8>> {
    json.iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_slice(r).expect("sample records are JSON");
            let field = |k: &str| match &v[k] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let tags = v["tags"].to_string().replace('"', "\"\"");
            format!(
                "{},{},{},{},\"{}\",{},{},{},\"{}\",\"{}\"\n",
                field("ts"),
                field("request_id"),
                field("user"),
                field("method"),
                field("path"),
                field("status"),
                field("bytes"),
                field("latency_ms"),
                field("agent"),
                tags
            )
            .into_bytes()
        })
        .collect()
}

/// Deterministic, realistic ~1 KiB JSON log lines (compress about like web logs do).
pub fn sample_records(count: usize, size: usize) -> Vec<Vec<u8>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    const PATHS: [&str; 6] =
        ["/", "/cart", "/api/v1/items", "/login", "/search?q=shoes", "/checkout/confirm"];
    const AGENTS: [&str; 3] = [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
        "curl/8.5.0",
    ];
    (0..count)
        .map(|i| {
            let mut line = format!(
                "{{\"ts\":\"2026-11-22T05:{:02}:{:02}.{:03}Z\",\"request_id\":\"{:032x}\",\"user\":{},\"method\":\"GET\",\
                 \"path\":\"{}\",\"status\":{},\"bytes\":{},\"latency_ms\":{:.3},\"agent\":\"{}\",\"tags\":[",
                (i / 60) % 60,
                i % 60,
                rng.random_range(0..1000),
                rng.random::<u128>(),
                rng.random_range(1..50_000),
                PATHS[rng.random_range(0..PATHS.len())],
                [200, 200, 200, 304, 404, 500][rng.random_range(0..6)],
                rng.random_range(100..90_000),
                rng.random_range(0.1..900.0),
                AGENTS[rng.random_range(0..AGENTS.len())],
            );
            while line.len() + 24 < size {
                line.push_str(&format!("\"t{:x}\",", rng.random_range(0..4096u32)));
            }
            line.push_str("\"end\"]}\n");
            line.into_bytes()
        })
        .collect()
}

struct Spawned {
    child: std::process::Child,
    _dir: tempfile_dir::TempDir,
}

mod tempfile_dir {
    /// A directory removed on drop (a tiny stand-in to keep `tempfile` a dev-dependency).
    pub struct TempDir(pub std::path::PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Table (and index) name of this bench run.
fn pg_table() -> String {
    format!("bench_{}", std::process::id())
}

struct Phase {
    calls: u64,
    records: u64,
    bytes: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// Records answered with an error inside successful calls.
    refused: u64,
    /// Each successful call's start (from the start of the phase) and latency, in call order
    /// per connection.
    timeline: Vec<(Duration, Duration)>,
    errors: u64,
}

impl Phase {
    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies[i]
    }

    /// `p50 .. ms, p99 .. ms, max .. ms` of the phase's calls.
    fn latency_summary(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        format!(
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            ms(self.percentile(0.5)),
            ms(self.percentile(0.99)),
            ms(self.latencies.last().copied().unwrap_or_default())
        )
    }

    /// The latencies of the calls that started in `[from, to)`, sorted.
    fn window(&self, from: Duration, to: Duration) -> Vec<Duration> {
        let mut inside: Vec<Duration> = (self.timeline.iter())
            .filter(|(start, _)| (from..to).contains(start))
            .map(|(_, latency)| *latency)
            .collect();
        inside.sort();
        inside
    }
}

/// Sends calls from `connections` tasks for `duration`; `rate` (calls/s overall) paces them.
async fn load(
    targets: &[String],
    bodies: Arc<Vec<(String, u64, u64)>>,
    connections: usize,
    duration: Duration,
    rate: Option<f64>,
    call: &'static Call,
) -> anyhow::Result<Phase> {
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let client = reqwest::Client::builder().pool_max_idle_per_host(1).build()?;
        let (bodies, stop, errors, target) =
            (bodies.clone(), stop.clone(), errors.clone(), targets[c % targets.len()].clone());
        let interval = rate.map(|r| Duration::from_secs_f64(connections as f64 / r));
        tasks.push(tokio::spawn(async move {
            let mut out = (0u64, 0u64, 0u64, Vec::new(), Vec::new(), 0u64);
            let mut i = c;
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                if let Some(interval) = interval {
                    tokio::time::sleep_until(next.into()).await;
                    next += interval;
                }
                let (body, records, bytes) = &bodies[i % bodies.len()];
                i += connections;
                let t = Instant::now();
                let response = client
                    .post(&target)
                    .header("content-type", "application/x-amz-json-1.1")
                    .header("x-amz-target", call.target)
                    .body(body.clone())
                    .send()
                    .await;
                let stored = match response {
                    Ok(r) if r.status().is_success() => {
                        let text = r.text().await.unwrap_or_default();
                        (call.stored)(&text, *records)
                    }
                    _ => None,
                };
                if let Some(stored) = stored {
                    out.3.push(t.elapsed());
                    out.4.push((t - started, t.elapsed()));
                    out.0 += 1;
                    out.1 += stored;
                    out.2 += bytes * stored / (*records).max(1);
                    out.5 += records - stored;
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            out
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut phase = Phase {
        calls: 0,
        records: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        timeline: Vec::new(),
        refused: 0,
        errors: 0,
    };
    for task in tasks {
        let (calls, records, bytes, lat, timeline, refused) = task.await?;
        phase.refused += refused;
        phase.timeline.extend(timeline);
        phase.calls += calls;
        phase.records += records;
        phase.bytes += bytes;
        phase.latencies.extend(lat);
    }
    phase.elapsed = started.elapsed();
    phase.errors = errors.load(Ordering::Relaxed);
    phase.latencies.sort();
    Ok(phase)
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9)
}

fn gzip_single_core(records: &[Vec<u8>]) -> f64 {
    let mut total = 0u64;
    let started = Instant::now();
    while total < 64 << 20 {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        for r in records {
            enc.write_all(r).expect("in-memory write");
            total += r.len() as u64;
        }
        let _ = enc.finish();
    }
    mbps(total, started.elapsed())
}

pub async fn run(args: BenchArgs) -> anyhow::Result<std::process::ExitCode> {
    if args.api == BenchApi::Kinesis {
        return kinesis::run(args).await;
    }
    if args.batch == 0 || args.batch > 500 {
        bail!("--batch must be 1..=500 (Firehose's PutRecordBatch limit), got {}", args.batch);
    }
    if !args.target.is_empty() && args.destination != BenchDestination::S3 {
        bail!("--destination applies to the server bench spawns; leave out --target");
    }
    if args.destination == BenchDestination::Postgres {
        let url = args.postgres_url.as_deref().context("--postgres-url is required")?;
        pg_execute(url, &format!("CREATE TABLE {} ({PG_COLUMNS})", pg_table())).await?;
    }
    let receiver = match args.destination {
        BenchDestination::Http => Some(start_receiver().await?),
        _ => None,
    };
    let (targets, mut spawned) = if args.target.is_empty() {
        let (t, s) = spawn_server(&args, receiver.as_ref().map(|r| r.url.clone()))?;
        (vec![t], Some(s))
    } else {
        (args.target.iter().map(|t| t.trim_end_matches('/').to_string()).collect(), None)
    };
    let target = targets.join(",");
    let stream = if spawned.is_some() { "bench".to_string() } else { args.stream.clone() };
    let client = reqwest::Client::new();
    let ready = Instant::now();
    for node in &targets {
        while client.get(format!("{node}/healthz")).send().await.is_err() {
            if ready.elapsed() > Duration::from_secs(30) {
                bail!("server at {node} did not answer /healthz within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Delivered records, counted on every node (in a cluster, whichever holds a shard delivers).
    let delivered_metric = args.destination.delivered_metric();
    let delivered_now = || async {
        let mut total = 0.0;
        for node in &targets {
            total += metric(&client, node, delivered_metric, &stream).await?;
        }
        anyhow::Ok(total)
    };

    let mut records = sample_records(4096, args.record_size);
    if args.destination == BenchDestination::Postgres {
        records = csv_records(&records);
    }
    let bodies: Vec<(String, u64, u64)> = records
        .chunks(args.batch)
        .filter(|c| c.len() == args.batch)
        .map(|chunk| {
            let entries: Vec<String> = chunk
                .iter()
                .map(|r| {
                    format!(
                        "{{\"Data\":\"{}\"}}",
                        base64::engine::general_purpose::STANDARD.encode(r)
                    )
                })
                .collect();
            let body = format!(
                "{{\"DeliveryStreamName\":\"{stream}\",\"Records\":[{}]}}",
                entries.join(",")
            );
            (body, chunk.len() as u64, chunk.iter().map(|r| r.len() as u64).sum())
        })
        .collect();
    let bodies = Arc::new(bodies);
    eprintln!(
        "bench: {} connections, {} records of ~{} B per call, {} s at full load against {target}",
        args.connections, args.batch, args.record_size, args.seconds
    );
    let gzip_mbps = gzip_single_core(&records);

    let delivered_before = delivered_now().await?;
    let cpu_before = spawned.as_ref().and_then(|s| cpu_seconds(s.child.id()));
    let t0 = Instant::now();
    let full = load(
        &targets,
        bodies.clone(),
        args.connections,
        Duration::from_secs(args.seconds),
        None,
        &PUT_RECORD_BATCH,
    )
    .await?;
    println!(
        "hydrant bench ({} shards, {}, {} connections)",
        args.shards, args.compression, args.connections
    );
    println!(
        "  ingest (fsync per server policy): {:.1} MB/s, {:.0} records/s, {:.0} calls/s, {} failed calls",
        mbps(full.bytes, full.elapsed),
        full.records as f64 / full.elapsed.as_secs_f64(),
        full.calls as f64 / full.elapsed.as_secs_f64(),
        full.errors
    );
    println!("  PutRecordBatch latency at full load: {}", full.latency_summary());
    // End to end: wait until the server has delivered everything it accepted.
    let accepted = full.records as f64;
    let deadline = Instant::now() + Duration::from_secs(args.drain_seconds);
    let mut delivered;
    loop {
        delivered = delivered_now().await? - delivered_before;
        if delivered >= accepted || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let e2e = t0.elapsed();

    println!(
        "  end to end (accepted -> delivered): {:.1} MB/s over {:.1} s ({} of {} records delivered)",
        mbps(full.bytes, e2e),
        e2e.as_secs_f64(),
        delivered as u64,
        accepted as u64
    );
    println!(
        "  end to end: {:.0} records/s to {:?}",
        delivered / e2e.as_secs_f64().max(1e-9),
        args.destination
    );
    if let (Some(before), Some(s)) = (cpu_before, spawned.as_ref()) {
        if let Some(after) = cpu_seconds(s.child.id()) {
            let used = after - before;
            println!(
                "  hydrant CPU during ingest + delivery: {used:.1} s over {:.1} s wall = {:.2} cores",
                e2e.as_secs_f64(),
                used / e2e.as_secs_f64()
            );
        }
    }
    if let Some(r) = &receiver {
        println!(
            "  HTTP receiver (in the bench process) got {} records in {} requests",
            r.records.load(Ordering::Relaxed),
            r.requests.load(Ordering::Relaxed)
        );
    }
    if args.destination == BenchDestination::Postgres {
        let url = args.postgres_url.as_deref().expect("checked");
        match psql_baseline(url, &records, full.records as usize).await {
            Ok((bytes, took)) => println!(
                "  psql \\copy of the same {} CSV records: {:.1} MB/s ({:.1} s); Hydrant end to end is {:.0}% of it",
                full.records,
                mbps(bytes, took),
                took.as_secs_f64(),
                100.0 * mbps(full.bytes, e2e) / mbps(bytes, took).max(1e-9)
            ),
            Err(e) => println!("  psql \\copy baseline failed: {e:#}"),
        }
    }
    println!("  single-core gzip level 6 of the same records: {gzip_mbps:.1} MB/s");
    if args.half_load && full.calls > 0 {
        let rate = full.calls as f64 / full.elapsed.as_secs_f64() / 2.0;
        let half = load(
            &targets,
            bodies,
            args.connections,
            Duration::from_secs(args.seconds.min(10)),
            Some(rate),
            &PUT_RECORD_BATCH,
        )
        .await?;
        println!(
            "  PutRecordBatch latency at half load ({:.0} calls/s): p50 {:.1} ms, p99 {:.1} ms",
            half.calls as f64 / half.elapsed.as_secs_f64(),
            half.percentile(0.5).as_secs_f64() * 1e3,
            half.percentile(0.99).as_secs_f64() * 1e3
        );
    }
    if let Some(s) = spawned.as_mut() {
        if let Some(rss) = peak_rss_mib(s.child.id()) {
            println!("  server peak RSS: {rss:.0} MiB");
        }
        let _ = s.child.kill();
        let _ = s.child.wait();
    }
    Ok(std::process::ExitCode::SUCCESS)
}
