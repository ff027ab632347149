//! The server's `limits:` as API clients meet them.

use super::*;

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
