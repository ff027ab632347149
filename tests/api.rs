//! The Firehose API in process (router + a real log and a local-directory bucket), no socket:
//! envelope checks, error shapes and a full put -> object round trip. The real clients (aws
//! CLI, boto3) and real S3 are exercised by tests/clients.

use std::path::Path;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use hydrant::api::router;
use hydrant::server::Hydrant;
use serde_json::{json, Value};
use tower::ServiceExt;

mod common;

fn config(dir: &Path, interval: u32) -> hydrant::plan::ServerPlan {
    let yaml = format!(
        "data_dir: {data}\nobject_stores:\n  local: {{ type: local, root: {root} }}\ndelivery_streams:\n  \
         - DeliveryStreamName: clicks\n    ExtendedS3DestinationConfiguration:\n      \
         BucketARN: arn:aws:s3:::raw\n      Prefix: clicks/\n      \
         BufferingHints: {{ SizeInMBs: 1, IntervalInSeconds: {interval} }}\n      CompressionFormat: GZIP\n    \
         hydrant: {{ object_store: local, shards: 2 }}\n",
        data = dir.join("data").display(),
        root = dir.join("buckets").display(),
    );
    hydrant::plan::parse(&yaml, dir).expect("valid test config")
}

async fn call(
    app: &axum::Router,
    target: &str,
    content_type: &str,
    body: &str,
) -> (StatusCode, Value, bool) {
    let request = Request::post("/")
        .header("x-amz-target", target)
        .header("content-type", content_type)
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let has_request_id = response.headers().contains_key("x-amzn-requestid");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null), has_request_id)
}

async fn put_batch(app: &axum::Router, body: Value) -> (StatusCode, Value, bool) {
    call(app, "Firehose_20150804.PutRecordBatch", "application/x-amz-json-1.1", &body.to_string())
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_record_batch_answers_per_record_and_delivers_one_gzip_object() {
    let dir = tempfile::tempdir().unwrap();
    let hydrant = Hydrant::start(&config(dir.path(), 0)).unwrap();
    let app = router(hydrant.state.clone());
    let records: Vec<Value> =
        (0..20).map(|i| json!({"Data": base64(&format!("record-{i}\n"))})).collect();
    let (status, body, has_id) =
        put_batch(&app, json!({"DeliveryStreamName": "clicks", "Records": records})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(has_id);
    assert_eq!(body["FailedPutCount"], 0);
    assert_eq!(body["Encrypted"], false);
    let responses = body["RequestResponses"].as_array().unwrap();
    assert_eq!(responses.len(), 20);
    assert!(responses.iter().all(|r| r["RecordId"].is_string() && r.get("ErrorCode").is_none()));

    // Zero buffering: objects appear within moments; every record exactly once.
    let root = dir.path().join("buckets/raw/clicks");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut lines = Vec::new();
    while Instant::now() < deadline {
        lines = read_all_gzip(&root);
        if lines.len() >= 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    lines.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("record-{i}")).collect();
    expected.sort();
    assert_eq!(lines, expected);
    hydrant.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_firehose_types_statuses_and_request_ids() {
    let dir = tempfile::tempdir().unwrap();
    let hydrant = Hydrant::start(&config(dir.path(), 60)).unwrap();
    let app = router(hydrant.state.clone());
    let json11 = "application/x-amz-json-1.1";
    let cases: Vec<(&str, &str, String, &str)> = vec![
        ("Firehose_20150804.PutRecordBatch", json11, "{not json".into(), "SerializationException"),
        ("Firehose_20150804.PutRecordBatch", "text/plain", "{}".into(), "SerializationException"),
        ("Firehose_20150804.Nope", json11, "{}".into(), "UnknownOperationException"),
        (
            "Kinesis_20131202.RegisterStreamConsumer",
            json11,
            "{}".into(),
            "UnknownOperationException",
        ),
        ("DynamoDB_20120810.PutItem", json11, "{}".into(), "UnknownOperationException"),
        (
            "Firehose_20150804.PutRecordBatch",
            json11,
            json!({"DeliveryStreamName": "missing", "Records": [{"Data": "YQ=="}]}).to_string(),
            "ResourceNotFoundException",
        ),
        (
            "Firehose_20150804.PutRecordBatch",
            json11,
            json!({"DeliveryStreamName": "bad name!", "Records": [{"Data": "YQ=="}]}).to_string(),
            "ValidationException",
        ),
        (
            "Firehose_20150804.PutRecordBatch",
            json11,
            json!({"DeliveryStreamName": "clicks", "Records": []}).to_string(),
            "ValidationException",
        ),
        (
            "Firehose_20150804.PutRecordBatch",
            json11,
            json!({"DeliveryStreamName": "clicks", "Records": vec![json!({"Data": "YQ=="}); 501]})
                .to_string(),
            "ValidationException",
        ),
        (
            "Firehose_20150804.PutRecord",
            json11,
            json!({"DeliveryStreamName": "clicks", "Record": {"Data": "%%%"}}).to_string(),
            "SerializationException",
        ),
        (
            "Firehose_20150804.PutRecord",
            json11,
            json!({"DeliveryStreamName": "clicks"}).to_string(),
            "ValidationException",
        ),
    ];
    for (target, content_type, body, expected) in cases {
        let (status, answer, has_id) = call(&app, target, content_type, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{target} {answer}");
        assert_eq!(answer["__type"], expected, "{target} {content_type} {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(has_id);
    }
    // A parser error quotes what it refused: a caller does not get a megabyte back.
    let huge = json!({"DeliveryStreamName": "clicks", "Records": "A".repeat(1 << 20)}).to_string();
    let (status, answer, _) = call(&app, "Firehose_20150804.PutRecordBatch", json11, &huge).await;
    assert_eq!(
        (status, answer["__type"].as_str()),
        (StatusCode::BAD_REQUEST, Some("SerializationException"))
    );
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.starts_with("request body is not a valid Firehose JSON request: invalid type"),
        "{message}"
    );
    assert!(
        message.len() < 4200 && message.ends_with("(message cut at 4096 characters)"),
        "{}",
        message.len()
    );
    hydrant.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_describe_follow_the_firehose_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let hydrant = Hydrant::start(&config(dir.path(), 60)).unwrap();
    let app = router(hydrant.state.clone());
    let (status, list, _) =
        call(&app, "Firehose_20150804.ListDeliveryStreams", "application/x-amz-json-1.1", "{}")
            .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list, json!({"DeliveryStreamNames": ["clicks"], "HasMoreDeliveryStreams": false}));
    let (status, described, _) = call(
        &app,
        "Firehose_20150804.DescribeDeliveryStream",
        "application/x-amz-json-1.1",
        r#"{"DeliveryStreamName":"clicks"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let d = &described["DeliveryStreamDescription"];
    assert_eq!(
        d["DeliveryStreamARN"],
        "arn:aws:firehose:us-east-1:000000000000:deliverystream/clicks"
    );
    assert_eq!(d["DeliveryStreamStatus"], "ACTIVE");
    assert_eq!(d["VersionId"], "1");
    let s3 = &d["Destinations"][0]["ExtendedS3DestinationDescription"];
    assert_eq!(s3["CompressionFormat"], "GZIP");
    assert_eq!(s3["BufferingHints"], json!({"SizeInMBs": 1, "IntervalInSeconds": 60}));
    assert_eq!(d["Destinations"][0]["S3DestinationDescription"]["BucketARN"], "arn:aws:s3:::raw");
    hydrant.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_written_inside_urls_appear_in_no_describe_answer_and_no_debug_output() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "data_dir: {data}\nobject_stores:\n  local: {{ type: local, root: {root} }}\ndelivery_streams:\n\
         - DeliveryStreamName: warehouse\n  RedshiftDestinationConfiguration:\n    \
           ClusterJDBCURL: \"postgres://loader:hunter21@127.0.0.1:1/db?password=hunter22\"\n    \
           CopyCommand: {{ DataTableName: events }}\n    Username: loader\n    \
           S3Configuration: {{ BucketARN: arn:aws:s3:::staging }}\n  hydrant: {{ object_store: local }}\n\
         - DeliveryStreamName: hooks\n  HttpEndpointDestinationConfiguration:\n    \
           EndpointConfiguration: {{ Url: \"http://hook:hunter23@127.0.0.1:1/in\", Name: recv }}\n    \
           S3Configuration: {{ BucketARN: arn:aws:s3:::failed }}\n  hydrant: {{ object_store: local }}\n",
        data = dir.path().join("data").display(),
        root = dir.path().join("buckets").display(),
    );
    let cfg = hydrant::plan::parse(&yaml, dir.path()).expect("valid test config");
    let debug = format!("{cfg:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    let hydrant = Hydrant::start(&cfg).unwrap();
    let app = router(hydrant.state.clone());
    for (name, member, field) in [
        ("warehouse", "RedshiftDestinationDescription", "ClusterJDBCURL"),
        ("hooks", "HttpEndpointDestinationDescription", "EndpointConfiguration"),
    ] {
        let (status, described, _) = call(
            &app,
            "Firehose_20150804.DescribeDeliveryStream",
            "application/x-amz-json-1.1",
            &json!({"DeliveryStreamName": name}).to_string(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{described}");
        let text = described.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        let shown = &described["DeliveryStreamDescription"]["Destinations"][0][member][field];
        assert!(shown.to_string().contains("<redacted>"), "{shown}");
    }
    drop(app);
    hydrant.shutdown().await;
}

fn base64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn read_all_gzip(root: &Path) -> Vec<String> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "gz") {
                let mut text = String::new();
                flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
                    .read_to_string(&mut text)
                    .unwrap();
                out.extend(text.lines().map(str::to_string));
            }
        }
    }
    out
}

// --- auth: sigv4 through the router ------------------------------------------------------------

fn sigv4_config(dir: &Path) -> hydrant::plan::ServerPlan {
    let yaml = format!(
        "data_dir: {data}\nobject_stores:\n  local: {{ type: local, root: {root} }}\n\
         auth:\n  mode: sigv4\n  credentials:\n    \
         - {{ access_key_id: AKIDADMIN, secret_access_key: admin-secret }}\n    \
         - {{ access_key_id: AKIDCLICKS, secret_access_key: clicks-secret, streams: [clicks, ghost] }}\n    \
         - {{ access_key_id: AKIDOPS, secret_access_key: ops-secret, actions: [\"firehose:*\"] }}\n    \
         - {{ access_key_id: AKIDREAD, secret_access_key: read-secret, \
              actions: [\"firehose:Describe*\", \"firehose:List*\"] }}\n\
         api_streams: {{ object_stores: [local] }}\n\
         delivery_streams:\n{clicks}{orders}",
        data = dir.join("data").display(),
        root = dir.join("buckets").display(),
        clicks = stream_block("clicks"),
        orders = stream_block("orders"),
    );
    hydrant::plan::parse(&yaml, dir).expect("valid test config")
}

fn stream_block(name: &str) -> String {
    format!(
        "  - DeliveryStreamName: {name}\n    ExtendedS3DestinationConfiguration:\n      \
         BucketARN: arn:aws:s3:::raw\n      Prefix: {name}/\n    hydrant: {{ object_store: local, shards: 1 }}\n"
    )
}

/// A request signed now with aws-sigv4, as an AWS SDK signs it.
fn signed_request(key: &str, secret: &str, operation: &str, body: &str) -> Request<Body> {
    // SDKs always send the length (a denied call with a small body is read, so its answer can
    // name the stream; one of unknown length is refused before it is read).
    let mut request = Request::post("/").header("content-length", body.len().to_string());
    for (name, value) in common::signed_headers(key, secret, operation, body.as_bytes()) {
        request = request.header(name, value);
    }
    request.body(Body::from(body.to_owned())).unwrap()
}

async fn send(app: &axum::Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    assert!(response.headers().contains_key("x-amzn-requestid"));
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_sigv4_unsigned_calls_are_refused_but_health_and_metrics_stay_open() {
    let dir = tempfile::tempdir().unwrap();
    let hydrant = Hydrant::start(&sigv4_config(dir.path())).unwrap();
    let app = router(hydrant.state.clone());
    let (status, answer, has_id) =
        call(&app, "Firehose_20150804.ListDeliveryStreams", "application/x-amz-json-1.1", "{}")
            .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["__type"], "MissingAuthenticationTokenException");
    assert!(has_id);
    // Auth comes first: an unsigned call learns nothing about targets or streams.
    let (status, answer, _) = call(&app, "Nope", "text/plain", "").await;
    assert_eq!(
        (status, answer["__type"].as_str()),
        (StatusCode::FORBIDDEN, Some("MissingAuthenticationTokenException"))
    );

    for path in ["/healthz", "/metrics"] {
        let response =
            app.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let (status, answer) =
        send(&app, signed_request("AKIDADMIN", "wrong-secret", "ListDeliveryStreams", "{}")).await;
    assert_eq!(
        (status, answer["__type"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidSignatureException"))
    );
    let metrics = hydrant.state.metrics.render();
    for reason in ["missing", "signature_mismatch"] {
        assert!(
            metrics.contains(&format!("hydrant_auth_failures_total{{reason=\"{reason}\"}}")),
            "{reason} not counted:\n{metrics}"
        );
    }
    hydrant.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_may_call_only_the_operations_its_actions_allow() {
    let dir = tempfile::tempdir().unwrap();
    let hydrant = Hydrant::start(&sigv4_config(dir.path())).unwrap();
    let app = router(hydrant.state.clone());
    let create = json!({
        "DeliveryStreamName": "api",
        "ExtendedS3DestinationConfiguration": {"BucketARN": "arn:aws:s3:::raw", "Prefix": "api/"},
        "hydrant": {"object_store": "local", "shards": 1}
    })
    .to_string();
    let named = |name: &str| json!({"DeliveryStreamName": name}).to_string();
    let update = json!({
        "DeliveryStreamName": "api", "CurrentDeliveryStreamVersionId": "1",
        "DestinationId": "destinationId-000000000001",
        "ExtendedS3DestinationUpdate": {"Prefix": "moved/"}
    })
    .to_string();
    let tag =
        json!({"DeliveryStreamName": "api", "Tags": [{"Key": "k", "Value": "v"}]}).to_string();
    let control_plane = [
        ("CreateDeliveryStream", create.clone()),
        ("UpdateDestination", update),
        ("TagDeliveryStream", tag),
        ("StopDeliveryStreamEncryption", named("api")),
        ("DeleteDeliveryStream", named("api")),
    ];

    // An operator key (firehose:*) creates the stream the others then try to change.
    let (status, answer) =
        send(&app, signed_request("AKIDOPS", "ops-secret", "CreateDeliveryStream", &create)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    // Keys without `actions` (with or without a stream allow-list): data plane and lookups.
    for (key, secret) in [("AKIDADMIN", "admin-secret"), ("AKIDCLICKS", "clicks-secret")] {
        for (operation, body) in &control_plane {
            let (status, answer) = send(&app, signed_request(key, secret, operation, body)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{key} {operation}: {answer}");
            assert_eq!(answer["__type"], "AccessDeniedException", "{key} {operation}: {answer}");
            let message = answer["message"].as_str().unwrap();
            let resource = "arn:aws:firehose:us-east-1:000000000000:deliverystream/api";
            assert!(
                message.starts_with(&format!(
                    "User: {key} is not authorized to perform: firehose:{operation} on resource: \
                     {resource} because no identity-based policy allows the \
                     firehose:{operation} action;"
                )),
                "{message}"
            );
            assert!(
                message.contains(&format!("add \"firehose:{operation}\""))
                    && message.contains("auth.credentials[].actions"),
                "{message}"
            );
        }
    }
    // A read-only key may describe and list, not put.
    let (status, answer) = send(
        &app,
        signed_request("AKIDREAD", "read-secret", "DescribeDeliveryStream", &named("api")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["DeliveryStreamDescription"]["VersionId"], "1", "nothing was updated");
    let put = json!({"DeliveryStreamName": "api", "Records": [{"Data": base64("x\n")}]});
    let (_, answer) =
        send(&app, signed_request("AKIDREAD", "read-secret", "PutRecordBatch", &put.to_string()))
            .await;
    assert_eq!(answer["__type"], "AccessDeniedException", "{answer}");
    let (_, answer) =
        send(&app, signed_request("AKIDADMIN", "admin-secret", "PutRecordBatch", &put.to_string()))
            .await;
    assert_eq!(answer["FailedPutCount"], 0, "{answer}");

    // The operator key may do everything.
    for (operation, body) in &control_plane[1..] {
        let (status, answer) =
            send(&app, signed_request("AKIDOPS", "ops-secret", operation, body)).await;
        assert_eq!(status, StatusCode::OK, "{operation}: {answer}");
    }
    hydrant.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_with_an_allow_list_reaches_only_its_streams() {
    let dir = tempfile::tempdir().unwrap();
    let hydrant = Hydrant::start(&sigv4_config(dir.path())).unwrap();
    let app = router(hydrant.state.clone());
    let put = |stream: &str| {
        json!({"DeliveryStreamName": stream, "Records": [{"Data": base64("x\n")}]}).to_string()
    };

    let (status, answer) =
        send(&app, signed_request("AKIDCLICKS", "clicks-secret", "PutRecordBatch", &put("clicks")))
            .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["FailedPutCount"], 0);

    for (operation, body) in [
        ("PutRecordBatch", put("orders")),
        (
            "PutRecord",
            json!({"DeliveryStreamName": "orders", "Record": {"Data": "eA=="}}).to_string(),
        ),
        ("DescribeDeliveryStream", json!({"DeliveryStreamName": "orders"}).to_string()),
        ("DescribeDeliveryStream", json!({"DeliveryStreamName": "unknown"}).to_string()),
    ] {
        let (status, answer) =
            send(&app, signed_request("AKIDCLICKS", "clicks-secret", operation, &body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{operation} {answer}");
        assert_eq!(answer["__type"], "AccessDeniedException", "{operation} {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.contains("AKIDCLICKS") && message.contains(&format!("firehose:{operation}")),
            "{message}"
        );
    }

    // Listing shows only the key's streams; the admin key sees them all.
    let (_, list) =
        send(&app, signed_request("AKIDCLICKS", "clicks-secret", "ListDeliveryStreams", "{}"))
            .await;
    assert_eq!(list["DeliveryStreamNames"], json!(["clicks"]));
    let (_, list) =
        send(&app, signed_request("AKIDADMIN", "admin-secret", "ListDeliveryStreams", "")).await;
    assert_eq!(list["DeliveryStreamNames"], json!(["clicks", "orders"]));
    let (status, _) =
        send(&app, signed_request("AKIDADMIN", "admin-secret", "PutRecordBatch", &put("orders")))
            .await;
    assert_eq!(status, StatusCode::OK);

    // An allowed name that does not exist is not found, without naming the other streams.
    let (status, answer) = send(
        &app,
        signed_request(
            "AKIDCLICKS",
            "clicks-secret",
            "DescribeDeliveryStream",
            r#"{"DeliveryStreamName":"ghost"}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["__type"], "ResourceNotFoundException");
    assert!(!answer["message"].as_str().unwrap().contains("orders"), "{answer}");
    assert!(hydrant
        .state
        .metrics
        .render()
        .contains("hydrant_auth_failures_total{reason=\"access_denied\"}"));
    hydrant.shutdown().await;
}
