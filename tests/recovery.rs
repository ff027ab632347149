//! Recovery of a stream whose log lost its tail (a power loss under `fsync: { interval_ms }`,
//! or the manual repair of docs/log-format.md): the sequence numbers of the lost records go to
//! new records, and those are delivered, whatever the delivery state said about the old ones.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use http_body_util::BodyExt;
use hydrant::api::router;
use hydrant::server::Hydrant;
use serde_json::{json, Value};
use tower::ServiceExt;

/// One shard, partitioned by `.k`, a one-second window.
fn config(dir: &Path) -> hydrant::plan::ServerPlan {
    let yaml = format!(
        r#"data_dir: {data}
shutdown_timeout_seconds: 10
object_stores:
  local: {{ type: local, root: {root} }}
delivery_streams:
  - DeliveryStreamName: parts
    ExtendedS3DestinationConfiguration:
      BucketARN: arn:aws:s3:::raw
      Prefix: "p/!{{partitionKeyFromQuery:k}}/"
      ErrorOutputPrefix: "e/!{{firehose:error-output-type}}/"
      BufferingHints: {{ SizeInMBs: 1, IntervalInSeconds: 1 }}
      DynamicPartitioningConfiguration: {{ Enabled: true }}
      ProcessingConfiguration:
        Enabled: true
        Processors:
          - Type: MetadataExtraction
            Parameters:
              - {{ ParameterName: MetadataExtractionQuery, ParameterValue: "{{k: .k}}" }}
              - {{ ParameterName: JsonParsingEngine, ParameterValue: JQ-1.6 }}
          - Type: AppendDelimiterToRecord
    hydrant: {{ object_store: local, shards: 1 }}
"#,
        data = dir.join("data").display(),
        root = dir.join("buckets").display(),
    );
    hydrant::plan::parse(&yaml, dir).expect("valid test config")
}

async fn put(app: &axum::Router, records: &[Value]) {
    let records: Vec<Value> = records
        .iter()
        .map(|r| json!({"Data": base64::engine::general_purpose::STANDARD.encode(r.to_string())}))
        .collect();
    let request = Request::post("/")
        .header("x-amz-target", "Firehose_20150804.PutRecordBatch")
        .header("content-type", "application/x-amz-json-1.1")
        .body(Body::from(json!({"DeliveryStreamName": "parts", "Records": records}).to_string()))
        .unwrap();
    let response = router_call(app, request).await;
    assert_eq!(response.0, StatusCode::OK, "{}", response.1);
    assert_eq!(response.1["FailedPutCount"], 0, "{}", response.1);
}

async fn router_call(app: &axum::Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// Every delivered line under `dir`.
fn lines(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                out.extend(text.lines().map(str::to_string));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

async fn wait_until<F: FnMut() -> bool>(what: &str, mut ready: F) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn shard_dir(dir: &Path) -> PathBuf {
    dir.join("data/streams/parts/shard-0000")
}

/// Cuts the shard's only segment after `keep` records, as `truncate -s OFFSET` does in the
/// documented repair.
fn cut_log_after(shard: &Path, keep: u64) {
    let segment = shard.join(format!("{:020}.seg", 0));
    let bytes = std::fs::read(&segment).unwrap();
    let mut offset = 16usize;
    for _ in 0..keep {
        let len = u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap()) as usize;
        offset += 24 + len;
    }
    assert!(offset < bytes.len(), "the segment holds more than {keep} records");
    std::fs::OpenOptions::new().write(true).open(&segment).unwrap().set_len(offset as u64).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_records_that_reuse_the_sequence_numbers_of_a_lost_tail_are_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("buckets/raw");
    let cfg = config(dir.path());

    // One group commit: a0 (seq 0), b0 (seq 1), a1 (seq 2). Both buffers are sealed at the same
    // watermark, a's first: the checkpoint can then only move to b's first record, so the
    // uploader stores a's marker (seq 2) before the checkpoint.
    let hydrant = Hydrant::start(&cfg).unwrap();
    let app = router(hydrant.state.clone());
    let first =
        [json!({"k": "a", "n": "a0"}), json!({"k": "b", "n": "b0"}), json!({"k": "a", "n": "a1"})];
    put(&app, &first).await;
    wait_until("the first records to be delivered", || lines(&bucket).len() == 3).await;
    drop(app);
    hydrant.shutdown().await;
    let markers =
        std::fs::read_to_string(shard_dir(dir.path()).join("delivery-markers.json")).unwrap();
    assert!(markers.contains(r#""seq":2"#), "a's marker was not stored: {markers}");

    // The log loses everything after a0; the marker of `a` at seq 2 is now past its end.
    cut_log_after(&shard_dir(dir.path()), 1);

    let hydrant = Hydrant::start(&cfg).unwrap();
    let app = router(hydrant.state.clone());
    // New records get seq 1 and 2 again.
    let second = [json!({"k": "a", "n": "a2"}), json!({"k": "a", "n": "a3"})];
    put(&app, &second).await;
    wait_until("the records reusing the lost sequence numbers to be delivered", || {
        let got = lines(&bucket.join("p/a"));
        got.iter().any(|l| l.contains("a2")) && got.iter().any(|l| l.contains("a3"))
    })
    .await;
    drop(app);
    hydrant.shutdown().await;
    let all = lines(&bucket);
    for n in ["a0", "b0", "a1", "a2", "a3"] {
        assert_eq!(
            all.iter().filter(|l| l.contains(&format!("\"{n}\""))).count(),
            1,
            "{n}: {all:?}"
        );
    }
}
