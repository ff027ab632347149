//! Streams created through the API: create, update and delete, what the config file's
//! streams refuse, validation, tags, prefixes no store takes, and names that are paths.

use super::*;

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
    kinesis["DeliveryStreamType"] = json!("MSKAsSource");
    let message = fails(&app, "CreateDeliveryStream", kinesis, "InvalidArgumentException").await;
    assert!(message.contains("DirectPut"), "{message}");
    let mut no_source = api_stream("s", 60);
    no_source["DeliveryStreamType"] = json!("KinesisStreamAsSource");
    let message = fails(&app, "CreateDeliveryStream", no_source, "InvalidArgumentException").await;
    assert!(message.contains("KinesisStreamSourceConfiguration"), "{message}");
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

/// An API stream delivering under `prefix` to the local bucket, one shard, a 1 s window.
fn api_stream_at(name: &str, prefix: &str) -> Value {
    let mut stream = api_stream(name, 1);
    stream["ExtendedS3DestinationConfiguration"]["Prefix"] = json!(prefix);
    stream
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
