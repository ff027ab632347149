//! The log on a real NATS JetStream cluster (`HYDRANT_NATS_URLS`, the three nodes that
//! `scripts/services.sh up` starts; source its env file). Without it the tests skip with a
//! message, unless `HYDRANT_REQUIRE_SERVICES=1`, which turns a missing cluster into a failure.

use std::time::Duration;

use hydrant::log::jetstream::{NatsAuth, NatsOptions};

/// The cluster's URLs, or `None` (skip) when the tests run without it.
fn nats_urls() -> Option<Vec<String>> {
    match std::env::var("HYDRANT_NATS_URLS") {
        Ok(urls) if !urls.is_empty() => Some(urls.split(',').map(str::to_string).collect()),
        _ if std::env::var("HYDRANT_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("HYDRANT_NATS_URLS is not set and HYDRANT_REQUIRE_SERVICES=1")
        }
        _ => {
            eprintln!(
                "skipping: HYDRANT_NATS_URLS is not set (start the NATS cluster with \
                 scripts/services.sh up and source its env file)"
            );
            None
        }
    }
}

macro_rules! nats_urls_or_skip {
    () => {
        match nats_urls() {
            Some(urls) => urls,
            None => return,
        }
    };
}

fn options(servers: Vec<String>) -> NatsOptions {
    NatsOptions { servers, auth: NatsAuth::None, tls: None, name: "hydrant-test".into() }
}

#[tokio::test]
async fn a_node_connects_to_the_cluster_and_checks_its_servers() {
    let urls = nats_urls_or_skip!();
    let nats = options(urls).connect().await.expect("connects");
    let (server, version) = nats.server();
    assert!(!server.is_empty());
    assert!(hydrant::log::jetstream::connect::version_at_least(&version, 2, 10), "{version}");
    nats.jetstream().query_account().await.expect("JetStream is enabled");
}

/// A node that starts before NATS is reachable says so and keeps trying: here the only server
/// it knows starts answering (a proxy to the cluster opens) 2 seconds after it began.
#[tokio::test]
async fn a_node_started_before_nats_retries_until_a_server_answers() {
    let urls = nats_urls_or_skip!();
    let target = urls[0].trim_start_matches("nats://").to_string();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let proxy = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            let target = target.clone();
            tokio::spawn(async move {
                let mut server = tokio::net::TcpStream::connect(target).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    let started = std::time::Instant::now();
    let nats = tokio::time::timeout(
        Duration::from_secs(20),
        options(vec![format!("nats://127.0.0.1:{port}")]).connect_retrying(),
    )
    .await
    .expect("connects once the server answers")
    .expect("no permanent error");
    assert!(started.elapsed() >= Duration::from_secs(2), "it could not have connected earlier");
    nats.jetstream().query_account().await.expect("usable");
    proxy.abort();
}
