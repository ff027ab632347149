//! Restarts, reloads of the config file and the graceful stop.

use super::*;

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
