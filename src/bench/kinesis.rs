//! `hydrant bench --api kinesis`: the Kinesis Data Streams path of a spawned server.
//!
//! Creates a provisioned stream of `--shards` shards, drives it with `PutRecords` from
//! `--connections` connections for `--seconds` (random partition keys, so every shard gets its
//! share), reads every shard back with `GetRecords` (one reader per shard, as consumers do),
//! then measures what a split costs: a load at half the measured rate runs while shard 0 is
//! split, and the latency of the calls around the split is set against the calls before it.
//! Each shard takes at most Kinesis' 1 MiB and 1,000 records a second, so the ingest figures
//! are bounded by the shard count; records refused for it are reported, not hidden.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::Engine;
use rand::Rng;
use serde_json::{json, Value};

use super::{load, mbps, sample_records, spawn_server, BenchArgs, Call, Phase};

const STREAM: &str = "bench-kinesis";

/// `PutRecords` as `load` sends it.
/// `PutRecords` as `load` sends it: the records not refused count.
const PUT_RECORDS: Call = Call { target: "Kinesis_20131202.PutRecords", stored: stored_records };

fn stored_records(answer: &str, records: u64) -> Option<u64> {
    let answer: Value = serde_json::from_str(answer).ok()?;
    Some(records.saturating_sub(answer["FailedRecordCount"].as_u64()?))
}

/// One Kinesis call; its JSON answer, or the error it got.
async fn call(
    client: &reqwest::Client,
    target: &str,
    op: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let response = client
        .post(target)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("Kinesis_20131202.{op}"))
        .body(body.to_string())
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("{op} answered {status}: {text}");
    }
    Ok(serde_json::from_str(&text)?)
}

pub(super) async fn run(args: BenchArgs) -> anyhow::Result<std::process::ExitCode> {
    if args.batch == 0 || args.batch > 500 {
        bail!("--batch must be 1..=500 (Kinesis' PutRecords limit), got {}", args.batch);
    }
    if !args.target.is_empty() {
        bail!("--api kinesis benchmarks the server it spawns; leave out --target");
    }
    let (target, mut spawned) = spawn_server(&args, None)?;
    let client = reqwest::Client::new();
    let ready = Instant::now();
    while client.get(format!("{target}/healthz")).send().await.is_err() {
        if ready.elapsed() > Duration::from_secs(30) {
            bail!("the spawned server did not answer /healthz within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    call(
        &client,
        &target,
        "CreateStream",
        json!({"StreamName": STREAM, "ShardCount": args.shards}),
    )
    .await
    .context("creating the stream")?;

    let records = sample_records(4096, args.record_size);
    let mut rng = rand::rng();
    let bodies: Vec<(String, u64, u64)> = records
        .chunks(args.batch)
        .filter(|c| c.len() == args.batch)
        .map(|chunk| {
            let entries: Vec<Value> = (chunk.iter())
                .map(|r| {
                    json!({
                        "Data": base64::engine::general_purpose::STANDARD.encode(r),
                        "PartitionKey": format!("user-{}", rng.random::<u32>()),
                    })
                })
                .collect();
            let body = json!({"StreamName": STREAM, "Records": entries}).to_string();
            (body, chunk.len() as u64, chunk.iter().map(|r| r.len() as u64).sum())
        })
        .collect();
    let bodies = Arc::new(bodies);
    let targets = vec![target.clone()];
    eprintln!(
        "bench: Kinesis stream of {} shards, {} connections, {} records of ~{} B per PutRecords, {} s",
        args.shards, args.connections, args.batch, args.record_size, args.seconds
    );
    let seconds = Duration::from_secs(args.seconds);
    let full =
        load(&targets, bodies.clone(), args.connections, seconds, None, &PUT_RECORDS).await?;
    println!(
        "hydrant bench --api kinesis ({} shards, {} connections)",
        args.shards, args.connections
    );
    println!(
        "  PutRecords ingest (fsync per server policy): {:.2} MB/s, {:.0} records/s \
         ({:.2} MB/s and {:.0} records/s per shard); {} records refused for the shard limits, {} calls failed",
        mbps(full.bytes, full.elapsed),
        full.records as f64 / full.elapsed.as_secs_f64(),
        mbps(full.bytes, full.elapsed) / f64::from(args.shards),
        full.records as f64 / full.elapsed.as_secs_f64() / f64::from(args.shards),
        full.refused,
        full.errors
    );
    println!("  PutRecords latency: {}", full.latency_summary());

    let (read_records, read_bytes, read_took) = read_all(&client, &target).await?;
    println!(
        "  GetRecords read of every shard (one reader each): {:.1} MB/s, {:.0} records/s \
         ({read_records} records, {:.2} s)",
        mbps(read_bytes, read_took),
        read_records as f64 / read_took.as_secs_f64(),
        read_took.as_secs_f64()
    );

    if full.calls > 0 {
        let rate = full.calls as f64 / full.elapsed.as_secs_f64() / 2.0;
        if let Err(e) = reshard_cost(&client, &target, &targets, bodies, &args, rate).await {
            println!("  the cost of a split was not measured: {e:#}");
        }
    }
    if let Some(rss) = super::measure::peak_rss_mib(spawned.child.id()) {
        println!("  server peak RSS: {rss:.0} MiB");
    }
    let _ = spawned.child.kill();
    let _ = spawned.child.wait();
    Ok(std::process::ExitCode::SUCCESS)
}

/// Reads every shard from `TRIM_HORIZON` to its end, all shards at once; records, bytes of
/// data (base64 decoded) and the time it took.
async fn read_all(client: &reqwest::Client, target: &str) -> anyhow::Result<(u64, u64, Duration)> {
    let shards = call(client, target, "ListShards", json!({"StreamName": STREAM})).await?;
    let ids: Vec<String> =
        (shards["Shards"].as_array().context("ListShards answered no Shards")?)
            .iter()
            .filter_map(|s| s["ShardId"].as_str().map(str::to_string))
            .collect();
    let started = Instant::now();
    let mut readers = Vec::new();
    for id in ids {
        let (client, target) = (client.clone(), target.to_string());
        readers.push(tokio::spawn(async move {
            let body =
                json!({"StreamName": STREAM, "ShardId": id, "ShardIteratorType": "TRIM_HORIZON"});
            let it = call(&client, &target, "GetShardIterator", body).await?;
            let mut iterator = it["ShardIterator"].as_str().map(str::to_string);
            let (mut records, mut bytes) = (0u64, 0u64);
            while let Some(it) = iterator {
                let out =
                    call(&client, &target, "GetRecords", json!({"ShardIterator": it})).await?;
                let got = out["Records"].as_array().cloned().unwrap_or_default();
                for r in &got {
                    records += 1;
                    bytes += r["Data"].as_str().map_or(0, |d| d.len() as u64 * 3 / 4);
                }
                if got.is_empty() && out["MillisBehindLatest"].as_u64() == Some(0) {
                    break;
                }
                iterator = out["NextShardIterator"].as_str().map(str::to_string);
            }
            anyhow::Ok((records, bytes))
        }));
    }
    let (mut records, mut bytes) = (0, 0);
    for reader in readers {
        let (r, b) = reader.await??;
        records += r;
        bytes += b;
    }
    Ok((records, bytes, started.elapsed()))
}

/// Splits shard 0 under a load at `rate` calls/s and compares the latency of the calls around
/// the split with the calls before it.
async fn reshard_cost(
    client: &reqwest::Client,
    target: &str,
    targets: &[String],
    bodies: Arc<Vec<(String, u64, u64)>>,
    args: &BenchArgs,
    rate: f64,
) -> anyhow::Result<()> {
    let seconds = Duration::from_secs(8);
    let loaded = {
        let (targets, bodies, connections) = (targets.to_vec(), bodies.clone(), args.connections);
        tokio::spawn(async move {
            load(&targets, bodies, connections, seconds, Some(rate), &PUT_RECORDS).await
        })
    };
    tokio::time::sleep(Duration::from_secs(4)).await;
    // Offsets are from the start of the load, which began just before the sleep.
    let split_at = Duration::from_secs(4);
    let t = Instant::now();
    let range = call(client, target, "ListShards", json!({"StreamName": STREAM})).await?;
    let start: u128 = range["Shards"][0]["HashKeyRange"]["StartingHashKey"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .context("ListShards gave no hash key range")?;
    let end: u128 = range["Shards"][0]["HashKeyRange"]["EndingHashKey"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .context("ListShards gave no hash key range")?;
    let middle = start + (end - start) / 2 + 1;
    let body = json!({"StreamName": STREAM, "ShardToSplit": "shardId-000000000000",
                      "NewStartingHashKey": middle.to_string()});
    call(client, target, "SplitShard", body).await.context("splitting shard 0")?;
    let split_took = t.elapsed();
    let phase: Phase = loaded.await??;
    let before = phase.window(Duration::ZERO, split_at);
    let around = phase.window(
        split_at.saturating_sub(Duration::from_millis(500)),
        split_at + Duration::from_secs(1),
    );
    println!(
        "  SplitShard under a load of {rate:.0} calls/s took {:.1} ms; PutRecords p99 {:.1} ms in the \
         second around it ({} calls) against {:.1} ms before ({} calls)",
        split_took.as_secs_f64() * 1e3,
        percentile(&around, 0.99).as_secs_f64() * 1e3,
        around.len(),
        percentile(&before, 0.99).as_secs_f64() * 1e3,
        before.len()
    );
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}
