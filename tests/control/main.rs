//! The control plane in process (router + real logs + a local-directory bucket): create,
//! update, tag and delete API streams; the config file's ownership; restarts; reloads; the
//! graceful drain. Real clients and real S3 are exercised by tests/clients/test_control_plane.py.
//!
//! One file per subject (`create.rs`, `encryption.rs`, `lifecycle.rs`, `limits.rs`); the
//! helpers they share are here.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use hydrant::api::router;
use hydrant::server::Hydrant;
use serde_json::{json, Value};
use tower::ServiceExt;

mod create;
mod encryption;
mod lifecycle;
mod limits;

fn yaml(dir: &Path, interval: u32, streams: &[&str]) -> String {
    let mut text = format!(
        "data_dir: {data}\nshutdown_timeout_seconds: 10\nobject_stores:\n  local: {{ type: local, root: {root} }}\napi_streams: {{ object_stores: [local] }}\ndelivery_streams:\n",
        data = dir.join("data").display(),
        root = dir.join("buckets").display(),
    );
    for name in streams {
        text += &format!(
            "  - DeliveryStreamName: {name}\n    ExtendedS3DestinationConfiguration:\n      \
             BucketARN: arn:aws:s3:::raw\n      Prefix: {name}/\n      \
             BufferingHints: {{ SizeInMBs: 1, IntervalInSeconds: {interval} }}\n    \
             hydrant: {{ object_store: local, shards: 1 }}\n"
        );
    }
    text
}

fn config(dir: &Path, interval: u32, streams: &[&str]) -> hydrant::plan::ServerPlan {
    hydrant::plan::parse(&yaml(dir, interval, streams), dir).expect("valid test config")
}

async fn call(app: &axum::Router, op: &str, body: Value) -> (StatusCode, Value) {
    let request = Request::post("/")
        .header("x-amz-target", format!("Firehose_20150804.{op}"))
        .header("content-type", "application/x-amz-json-1.1")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn ok(app: &axum::Router, op: &str, body: Value) -> Value {
    let (status, answer) = call(app, op, body).await;
    assert_eq!(status, StatusCode::OK, "{op}: {answer}");
    answer
}

async fn fails(app: &axum::Router, op: &str, body: Value, error_type: &str) -> String {
    let (status, answer) = call(app, op, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{op}: {answer}");
    assert_eq!(answer["__type"], error_type, "{op}: {answer}");
    answer["message"].as_str().unwrap().to_string()
}

fn api_stream(name: &str, interval: u32) -> Value {
    json!({
        "DeliveryStreamName": name,
        "DeliveryStreamType": "DirectPut",
        "ExtendedS3DestinationConfiguration": {
            "RoleARN": "arn:aws:iam::123456789012:role/fh",
            "BucketARN": "arn:aws:s3:::raw",
            "Prefix": format!("{name}/"),
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": interval},
            "CompressionFormat": "UNCOMPRESSED"
        },
        "Tags": [{"Key": "team", "Value": "web"}],
        "hydrant": {"object_store": "local", "shards": 1}
    })
}

async fn put(app: &axum::Router, stream: &str, records: &[String]) {
    use base64::Engine;
    let records: Vec<Value> = records
        .iter()
        .map(|r| json!({"Data": base64::engine::general_purpose::STANDARD.encode(r)}))
        .collect();
    let answer =
        ok(app, "PutRecordBatch", json!({"DeliveryStreamName": stream, "Records": records})).await;
    assert_eq!(answer["FailedPutCount"], 0, "{answer}");
}

fn records(tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{tag}-{i}\n")).collect()
}

/// Every object under `root` (relative key, lines).
fn objects(root: &Path) -> Vec<(String, Vec<String>)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<String>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, out);
            } else if let Ok(bytes) = std::fs::read(&path) {
                // Gzip objects are listed by key only (their lines are not read here).
                let text = String::from_utf8_lossy(&bytes);
                let key = path.strip_prefix(base).unwrap().display().to_string();
                out.push((key, text.lines().map(str::to_string).collect()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn lines_under(root: &Path) -> Vec<String> {
    let mut lines: Vec<String> = objects(root).into_iter().flat_map(|(_, l)| l).collect();
    lines.sort();
    lines
}

fn sorted(records: &[String]) -> Vec<String> {
    let mut out: Vec<String> = records.iter().map(|r| r.trim_end().to_string()).collect();
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

fn bucket(dir: &Path, prefix: &str) -> PathBuf {
    dir.join("buckets/raw").join(prefix)
}

async fn wait_gone(app: &axum::Router, name: &str) {
    for _ in 0..300 {
        let (status, answer) =
            call(app, "DescribeDeliveryStream", json!({"DeliveryStreamName": name})).await;
        if status == StatusCode::BAD_REQUEST {
            assert_eq!(answer["__type"], "ResourceNotFoundException");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("delivery stream {name:?} was not deleted within 30 s");
}
