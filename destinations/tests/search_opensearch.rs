//! The search destination against a real OpenSearch API (osmem-server in the test services):
//! documents land under their ids in rotated indexes, mapping errors reject only their
//! document, and NO_DOCUMENT_ID lets the cluster choose ids. That re-delivery is idempotent is
//! the shared suite's (`tests/conformance.rs`).
//!
//! Needs `FH_TEST_OPENSEARCH_ENDPOINT` (`source /tmp/hyd-svc-dev/env`); without it the tests
//! skip, unless `HYDRANT_REQUIRE_SERVICES=1`, which makes a missing service a failure.

use std::time::Duration;

use bytes::Bytes;
use hydrant_destinations::search::{
    BulkRequest, DefaultDocumentIdFormat, DocumentIdOptions, IndexRotationPeriod, RecordPosition,
    SearchDestination, SearchSettings, SearchSettingsInput,
};
use hydrant_destinations::{deliver_with_retry, Rejected};
use serde_json::{json, Value};

fn endpoint(test: &str) -> Option<String> {
    match std::env::var("FH_TEST_OPENSEARCH_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ if std::env::var("HYDRANT_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("{test}: FH_TEST_OPENSEARCH_ENDPOINT is not set but HYDRANT_REQUIRE_SERVICES=1")
        }
        _ => {
            eprintln!("skipping {test}: FH_TEST_OPENSEARCH_ENDPOINT is not set (source the test services' env file)");
            None
        }
    }
}

/// A fresh index name per test run, so tests can run in parallel and again.
fn random_index(tag: &str) -> String {
    format!("hyd-{tag}-{:016x}", rand::random::<u64>())
}

struct Cluster {
    url: String,
    http: reqwest::Client,
}

impl Cluster {
    fn new(url: String) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        Cluster { url, http }
    }

    fn destination(
        &self,
        index: &str,
        rotation: IndexRotationPeriod,
        ids: DefaultDocumentIdFormat,
    ) -> (SearchSettings, SearchDestination) {
        let settings = SearchSettings::validate(&SearchSettingsInput {
            cluster_endpoint: Some(self.url.clone()),
            index_name: index.into(),
            index_rotation_period: Some(rotation),
            document_id_options: Some(DocumentIdOptions { default_document_id_format: ids }),
            retry_duration_in_seconds: Some(5),
            ..SearchSettingsInput::default()
        })
        .unwrap();
        (settings.clone(), SearchDestination::new(settings).unwrap())
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}/{path}", self.url));
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn count(&self, index: &str) -> u64 {
        self.send(reqwest::Method::POST, &format!("{index}/_refresh"), None).await;
        let (status, body) = self.get(&format!("{index}/_count")).await;
        assert_eq!(status, 200, "{body}");
        body["count"].as_u64().unwrap()
    }
}

/// Milliseconds of a fixed UTC day at noon.
const FEB_25_2016: i64 = 1_456_401_600_000;
const DAY_MS: i64 = 86_400_000;

fn request(settings: &SearchSettings, stream: &str, sources: &[(&str, i64)]) -> BulkRequest {
    BulkRequest {
        docs: sources
            .iter()
            .enumerate()
            .map(|(i, (source, arrival))| {
                let position =
                    RecordPosition { stream, shard: 0, sequence: 100 + i as u64, sub_index: 0 };
                settings.document(i, position, *arrival, Bytes::copy_from_slice(source.as_bytes()))
            })
            .collect(),
    }
}

#[tokio::test]
async fn documents_are_searchable_under_their_ids_in_rotated_indexes() {
    let Some(url) = endpoint("documents_are_searchable_under_their_ids_in_rotated_indexes") else {
        return;
    };
    let cluster = Cluster::new(url);
    let base = random_index("rot");
    let (settings, dest) = cluster.destination(
        &base,
        IndexRotationPeriod::OneDay,
        DefaultDocumentIdFormat::FirehoseDefault,
    );
    let req = request(
        &settings,
        "clicks",
        &[
            (r#"{"n":1}"#, FEB_25_2016),
            (r#"{"n":2}"#, FEB_25_2016 + 1000),
            (r#"{"n":3}"#, FEB_25_2016 + DAY_MS),
        ],
    );
    let rejected = deliver_with_retry(&dest, req, |_, _, _| {}).await.unwrap();
    assert_eq!(rejected, vec![]);

    for (index, id, n) in [
        (format!("{base}-2016-02-25"), "clicks-0-100-0", 1),
        (format!("{base}-2016-02-25"), "clicks-0-101-0", 2),
        (format!("{base}-2016-02-26"), "clicks-0-102-0", 3),
    ] {
        let (status, doc) = cluster.get(&format!("{index}/_doc/{id}")).await;
        assert_eq!(status, 200, "{index}/{id}: {doc}");
        assert_eq!(doc["found"], json!(true));
        assert_eq!(doc["_source"], json!({ "n": n }));
    }
    assert_eq!(cluster.count(&format!("{base}-2016-02-25")).await, 2);
    assert_eq!(cluster.count(&format!("{base}-2016-02-26")).await, 1);
}

#[tokio::test]
async fn a_mapping_error_rejects_only_its_document_at_its_original_index() {
    let Some(url) = endpoint("a_mapping_error_rejects_only_its_document_at_its_original_index")
    else {
        return;
    };
    let cluster = Cluster::new(url);
    let index = random_index("map");
    let mapping = json!({"mappings": {"properties": {"n": {"type": "integer"}}}});
    let (status, body) = cluster.send(reqwest::Method::PUT, &index, Some(mapping)).await;
    assert_eq!(status, 200, "{body}");

    let (settings, dest) = cluster.destination(
        &index,
        IndexRotationPeriod::NoRotation,
        DefaultDocumentIdFormat::FirehoseDefault,
    );
    let req = request(
        &settings,
        "s",
        &[(r#"{"n":1}"#, 0), (r#"{"n":"not a number"}"#, 0), (r#"{"n":3}"#, 0), ("[1,2]", 0)],
    );
    let rejected: Vec<Rejected> = deliver_with_retry(&dest, req, |_, _, _| {})
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.record)
        .collect();
    let got: Vec<(usize, &str)> = rejected.iter().map(|r| (r.index, r.code.as_str())).collect();
    assert_eq!(got, vec![(1, "OS.MapperParsingException"), (3, "OS.MapperParsingException")]);
    assert!(rejected[0].message.contains("[n]"), "{}", rejected[0].message);
    assert!(rejected[0].message.ends_with("(status 400)"), "{}", rejected[0].message);
    assert_eq!(cluster.count(&index).await, 2);
    let (status, _) = cluster.get(&format!("{index}/_doc/s-0-101-0")).await;
    assert_eq!(status, 404, "the rejected document must not exist");
}

#[tokio::test]
async fn no_document_id_lets_the_cluster_choose_ids_so_a_replay_duplicates() {
    let Some(url) = endpoint("no_document_id_lets_the_cluster_choose_ids_so_a_replay_duplicates")
    else {
        return;
    };
    let cluster = Cluster::new(url);
    let index = random_index("noid");
    let (settings, dest) = cluster.destination(
        &index,
        IndexRotationPeriod::NoRotation,
        DefaultDocumentIdFormat::NoDocumentId,
    );
    let req = request(&settings, "s", &[(r#"{"a":1}"#, 0), (r#"{"a":2}"#, 0)]);
    assert!(req.docs.iter().all(|d| d.id.is_none()));
    deliver_with_retry(&dest, req.clone(), |_, _, _| {}).await.unwrap();
    deliver_with_retry(&dest, req, |_, _, _| {}).await.unwrap();
    assert_eq!(cluster.count(&index).await, 4, "documented: replays duplicate without ids");
    let (status, found) = cluster.get(&format!("{index}/_search?size=10")).await;
    assert_eq!(status, 200, "{found}");
    let mut ids: Vec<&str> = found["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["_id"].as_str().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "cluster-generated ids are distinct: {ids:?}");
    assert!(ids.iter().all(|id| !id.starts_with("s-0-")), "{ids:?}");
}

#[tokio::test]
async fn a_weekly_index_follows_the_us_week_of_the_arrival_time() {
    let Some(url) = endpoint("a_weekly_index_follows_the_us_week_of_the_arrival_time") else {
        return;
    };
    let cluster = Cluster::new(url);
    let base = random_index("week");
    let (settings, dest) = cluster.destination(
        &base,
        IndexRotationPeriod::OneWeek,
        DefaultDocumentIdFormat::FirehoseDefault,
    );
    // 2019-12-31T12:00Z lies in the Sunday week that holds 2020-01-01.
    let req = request(&settings, "s", &[(r#"{"a":1}"#, 1_577_793_600_000)]);
    deliver_with_retry(&dest, req, |_, _, _| {}).await.unwrap();
    let (status, doc) = cluster.get(&format!("{base}-2020-w01/_doc/s-0-100-0")).await;
    assert_eq!(status, 200, "{doc}");
}
