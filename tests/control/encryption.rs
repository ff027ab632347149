//! Encryption of a stream's log at rest: started and stopped on a live API stream, and
//! switched by a reload for a config-file stream.

use super::*;

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
