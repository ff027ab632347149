//! The `core:` block and `node_id` (cluster mode), checked with their fields' paths.

use super::*;

#[test]
fn without_the_block_the_log_is_embedded_and_the_node_id_comes_from_host_and_port() {
    let config = parse_ok("listen: 127.0.0.1:4999\n");
    assert_eq!(config.core, CoreConfig::default());
    assert_eq!(config.core.kind, CoreType::Embedded);
    let id = node_id(&config);
    assert!(id.ends_with("-4999") && id.len() > 5, "{id}");
    let named = parse_ok("node_id: node-a\n");
    assert_eq!(node_id(&named), "node-a");
}

#[test]
fn a_jetstream_block_is_read_with_its_defaults_and_files_relative_to_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hydrant.creds"), "creds").unwrap();
    std::fs::write(dir.path().join("ca.pem"), "ca").unwrap();
    let yaml = "core:\n  type: jetstream\n  servers: [nats://10.0.0.1:4222, \
                    tls://nats-2.example:4222]\n  credentials_file: hydrant.creds\n  \
                    tls: { ca: ca.pem }\n";
    let config = match parse(yaml, dir.path()) {
        Ok(config) => config,
        Err(e) => panic!("{e}"),
    };
    let core = &config.core;
    assert_eq!(core.kind, CoreType::Jetstream);
    assert_eq!((core.replicas(), core.duplicate_window_seconds()), (3, 120));
    assert_eq!(core.namespace(), "hydrant");
    assert_eq!(core.credentials_file.as_deref(), Some(dir.path().join("hydrant.creds").as_path()));
    assert_eq!(core.tls.as_ref().unwrap().ca.as_deref(), Some(dir.path().join("ca.pem").as_path()));
}

#[test]
fn bad_values_are_named_with_their_field() {
    assert_issue("core: { type: jetstream }\n", "core.servers", &["at least one NATS server"]);
    assert_issue(
        "core: { type: jetstream, servers: [\"10.0.0.1:4222\"] }\n",
        "core.servers[0]",
        &["nats://host:4222"],
    );
    assert_issue(
        "core: { type: jetstream, servers: [nats://a:4222, \"http://b:4222\"] }\n",
        "core.servers[1]",
        &["scheme \"http\""],
    );
    assert_issue(
        "core: { type: jetstream, servers: [nats://a:4222], replicas: 7 }\n",
        "core.replicas",
        &["1..=5"],
    );
    assert_issue(
        "core: { type: jetstream, servers: [nats://a:4222], replicas: 0 }\n",
        "core.replicas",
        &["1..=5"],
    );
    assert_issue(
        "core: { type: jetstream, servers: [nats://a:4222], duplicate_window_seconds: 5 }\n",
        "core.duplicate_window_seconds",
        &["30..=3600"],
    );
    assert_issue(
        "core: { type: jetstream, servers: [nats://a:4222], token: t, user: u, password: p }\n",
        "core.user",
        &["token and user"],
    );
    assert_issue(
        "core: { type: jetstream, servers: [nats://a:4222], user: u }\n",
        "core.password",
        &["needs a password"],
    );
    assert_issue(
        "core: { type: jetstream, servers: [nats://a:4222], credentials_file: nope.creds }\n",
        "core.credentials_file",
        &["/etc/hydrant/nope.creds"],
    );
    assert_issue(
        "core: { type: jetstream, servers: [nats://a:4222], tls: { cert: c.pem } }\n",
        "core.tls.key",
        &["needs its key"],
    );
    assert_issue(
        "core: { type: jetstream, servers: [nats://a:4222], namespace: \"a.b\" }\n",
        "core.namespace",
        &["A-Z a-z 0-9 - _"],
    );
    assert_issue("core: { namespace: a }\n", "core.namespace", &["type: jetstream"]);
    assert_issue(
        "core: { type: jetstream, servers: [nats://a:4222], lease_seconds: 2 }\n",
        "core.lease_seconds",
        &["3..=300"],
    );
    assert_issue(
        "core: { type: jetstream, servers: [nats://a:4222], max_bytes_per_shard: 1MiB }\n",
        "core.max_bytes_per_shard",
        &["at least 2MiB"],
    );
    assert_issue(
        "core: { type: jetstream, servers: [nats://a:4222] }\nstorage: { max_bytes: 1GiB }\n",
        "storage.max_bytes",
        &["core.max_bytes_per_shard"],
    );
    assert_issue("core: { servers: [nats://a:4222] }\n", "core.servers", &["type: jetstream"]);
    assert_issue("core: { type: nats }\n", "core.type", &["jetstream"]);
    assert_issue("core: { type: jetstream, server: [x] }\n", "core.server", &["servers"]);
    assert_issue("node_id: \"node.a\"\n", "node_id", &["A-Z a-z 0-9 - _"]);
}

#[test]
fn secrets_never_reach_debug_output() {
    let config = parse_ok(
        "core: { type: jetstream, servers: [\"nats://me:hunter2@a:4222\"], token: s3cr3t }\n",
    );
    let text = format!("{config:?}");
    assert!(!text.contains("s3cr3t") && !text.contains("hunter2"), "{text}");
    let core = CoreConfig {
        kind: CoreType::Jetstream,
        servers: vec!["nats://me:hunter2@a:4222".into()],
        token: Some("s3cr3t".into()),
        password: Some("pw-secret".into()),
        ..Default::default()
    };
    let text = format!("{core:?}");
    for secret in ["hunter2", "s3cr3t", "pw-secret"] {
        assert!(!text.contains(secret), "{text}");
    }
}
