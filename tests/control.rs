//! The control plane in process (router + real logs + a local-directory bucket): create,
//! update, tag and delete API streams; the config file's ownership; restarts; reloads; the
//! graceful drain. Real clients and real S3 are exercised by tests/clients/test_control_plane.py.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use hydrant::api::router;
use hydrant::server::Hydrant;
use serde_json::{json, Value};
use tower::ServiceExt;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_stream_is_created_updated_and_deleted_after_delivering_its_buffers() {
    let dir = tempfile::tempdir().unwrap();
    let hydrant = Hydrant::start(&config(dir.path(), 60, &["file"])).unwrap();
    let app = router(hydrant.state.clone());

    let created = ok(&app, "CreateDeliveryStream", api_stream("api", 300)).await;
    assert_eq!(
        created,
        json!({"DeliveryStreamARN": "arn:aws:firehose:us-east-1:000000000000:deliverystream/api"})
    );
    assert!(dir.path().join("data/api-streams/api.json").exists());
    let d = ok(&app, "DescribeDeliveryStream", json!({"DeliveryStreamName": "api"})).await;
    let d = &d["DeliveryStreamDescription"];
    assert_eq!(d["DeliveryStreamStatus"], "ACTIVE");
    assert_eq!(d["VersionId"], "1");
    assert!(d.get("LastUpdateTimestamp").is_none());
    let list = ok(&app, "ListDeliveryStreams", json!({})).await;
    assert_eq!(list["DeliveryStreamNames"], json!(["api", "file"]));

    let before = records("before", 5);
    put(&app, "api", &before).await;

    let message = fails(
        &app,
        "UpdateDestination",
        json!({"DeliveryStreamName": "api", "CurrentDeliveryStreamVersionId": "2",
               "DestinationId": "destinationId-000000000001",
               "ExtendedS3DestinationUpdate": {"Prefix": "v2/"}}),
        "ConcurrentModificationException",
    )
    .await;
    assert!(message.contains("current version id: 1"), "{message}");
    fails(
        &app,
        "UpdateDestination",
        json!({"DeliveryStreamName": "api", "CurrentDeliveryStreamVersionId": "1",
               "DestinationId": "destinationId-000000000002",
               "ExtendedS3DestinationUpdate": {"Prefix": "v2/"}}),
        "InvalidArgumentException",
    )
    .await;
    let message = fails(
        &app,
        "UpdateDestination",
        json!({"DeliveryStreamName": "api", "CurrentDeliveryStreamVersionId": "1",
               "DestinationId": "destinationId-000000000001",
               "ExtendedS3DestinationUpdate": {"Prefix": "v2/", "BufferingHnts": {}}}),
        "InvalidArgumentException",
    )
    .await;
    assert!(message.contains("BufferingHnts"), "{message}");
    ok(
        &app,
        "UpdateDestination",
        json!({"DeliveryStreamName": "api", "CurrentDeliveryStreamVersionId": "1",
               "DestinationId": "destinationId-000000000001",
               "ExtendedS3DestinationUpdate": {"Prefix": "v2/"}}),
    )
    .await;
    let d = ok(&app, "DescribeDeliveryStream", json!({"DeliveryStreamName": "api"})).await;
    let d = &d["DeliveryStreamDescription"];
    assert_eq!(d["VersionId"], "2");
    assert!(d["LastUpdateTimestamp"].is_number());
    let s3 = &d["Destinations"][0]["ExtendedS3DestinationDescription"];
    assert_eq!(s3["Prefix"], "v2/");
    // Members not given are kept.
    assert_eq!(s3["BufferingHints"], json!({"SizeInMBs": 1, "IntervalInSeconds": 300}));

    let after = records("after", 5);
    put(&app, "api", &after).await;

    // Delete: the records buffered for 300 s are delivered first, then the stream is gone.
    ok(&app, "DeleteDeliveryStream", json!({"DeliveryStreamName": "api"})).await;
    let (status, answer) =
        call(&app, "PutRecord", json!({"DeliveryStreamName": "api", "Record": {"Data": "YQ=="}}))
            .await;
    assert_eq!(
        (status, answer["__type"].as_str()),
        (StatusCode::BAD_REQUEST, Some("ResourceNotFoundException"))
    );
    let mut gone = false;
    for _ in 0..300 {
        let (status, answer) =
            call(&app, "DescribeDeliveryStream", json!({"DeliveryStreamName": "api"})).await;
        if status == StatusCode::BAD_REQUEST {
            assert_eq!(answer["__type"], "ResourceNotFoundException");
            gone = true;
            break;
        }
        assert_eq!(answer["DeliveryStreamDescription"]["DeliveryStreamStatus"], "DELETING");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the stream was never removed");
    let all: Vec<String> = before.iter().chain(&after).cloned().collect();
    assert_eq!(lines_under(&bucket(dir.path(), "v2")), sorted(&all));
    // Every object was written by the updated stream: new prefix, version 2 in the name.
    for (key, _) in objects(&bucket(dir.path(), "v2")) {
        let file = key.rsplit('/').next().unwrap();
        assert!(file.starts_with("api-2-"), "{key}");
    }
    assert!(objects(&bucket(dir.path(), "api")).is_empty());
    assert!(!dir.path().join("data/api-streams/api.json").exists());
    assert!(!dir.path().join("data/streams/api").exists());
    // The name is free again.
    ok(&app, "CreateDeliveryStream", api_stream("api", 300)).await;
    hydrant.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_streams_can_only_be_read_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let hydrant = Hydrant::start(&config(dir.path(), 60, &["file"])).unwrap();
    let app = router(hydrant.state.clone());
    let name = json!({"DeliveryStreamName": "file"});
    let changes = [
        ("DeleteDeliveryStream", name.clone()),
        (
            "UpdateDestination",
            json!({"DeliveryStreamName": "file", "CurrentDeliveryStreamVersionId": "1",
                   "DestinationId": "destinationId-000000000001",
                   "ExtendedS3DestinationUpdate": {"Prefix": "x/"}}),
        ),
        ("TagDeliveryStream", json!({"DeliveryStreamName": "file", "Tags": [{"Key": "a"}]})),
        ("UntagDeliveryStream", json!({"DeliveryStreamName": "file", "TagKeys": ["a"]})),
        ("StartDeliveryStreamEncryption", name.clone()),
        ("StopDeliveryStreamEncryption", name.clone()),
    ];
    for (op, body) in changes {
        let message = fails(&app, op, body, "ResourceInUseException").await;
        assert!(message.contains("config file"), "{op}: {message}");
    }
    let tags = ok(&app, "ListTagsForDeliveryStream", name.clone()).await;
    assert_eq!(tags, json!({"Tags": [], "HasMoreTags": false}));
    let message =
        fails(&app, "CreateDeliveryStream", api_stream("file", 60), "ResourceInUseException").await;
    assert!(message.contains("already exists"), "{message}");
    for op in ["DeleteDeliveryStream", "TagDeliveryStream", "ListTagsForDeliveryStream"] {
        let body = json!({"DeliveryStreamName": "missing", "Tags": [{"Key": "a"}]});
        let body =
            if op == "TagDeliveryStream" { body } else { json!({"DeliveryStreamName": "missing"}) };
        fails(&app, op, body, "ResourceNotFoundException").await;
    }
    hydrant.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_requests_are_validated_like_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let hydrant = Hydrant::start(&config(dir.path(), 60, &[])).unwrap();
    let app = router(hydrant.state.clone());
    let mut typo = api_stream("s", 60);
    typo["ExtendedS3DestinationConfiguration"]["BufferingHnts"] = json!({});
    let message = fails(&app, "CreateDeliveryStream", typo, "InvalidArgumentException").await;
    assert!(
        message.contains("ExtendedS3DestinationConfiguration") && message.contains("BufferingHnts"),
        "{message}"
    );
    let mut top = api_stream("s", 60);
    top["Bogus"] = json!(1);
    let message = fails(&app, "CreateDeliveryStream", top, "InvalidArgumentException").await;
    assert!(message.contains("Bogus"), "{message}");
    let mut kinesis = api_stream("s", 60);
    kinesis["DeliveryStreamType"] = json!("KinesisStreamAsSource");
    let message = fails(&app, "CreateDeliveryStream", kinesis, "InvalidArgumentException").await;
    assert!(message.contains("DirectPut"), "{message}");
    let mut prefix = api_stream("s", 60);
    prefix["ExtendedS3DestinationConfiguration"]["Prefix"] = json!("!{partitionKeyFromQuery:x}/");
    let message = fails(&app, "CreateDeliveryStream", prefix, "InvalidArgumentException").await;
    assert!(message.contains("ExtendedS3DestinationConfiguration.Prefix"), "{message}");
    let mut pattern = api_stream("s", 60);
    pattern["ExtendedS3DestinationConfiguration"]["Prefix"] = json!("!{timestamp:yyyy-bb}/");
    pattern["ExtendedS3DestinationConfiguration"]["ErrorOutputPrefix"] =
        json!("e/!{firehose:error-output-type}/");
    let message = fails(&app, "CreateDeliveryStream", pattern, "InvalidArgumentException").await;
    assert!(
        message.contains(
            "ExtendedS3DestinationConfiguration.Prefix: Prefix has an invalid expression \
             `!{timestamp:yyyy-bb}`"
        ),
        "{message}"
    );
    let mut store = api_stream("s", 60);
    store["hydrant"]["object_store"] = json!("nowhere");
    let message = fails(&app, "CreateDeliveryStream", store, "InvalidArgumentException").await;
    assert!(message.contains("hydrant.object_store"), "{message}");
    let none = json!({"DeliveryStreamName": "s", "hydrant": {"object_store": "local"}});
    let message = fails(&app, "CreateDeliveryStream", none, "InvalidArgumentException").await;
    assert!(message.contains("no destination"), "{message}");
    fails(&app, "CreateDeliveryStream", json!({}), "ValidationException").await;
    // Nothing was left behind by the refused calls.
    let list = ok(&app, "ListDeliveryStreams", json!({})).await;
    assert_eq!(list["DeliveryStreamNames"], json!([]));
    assert!(!dir.path().join("data/streams/s").exists());
    hydrant.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_page_in_order_and_stop_at_fifty() {
    let dir = tempfile::tempdir().unwrap();
    let hydrant = Hydrant::start(&config(dir.path(), 60, &[])).unwrap();
    let app = router(hydrant.state.clone());
    ok(&app, "CreateDeliveryStream", api_stream("t", 60)).await;
    ok(
        &app,
        "TagDeliveryStream",
        json!({"DeliveryStreamName": "t", "Tags": [{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "data"}]}),
    )
    .await;
    let page =
        ok(&app, "ListTagsForDeliveryStream", json!({"DeliveryStreamName": "t", "Limit": 1})).await;
    assert_eq!(page, json!({"Tags": [{"Key": "team", "Value": "data"}], "HasMoreTags": true}));
    let page = ok(
        &app,
        "ListTagsForDeliveryStream",
        json!({"DeliveryStreamName": "t", "ExclusiveStartTagKey": "team"}),
    )
    .await;
    assert_eq!(page, json!({"Tags": [{"Key": "env", "Value": "prod"}], "HasMoreTags": false}));
    ok(
        &app,
        "UntagDeliveryStream",
        json!({"DeliveryStreamName": "t", "TagKeys": ["team", "nope"]}),
    )
    .await;
    let all = ok(&app, "ListTagsForDeliveryStream", json!({"DeliveryStreamName": "t"})).await;
    assert_eq!(all["Tags"], json!([{"Key": "env", "Value": "prod"}]));
    let many: Vec<Value> = (0..50).map(|i| json!({"Key": format!("k{i}"), "Value": "v"})).collect();
    fails(
        &app,
        "TagDeliveryStream",
        json!({"DeliveryStreamName": "t", "Tags": many}),
        "LimitExceededException",
    )
    .await;
    let message = fails(
        &app,
        "TagDeliveryStream",
        json!({"DeliveryStreamName": "t", "Tags": [{"Key": "aws:reserved"}]}),
        "InvalidArgumentException",
    )
    .await;
    assert!(message.contains("Tags[0].Key"), "{message}");
    let message = fails(
        &app,
        "StartDeliveryStreamEncryption",
        json!({"DeliveryStreamName": "t"}),
        "InvalidArgumentException",
    )
    .await;
    assert!(message.contains("storage.encryption"), "{message}");
    hydrant.shutdown().await;
}

/// Puts three records tagged `tag` to stream `enc`; whether they are encrypted at rest.
async fn put_encrypted(app: &axum::Router, tag: &str) -> bool {
    use base64::Engine;
    let data: Vec<Value> = records(tag, 3)
        .iter()
        .map(|r| json!({"Data": base64::engine::general_purpose::STANDARD.encode(r)}))
        .collect();
    let answer =
        ok(app, "PutRecordBatch", json!({"DeliveryStreamName": "enc", "Records": data})).await;
    assert_eq!(answer["FailedPutCount"], 0, "{answer}");
    answer["Encrypted"].as_bool().unwrap()
}

/// Waits until stream `enc` has delivered, in the clear, exactly the records `put_encrypted`
/// sent with these tags.
async fn wait_for_enc_records(dir: &Path, tags: &[&str]) {
    let mut expected: Vec<String> =
        tags.iter().flat_map(|tag| records(tag, 3)).map(|r| r.trim_end().to_string()).collect();
    expected.sort();
    wait_until("every record delivered", || lines_under(&bucket(dir, "enc")) == expected).await;
}

/// The stream's log files, concatenated (segments and all).
fn log_bytes(dir: &Path, stream: &str) -> Vec<u8> {
    let shard = dir.join("data/streams").join(stream).join("shard-0000");
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(shard).unwrap().filter_map(Result::ok) {
        if entry.path().extension().is_some_and(|e| e == "seg") {
            bytes.extend(std::fs::read(entry.path()).unwrap());
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_at_rest_starts_and_stops_on_a_live_api_stream_and_survives_a_restart() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let key = |byte: u8| base64::engine::general_purpose::STANDARD.encode([byte; 32]);
    let keys = format!(
        "storage:\n  encryption:\n    active_key: k1\n    keys:\n      - {{ id: k1, base64: \"{}\" }}\n      \
         - {{ id: k2, base64: \"{}\" }}\ndelivery_streams:\n",
        key(1),
        key(2)
    );
    let text = yaml(dir.path(), 1, &[]).replace("delivery_streams:\n", &keys);
    let cfg = hydrant::plan::parse(&text, dir.path()).unwrap();
    let hydrant = Hydrant::start(&cfg).unwrap();
    let app = router(hydrant.state.clone());
    ok(&app, "CreateDeliveryStream", api_stream("enc", 1)).await;
    let name = json!({"DeliveryStreamName": "enc"});
    let status =
        |d: &Value| d["DeliveryStreamDescription"]["DeliveryStreamEncryptionConfiguration"].clone();
    assert!(!put_encrypted(&app, "plain").await);
    let arn = "arn:aws:kms:us-east-1:000000000000:key/k2";
    ok(
        &app,
        "StartDeliveryStreamEncryption",
        json!({"DeliveryStreamName": "enc", "DeliveryStreamEncryptionConfigurationInput":
               {"KeyType": "CUSTOMER_MANAGED_CMK", "KeyARN": arn}}),
    )
    .await;
    let described = ok(&app, "DescribeDeliveryStream", name.clone()).await;
    assert_eq!(
        status(&described),
        json!({"Status": "ENABLED", "KeyType": "CUSTOMER_MANAGED_CMK", "KeyARN": arn})
    );
    assert!(put_encrypted(&app, "secret").await);
    // Wrong keys are refused and change nothing.
    let message = fails(
        &app,
        "StartDeliveryStreamEncryption",
        json!({"DeliveryStreamName": "enc", "DeliveryStreamEncryptionConfigurationInput":
               {"KeyType": "CUSTOMER_MANAGED_CMK", "KeyARN": "arn:aws:kms:us-east-1:1:key/k9"}}),
        "InvalidKMSResourceException",
    )
    .await;
    assert!(message.contains("k1, k2"), "{message}");
    fails(
        &app,
        "StartDeliveryStreamEncryption",
        json!({"DeliveryStreamName": "enc", "DeliveryStreamEncryptionConfigurationInput":
               {"KeyType": "AWS_OWNED_CMK", "KeyARN": arn}}),
        "InvalidArgumentException",
    )
    .await;
    let log = log_bytes(dir.path(), "enc");
    assert!(
        contains(&log, "plain-0") && !contains(&log, "secret-0"),
        "secret records are in the clear"
    );

    // Encryption is part of the stored stream: a restart keeps it.
    drop(app);
    hydrant.shutdown().await;
    let hydrant = Hydrant::start(&cfg).unwrap();
    let app = router(hydrant.state.clone());
    let described = ok(&app, "DescribeDeliveryStream", name.clone()).await;
    assert_eq!(status(&described)["Status"], "ENABLED");
    assert!(put_encrypted(&app, "again").await);
    ok(&app, "StopDeliveryStreamEncryption", name.clone()).await;
    let described = ok(&app, "DescribeDeliveryStream", name.clone()).await;
    assert_eq!(status(&described), json!({"Status": "DISABLED"}));
    assert!(!put_encrypted(&app, "after").await);
    let log = log_bytes(dir.path(), "enc");
    assert!(!contains(&log, "again-0") && contains(&log, "after-0"));

    // Every record is delivered, in the clear, whatever it was stored as.
    wait_for_enc_records(dir.path(), &["plain", "secret", "again", "after"]).await;
    drop(app);
    hydrant.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_streams_survive_a_restart_with_their_version_and_tags() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 60, &["file"]);
    let hydrant = Hydrant::start(&cfg).unwrap();
    let app = router(hydrant.state.clone());
    ok(&app, "CreateDeliveryStream", api_stream("kept", 300)).await;
    ok(
        &app,
        "UpdateDestination",
        json!({"DeliveryStreamName": "kept", "CurrentDeliveryStreamVersionId": "1",
               "DestinationId": "destinationId-000000000001",
               "ExtendedS3DestinationUpdate": {"CompressionFormat": "GZIP"}}),
    )
    .await;
    let first = records("first", 3);
    put(&app, "kept", &first).await;
    let before = ok(&app, "DescribeDeliveryStream", json!({"DeliveryStreamName": "kept"})).await;
    drop(app);
    hydrant.shutdown().await;

    let hydrant = Hydrant::start(&cfg).unwrap();
    let app = router(hydrant.state.clone());
    let after = ok(&app, "DescribeDeliveryStream", json!({"DeliveryStreamName": "kept"})).await;
    assert_eq!(before, after);
    assert_eq!(after["DeliveryStreamDescription"]["VersionId"], "2");
    let tags = ok(&app, "ListTagsForDeliveryStream", json!({"DeliveryStreamName": "kept"})).await;
    assert_eq!(tags["Tags"], json!([{"Key": "team", "Value": "web"}]));
    put(&app, "kept", &records("second", 2)).await;
    hydrant.shutdown().await;
    // Both runs' records were drained at their shutdown, gzip objects of version 2.
    let objects = objects(&bucket(dir.path(), "kept"));
    assert!(!objects.is_empty());
    assert!(
        objects.iter().all(|(key, _)| key.contains("kept-2-") && key.ends_with(".gz")),
        "{objects:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_delivers_every_buffered_record() {
    let dir = tempfile::tempdir().unwrap();
    let hydrant = Hydrant::start(&config(dir.path(), 300, &["slow"])).unwrap();
    let app = router(hydrant.state.clone());
    let sent = records("slow", 40);
    put(&app, "slow", &sent).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(objects(&bucket(dir.path(), "slow")).is_empty(), "nothing is due for 300 s");
    drop(app);
    let started = Instant::now();
    hydrant.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(lines_under(&bucket(dir.path(), "slow")), sorted(&sent));
    // And nothing is delivered twice after a restart.
    let hydrant = Hydrant::start(&config(dir.path(), 1, &["slow"])).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    hydrant.shutdown().await;
    assert_eq!(lines_under(&bucket(dir.path(), "slow")), sorted(&sent));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_adds_replaces_and_removes_file_streams() {
    let dir = tempfile::tempdir().unwrap();
    let hydrant = Hydrant::start(&config(dir.path(), 300, &["keep", "change", "drop"])).unwrap();
    let app = router(hydrant.state.clone());
    let control = hydrant.state.control.clone();
    let registry = hydrant.state.registry.clone();
    let first: Vec<(String, Vec<String>)> =
        ["keep", "change", "drop"].iter().map(|s| (s.to_string(), records(s, 4))).collect();
    for (stream, records) in &first {
        put(&app, stream, records).await;
    }
    ok(&app, "CreateDeliveryStream", api_stream("api", 300)).await;

    // A file that reuses the API stream's name is refused as a whole.
    let conflicting = config(dir.path(), 300, &["keep", "api"]);
    let err = control.reload(conflicting).await.unwrap_err();
    assert!(err.to_string().contains("api-streams/api.json"), "{err}");
    assert!(registry.get("drop").is_some());

    let changed_prefix = |streams: &[&str]| {
        let text = yaml(dir.path(), 300, streams).replace("Prefix: change/", "Prefix: changed/");
        hydrant::plan::parse(&text, dir.path()).expect("valid test config")
    };
    let new = changed_prefix(&["keep", "change", "add"]);
    let changes = control.reload(new).await.unwrap();
    let lines: Vec<String> = changes.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("drop removed")), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("change changed: restarted with version 2")),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l == "delivery stream add added"), "{lines:?}");

    // The removed stream delivered what it buffered and is gone; its log is kept.
    wait_until("drop to be removed", || registry.get("drop").is_none()).await;
    assert_eq!(lines_under(&bucket(dir.path(), "drop")), sorted(&first[2].1));
    assert!(dir.path().join("data/streams/drop").exists());
    let d = ok(&app, "DescribeDeliveryStream", json!({"DeliveryStreamName": "change"})).await;
    assert_eq!(d["DeliveryStreamDescription"]["VersionId"], "2");
    let more = records("add", 3);
    put(&app, "add", &more).await;
    put(&app, "change", &records("change-more", 2)).await;
    drop((app, control, registry));
    hydrant.shutdown().await;
    // Nothing lost, nothing twice; the changed stream's buffered records went out under its
    // new prefix and version.
    assert_eq!(lines_under(&bucket(dir.path(), "keep")), sorted(&first[0].1));
    assert_eq!(lines_under(&bucket(dir.path(), "add")), sorted(&more));
    let mut changed: Vec<String> = first[1].1.clone();
    changed.extend(records("change-more", 2));
    assert_eq!(lines_under(&bucket(dir.path(), "changed")), sorted(&changed));
    assert!(objects(&bucket(dir.path(), "changed")).iter().all(|(k, _)| k.contains("change-2-")));

    // The version survives a restart with the same file, and goes up no further.
    let again = changed_prefix(&["keep", "change", "add"]);
    let hydrant = Hydrant::start(&again).unwrap();
    assert_eq!(hydrant.state.registry.get("change").unwrap().version(), 2);
    assert_eq!(hydrant.state.registry.get("keep").unwrap().version(), 1);
    hydrant.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_switches_a_file_streams_encryption_at_rest_from_the_next_record() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let key = base64::engine::general_purpose::STANDARD.encode([3u8; 32]);
    // The server's keys (storage.encryption) encrypt the log only; objects stay plain.
    let with_keys = |encrypt: bool| {
        let input = "    DeliveryStreamEncryptionConfigurationInput: { KeyType: AWS_OWNED_CMK }\n";
        let text = yaml(dir.path(), 1, &["enc"])
            .replace(
                "delivery_streams:\n",
                &format!(
                    "storage: {{ encryption: {{ active_key: k, keys: [{{ id: k, base64: \"{key}\" }}] }} }}\ndelivery_streams:\n"
                ),
            )
            .replace("    hydrant:", &format!("{}    hydrant:", if encrypt { input } else { "" }));
        hydrant::plan::parse(&text, dir.path()).unwrap()
    };
    let hydrant = Hydrant::start(&with_keys(false)).unwrap();
    let app = router(hydrant.state.clone());
    assert!(!put_encrypted(&app, "before").await);
    let changes = hydrant.state.control.reload(with_keys(true)).await.unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(put_encrypted(&app, "sealed").await);
    let log = log_bytes(dir.path(), "enc");
    assert!(contains(&log, "before-0") && !contains(&log, "sealed-0"));
    hydrant.state.control.reload(with_keys(false)).await.unwrap();
    assert!(!put_encrypted(&app, "after").await);
    wait_for_enc_records(dir.path(), &["before", "sealed", "after"]).await;
    drop(app);
    hydrant.shutdown().await;
}

/// An API stream delivering under `prefix` to the local bucket, one shard, a 1 s window.
fn api_stream_at(name: &str, prefix: &str) -> Value {
    let mut stream = api_stream(name, 1);
    stream["ExtendedS3DestinationConfiguration"]["Prefix"] = json!(prefix);
    stream
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

async fn delivered(dir: &Path, prefix: &str, sent: &[String]) {
    let root = bucket(dir, prefix);
    wait_until(&format!("records under {prefix}"), || {
        let got = lines_under(&root);
        sent.iter().all(|r| got.contains(&r.trim_end().to_string()))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_named_dot_and_dot_dot_are_isolated_from_each_other_and_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 1, &["file"]);
    let hydrant = Hydrant::start(&cfg).unwrap();
    let app = router(hydrant.state.clone());
    let streams = [(".", "dot/"), ("..", "dotdot/"), ("x", "x/")];
    for (name, prefix) in streams {
        ok(&app, "CreateDeliveryStream", api_stream_at(name, prefix)).await;
    }
    for (name, prefix) in streams.iter().copied().chain([("file", "file/")]) {
        let sent = records(&format!("first-{}", prefix.trim_end_matches('/')), 3);
        put(&app, name, &sent).await;
        delivered(dir.path(), prefix, &sent).await;
    }
    let data = dir.path().join("data");
    for encoded in ["%2E", "%2E.", "x", "file"] {
        assert!(data.join("streams").join(encoded).join("shard-0000").is_dir(), "{encoded}");
    }
    assert!(!data.join("streams/shard-0000").exists() && !data.join("shard-0000").exists());

    // Deleting "." removes its log and file only.
    ok(&app, "DeleteDeliveryStream", json!({"DeliveryStreamName": "."})).await;
    wait_gone(&app, ".").await;
    assert!(!data.join("streams/%2E").exists());
    assert!(!data.join("api-streams/%2E.json").exists());
    for (name, prefix) in [("..", "dotdot/"), ("x", "x/"), ("file", "file/")] {
        let sent = records(&format!("second-{}", prefix.trim_end_matches('/')), 3);
        put(&app, name, &sent).await;
        delivered(dir.path(), prefix, &sent).await;
    }
    drop(app);
    hydrant.shutdown().await;

    // Across a restart: "..", "x" and "file" come back with their logs, "." does not.
    let hydrant = Hydrant::start(&cfg).unwrap();
    let app = router(hydrant.state.clone());
    let list = ok(&app, "ListDeliveryStreams", json!({})).await;
    assert_eq!(list["DeliveryStreamNames"], json!(["..", "file", "x"]));
    ok(&app, "DeleteDeliveryStream", json!({"DeliveryStreamName": ".."})).await;
    wait_gone(&app, "..").await;
    assert!(!data.join("streams/%2E.").exists());
    for (name, prefix) in [("x", "x/"), ("file", "file/")] {
        let sent = records(&format!("third-{}", prefix.trim_end_matches('/')), 3);
        put(&app, name, &sent).await;
        delivered(dir.path(), prefix, &sent).await;
    }
    // A new "." starts on an empty log of its own.
    ok(&app, "CreateDeliveryStream", api_stream_at(".", "dot2/")).await;
    let sent = records("again", 2);
    put(&app, ".", &sent).await;
    delivered(dir.path(), "dot2/", &sent).await;
    assert_eq!(lines_under(&bucket(dir.path(), "dot2/")), sorted(&sent));
    drop(app);
    hydrant.shutdown().await;
    assert!(data.join("streams").is_dir() && data.join("streams/x/shard-0000").is_dir());
}

fn limited(dir: &Path) -> hydrant::plan::ServerPlan {
    let text = "limits: { max_streams: 2, max_shards: 6, max_shards_per_stream: 4, \
                max_buffer_size_mib: 64 }\n"
        .to_string()
        + &yaml(dir, 60, &["file"]);
    hydrant::plan::parse(&text, dir).expect("valid test config")
}

fn with_shards(name: &str, shards: u32) -> Value {
    let mut stream = api_stream(name, 60);
    stream["hydrant"]["shards"] = json!(shards);
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_clients_get_no_more_streams_shards_or_sandbox_than_the_limits_allow() {
    let dir = tempfile::tempdir().unwrap();
    let hydrant = Hydrant::start(&limited(dir.path())).unwrap();
    let app = router(hydrant.state.clone());
    let create = "CreateDeliveryStream";

    let message = fails(&app, create, with_shards("big", 5), "LimitExceededException").await;
    for needle in ["hydrant.shards", "4 shards per stream", "limits.max_shards_per_stream"] {
        assert!(message.contains(needle), "{needle}: {message}");
    }
    let mut memory = api_stream("big", 60);
    memory["hydrant"]["transform"] = json!({"memory_mib": 4096});
    let message = fails(&app, create, memory, "InvalidArgumentException").await;
    for needle in ["hydrant.transform.memory_mib", "64 MiB", "limits.max_transform_memory_mib"] {
        assert!(message.contains(needle), "{needle}: {message}");
    }
    let mut fuel = api_stream("big", 60);
    fuel["hydrant"]["transform"] = json!({"fuel": 1_000_000_000_000_000u64});
    let message = fails(&app, create, fuel, "InvalidArgumentException").await;
    assert!(message.contains("limits.max_transform_fuel"), "{message}");
    let mut partitions = api_stream("big", 60);
    partitions["hydrant"]["max_partitions"] = json!(1_000_000);
    let message = fails(&app, create, partitions, "InvalidArgumentException").await;
    assert!(message.contains("hydrant.max_partitions"), "{message}");
    let mut buffer = api_stream("big", 60);
    buffer["ExtendedS3DestinationConfiguration"]["BufferingHints"]["SizeInMBs"] = json!(128);
    let message = fails(&app, create, buffer, "InvalidArgumentException").await;
    assert!(
        message.contains("ExtendedS3DestinationConfiguration.BufferingHints.SizeInMBs")
            && message.contains("limits.max_buffer_size_mib"),
        "{message}"
    );
    assert!(!dir.path().join("data/streams/big").exists(), "a refused stream left a log");

    // Shards in total: the file's stream has 1 of the 6.
    ok(&app, create, with_shards("a", 4)).await;
    let message = fails(&app, create, with_shards("b", 2), "LimitExceededException").await;
    for needle in ["limits.max_shards", "5 of the 6", "ask for at most 1"] {
        assert!(message.contains(needle), "{needle}: {message}");
    }
    ok(&app, create, with_shards("b", 1)).await;
    // Streams: two through the API.
    let message = fails(&app, create, with_shards("c", 1), "LimitExceededException").await;
    assert!(message.contains("limits.max_streams"), "{message}");

    // An update may not raise a value past its ceiling either.
    let message = fails(
        &app,
        "UpdateDestination",
        json!({"DeliveryStreamName": "a", "CurrentDeliveryStreamVersionId": "1",
               "DestinationId": "destinationId-000000000001",
               "ExtendedS3DestinationUpdate": {"BufferingHints": {"SizeInMBs": 100}}}),
        "InvalidArgumentException",
    )
    .await;
    assert!(message.contains("limits.max_buffer_size_mib"), "{message}");

    // A deleted stream gives its stream and shards back.
    ok(&app, "DeleteDeliveryStream", json!({"DeliveryStreamName": "b"})).await;
    wait_gone(&app, "b").await;
    ok(&app, create, with_shards("c", 1)).await;
    drop(app);
    hydrant.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_whose_keys_no_store_takes_is_refused_when_the_stream_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let hydrant = Hydrant::start(&config(dir.path(), 60, &[])).unwrap();
    let app = router(hydrant.state.clone());
    for (prefix, error_prefix, field, why) in [
        ("a//b/", None, "Prefix", "empty path segment"),
        ("a/./b/", None, "Prefix", "\".\" path segment"),
        (
            "a/!{timestamp:yyyy}/",
            Some("errors//!{firehose:error-output-type}/"),
            "ErrorOutputPrefix",
            "empty path segment",
        ),
    ] {
        let mut stream = api_stream("blocked", 60);
        stream["ExtendedS3DestinationConfiguration"]["Prefix"] = json!(prefix);
        if let Some(error_prefix) = error_prefix {
            stream["ExtendedS3DestinationConfiguration"]["ErrorOutputPrefix"] = json!(error_prefix);
        }
        let message = fails(&app, "CreateDeliveryStream", stream, "InvalidArgumentException").await;
        assert!(message.contains(field) && message.contains(why), "{prefix}: {message}");
    }
    assert!(!dir.path().join("data/streams/blocked").exists(), "a refused stream left a log");
    drop(app);
    hydrant.shutdown().await;
}

fn buffer_update(version: u32, size_mib: u32) -> Value {
    json!({"DeliveryStreamName": "kept", "CurrentDeliveryStreamVersionId": version.to_string(),
           "DestinationId": "destinationId-000000000001",
           "ExtendedS3DestinationUpdate": {"BufferingHints": {"SizeInMBs": size_mib}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_may_keep_a_value_above_a_lowered_limit_but_never_raise_it() {
    let dir = tempfile::tempdir().unwrap();
    let with_ceiling = |mib: u32| {
        let text =
            format!("limits: {{ max_buffer_size_mib: {mib} }}\n") + &yaml(dir.path(), 60, &[]);
        hydrant::plan::parse(&text, dir.path()).expect("valid test config")
    };
    let hydrant = Hydrant::start(&with_ceiling(128)).unwrap();
    let app = router(hydrant.state.clone());
    let mut stream = api_stream("kept", 60);
    stream["ExtendedS3DestinationConfiguration"]["BufferingHints"]["SizeInMBs"] = json!(100);
    ok(&app, "CreateDeliveryStream", stream).await;
    drop(app);
    hydrant.shutdown().await;

    // The operator lowers the ceiling below what the stream already has.
    let hydrant = Hydrant::start(&with_ceiling(64)).unwrap();
    let app = router(hydrant.state.clone());
    let message =
        fails(&app, "UpdateDestination", buffer_update(1, 128), "InvalidArgumentException").await;
    assert!(message.contains("limits.max_buffer_size_mib") && message.contains("128"), "{message}");
    // Keeping the value, or lowering it, is fine; raising it again is not.
    ok(&app, "UpdateDestination", buffer_update(1, 100)).await;
    ok(&app, "UpdateDestination", buffer_update(2, 90)).await;
    let message =
        fails(&app, "UpdateDestination", buffer_update(3, 100), "InvalidArgumentException").await;
    assert!(message.contains("limits.max_buffer_size_mib"), "{message}");
    ok(&app, "UpdateDestination", buffer_update(3, 64)).await;
    drop(app);
    hydrant.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_streams_through_the_api_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let text = "limits: { max_streams: 0 }\n".to_string() + &yaml(dir.path(), 60, &["file"]);
    let cfg = hydrant::plan::parse(&text, dir.path()).unwrap();
    let hydrant = Hydrant::start(&cfg).unwrap();
    let app = router(hydrant.state.clone());
    let message =
        fails(&app, "CreateDeliveryStream", api_stream("s", 60), "LimitExceededException").await;
    assert!(message.contains("turned off") && message.contains("limits.max_streams"), "{message}");
    put(&app, "file", &records("still", 1)).await;
    drop(app);
    hydrant.shutdown().await;
}
