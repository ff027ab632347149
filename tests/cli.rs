//! The `hydrant` command line as an operator uses it: `validate` and `decrypt`.

use std::io::Write;
use std::process::{Command, Stdio};

fn hydrant() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hydrant"))
}

#[test]
fn validate_accepts_a_good_file_and_reports_every_problem_of_a_bad_one_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        "delivery_streams:\n  - DeliveryStreamName: clicks\n    ExtendedS3DestinationConfiguration:\n      \
         BucketARN: arn:aws:s3:::raw\n      CompressionFormat: ZSTD\n",
    )
    .unwrap();
    let out = hydrant().arg("validate").arg(&good).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (1 delivery streams)"));

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "delivery_streams:\n  - DeliveryStreamName: clicks\n    ExtendedS3DestinationConfiguration:\n      \
         BucketARN: arn:aws:s3:::raw\n      BufferingHints: { SizeInMBs: 0, IntervalInSeconds: 901 }\n    \
         hydrant: { shards: 0 }\n",
    )
    .unwrap();
    let out = hydrant().arg("validate").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "delivery_streams[0].ExtendedS3DestinationConfiguration.BufferingHints.SizeInMBs: must be 1..=128, got 0",
        "delivery_streams[0].ExtendedS3DestinationConfiguration.BufferingHints.IntervalInSeconds: must be 0..=900, got 901",
        "delivery_streams[0].hydrant.shards",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
}

#[test]
fn validate_checks_the_core_block_and_serve_waits_for_nats_until_a_signal() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("cluster.yaml");
    std::fs::write(
        &good,
        "node_id: node-a\ncore:\n  type: jetstream\n  servers: [nats://10.0.0.1:4222]\n  \
         replicas: 3\n",
    )
    .unwrap();
    let out = hydrant().arg("validate").arg(&good).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "core:\n  type: jetstream\n  servers: [\"10.0.0.1:4222\"]\n  replicas: 9\n",
    )
    .unwrap();
    let out = hydrant().arg("validate").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in ["core.servers[0]: ", "nats://host:4222", "core.replicas: must be 1..=5, got 9"]
    {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }

    // No NATS server answers there: serve says so, naming the field, keeps trying, and a
    // SIGTERM meanwhile ends it at once.
    let unreachable = dir.path().join("unreachable.yaml");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(
        &unreachable,
        format!(
            "listen: 127.0.0.1:0\ndata_dir: {}\nnode_id: node-a\ncore:\n  type: jetstream\n  \
             servers: [nats://127.0.0.1:{port}]\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut child = hydrant()
        .args(["serve", "--config"])
        .arg(&unreachable)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("retrying") {
        line.clear();
        assert!(std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0, "serve ended");
    }
    assert!(line.contains("core.servers"), "{line}");
    let started = std::time::Instant::now();
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(5) {
            child.kill().unwrap();
            panic!("serve did not stop within 5 s of SIGTERM while waiting for NATS");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn validate_names_an_unknown_field_and_a_yaml_syntax_error() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo.yaml");
    std::fs::write(&typo, "delivery_streams:\n  - DeliveryStreamName: a\n    ExtendedS3DestinationConfigurations: {}\n")
        .unwrap();
    let out = hydrant().arg("validate").arg(&typo).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ExtendedS3DestinationConfigurations"));

    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "delivery_streams: [\n").unwrap();
    let out = hydrant().arg("validate").arg(&broken).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn validate_rejects_an_invalid_timestamp_pattern_naming_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hydrant.yaml");
    std::fs::write(
        &config,
        "delivery_streams:\n  - DeliveryStreamName: clicks\n    ExtendedS3DestinationConfiguration:\n      \
         BucketARN: arn:aws:s3:::raw\n      Prefix: \"data/!{timestamp:yyyy-bb}/\"\n      \
         ErrorOutputPrefix: \"errors/!{firehose:error-output-type}/\"\n",
    )
    .unwrap();
    let out = hydrant().arg("validate").arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "delivery_streams[0].ExtendedS3DestinationConfiguration.Prefix: Prefix has an invalid \
             expression `!{timestamp:yyyy-bb}`"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("unknown pattern letter 'b'"), "{stderr}");
}

#[test]
fn validate_refuses_a_key_file_that_never_ends_instead_of_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hydrant.yaml");
    std::fs::write(
        &config,
        "storage:\n  encryption:\n    active_key: k\n    keys:\n      - { id: k, file: /dev/zero }\n",
    )
    .unwrap();
    let out = hydrant().arg("validate").arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("storage.encryption"), "{stderr}");
    assert!(stderr.contains("/dev/zero is larger than 4096 bytes"), "{stderr}");
}

#[test]
fn decrypt_restores_an_object_and_refuses_a_tampered_one() {
    use hydrant::codec::encryption::{encrypt, KeyRing, MasterKey};
    let dir = tempfile::tempdir().unwrap();
    let key = [7u8; 32];
    std::fs::write(dir.path().join("k.key"), key).unwrap();
    let ring = KeyRing::new("k", [MasterKey::from_bytes("k", &key).unwrap()]).unwrap();
    let plain = b"records\n".repeat(50_000);
    let object = encrypt(&ring, &plain).unwrap();

    let run = |input: &[u8]| {
        let mut child = hydrant()
            .arg("decrypt")
            .arg("--key-file")
            .arg(dir.path().join("k.key"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Feed stdin from another thread: the child writes stdout while it reads.
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap();
        out
    };
    let out = run(&object);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, plain);

    let mut tampered = object.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x40;
    let out = run(&tampered);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("decryption failed"));
}
