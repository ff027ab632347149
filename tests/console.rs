//! The console's routes on a real server (an embedded log in a temporary directory), and
//! where it is served (`cargo test --test console`).

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use hydrant::console::{placement, router, Placement};
use hydrant::server::Hydrant;
use serde_json::Value;
use tower::ServiceExt;

fn plan(dir: &std::path::Path, extra: &str) -> hydrant::plan::ServerPlan {
    let yaml = format!(
        "data_dir: {data}\nshutdown_timeout_seconds: 5\n{extra}object_stores:\n  local: {{ type: local, root: {root} }}\n\
         delivery_streams:\n  - DeliveryStreamName: clicks\n    ExtendedS3DestinationConfiguration:\n      \
         BucketARN: arn:aws:s3:::raw\n      Prefix: clicks/\n      \
         BufferingHints: {{ SizeInMBs: 1, IntervalInSeconds: 1 }}\n    \
         hydrant: {{ object_store: local, shards: 2 }}\n",
        data = dir.join("data").display(),
        root = dir.join("buckets").display(),
    );
    hydrant::plan::parse(&yaml, dir).expect("valid test config")
}

async fn get(app: &Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response = app.clone().oneshot(Request::get(uri).body(Body::empty()).unwrap()).await;
    let response = response.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.into_body().collect().await.unwrap().to_bytes().to_vec())
}

async fn get_json(app: &Router, uri: &str) -> (StatusCode, Value) {
    let (status, headers, body) = get(app, uri).await;
    assert_eq!(headers[header::CONTENT_TYPE], "application/json", "{uri}");
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_serves_its_page_and_what_it_polls() {
    let dir = tempfile::tempdir().unwrap();
    let hydrant = Hydrant::start(&plan(dir.path(), "")).unwrap();
    let app = router(hydrant.state.clone());

    let (status, headers, _) = get(&app, "/console").await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(headers[header::LOCATION], "/console/");
    let (status, headers, body) = get(&app, "/console/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    assert!(
        headers.contains_key(header::ETAG) && headers.contains_key(header::CONTENT_SECURITY_POLICY)
    );
    assert!(String::from_utf8(body).unwrap().contains("assets/console.js"));
    let (status, _, _) = get(&app, "/console/assets/vendor/uPlot.iife.min.js").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = get_json(&app, "/console/assets/nope.js").await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("NotFound")));

    // A test record through the API's own handler, on the console's path.
    let put = Request::post("/console/api/call")
        .header("x-amz-target", "Firehose_20150804.PutRecord")
        .header("content-type", "application/x-amz-json-1.1")
        .body(Body::from(r#"{"DeliveryStreamName":"clicks","Record":{"Data":"aGkK"}}"#))
        .unwrap();
    let response = app.clone().oneshot(put).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("x-amzn-requestid"));

    let (status, overview) = get_json(&app, "/console/api/overview").await;
    assert_eq!(status, StatusCode::OK);
    let row = &overview["streams"][0];
    assert_eq!((row["name"].as_str(), row["kind"].as_str()), (Some("clicks"), Some("firehose")));
    assert_eq!(row["shards"], 2);
    assert_eq!(row["totals"]["records_in"], 1.0);
    assert_eq!(overview["core"], "embedded");

    let (status, detail) = get_json(&app, "/console/api/streams/firehose/clicks").await;
    assert_eq!(status, StatusCode::OK);
    assert!(detail["definition"].as_str().unwrap().contains("DeliveryStreamName: clicks"));
    assert_eq!(detail["shards"].as_array().unwrap().len(), 2);

    for uri in [
        "/console/api/streams/firehose/nope",
        "/console/api/streams/kinesis/clicks",
        "/console/api/streams/elsewhere/clicks",
        "/console/api/streams/firehose/%2e%2e%2f%00%ff",
        "/console/api/nothing/here",
    ] {
        let (status, body) = get_json(&app, uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert!(body["message"].is_string(), "{uri}: {body}");
    }
    let long = format!("/console/api/streams/firehose/{}", "x".repeat(5000));
    assert_eq!(get_json(&app, &long).await.0, StatusCode::NOT_FOUND);

    // A Kinesis stream is listed too, with its shards.
    let create = Request::post("/")
        .header("x-amz-target", "Kinesis_20131202.CreateStream")
        .header("content-type", "application/x-amz-json-1.1")
        .body(Body::from(r#"{"StreamName":"events","ShardCount":3}"#))
        .unwrap();
    let api = hydrant::api::router(hydrant.state.clone());
    assert_eq!(api.oneshot(create).await.unwrap().status(), StatusCode::OK);
    let (_, overview) = get_json(&app, "/console/api/overview").await;
    let kinesis: Vec<&Value> = (overview["streams"].as_array().unwrap().iter())
        .filter(|s| s["kind"] == "kinesis")
        .collect();
    assert_eq!(kinesis.len(), 1, "{overview}");
    assert_eq!(
        (kinesis[0]["name"].as_str(), kinesis[0]["shards"].as_u64()),
        (Some("events"), Some(3))
    );
    let (status, detail) = get_json(&app, "/console/api/streams/kinesis/events").await;
    assert_eq!(status, StatusCode::OK);
    assert!(detail["definition"].as_str().unwrap().contains("StreamMode: PROVISIONED"), "{detail}");
    assert_eq!(detail["shards"].as_array().unwrap().len(), 3);

    let (status, cluster) = get_json(&app, "/console/api/cluster").await;
    assert_eq!((status, cluster["core"].as_str()), (StatusCode::OK, Some("embedded")));
    drop(app);
    hydrant.shutdown().await;
}

#[test]
fn the_console_goes_where_producers_do_not_read_it_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let loopback: SocketAddr = "127.0.0.1:4573".parse().unwrap();
    let shared: SocketAddr = "0.0.0.0:4573".parse().unwrap();
    let config = |extra: &str| plan(dir.path(), extra).config().clone();
    assert_eq!(placement(&config(""), loopback), Placement::Listen);
    assert_eq!(placement(&config(""), shared), Placement::Nowhere);
    let opted = config("console: { on_shared_listen: true }\n");
    assert_eq!(placement(&opted, shared), Placement::Listen);
    let admin = config("admin_listen: 127.0.0.1:4574\n");
    assert_eq!(placement(&admin, shared), Placement::Admin);
    let off = config("console: { enabled: false }\n");
    assert_eq!(placement(&off, loopback), Placement::Nowhere);
}

#[test]
fn console_settings_that_mean_nothing_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let parse = |extra: &str| {
        let yaml = format!("data_dir: {}\n{extra}", dir.path().display());
        hydrant::plan::parse(&yaml, dir.path()).map(|_| ()).map_err(|e| e.to_string())
    };
    assert!(parse("console: { on_shared_listen: true }\n").is_ok());
    let e = parse("console: { enabled: false, on_shared_listen: true }\n").unwrap_err();
    assert!(e.contains("console.on_shared_listen"), "{e}");
    let e =
        parse("admin_listen: 127.0.0.1:4574\nconsole: { on_shared_listen: true }\n").unwrap_err();
    assert!(e.contains("console.on_shared_listen"), "{e}");
    let e = parse("console: { enable: true }\n").unwrap_err();
    assert!(e.contains("enable"), "{e}");
}
