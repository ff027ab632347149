//! Retry behaviour of the search destination against a fault-injecting `_bulk` stub: what each
//! attempt sends, which failures are retried, and when retrying stops.

mod support;

use std::time::Duration;

use bytes::Bytes;
use hydrant_destinations::search::{
    BulkRequest, Document, SearchDestination, SearchSettings, SearchSettingsInput,
};
use hydrant_destinations::{deliver_with_retry, Destination, ErrorClass, Rejected};
use support::bulk_stub::{BulkStub, Fault};

fn settings(stub: &BulkStub, retry_seconds: u32) -> SearchSettings {
    SearchSettings::validate(&SearchSettingsInput {
        cluster_endpoint: Some(stub.url.clone()),
        index_name: "logs".into(),
        retry_duration_in_seconds: Some(retry_seconds),
        request_timeout: Some(Duration::from_millis(500)),
        ..SearchSettingsInput::default()
    })
    .unwrap()
}

/// Documents `d0..dn` at original positions `0, 10, 20, ...`.
fn request(n: usize) -> BulkRequest {
    BulkRequest {
        docs: (0..n)
            .map(|i| Document {
                index: i * 10,
                id: Some(format!("d{i}")),
                index_name: "logs".into(),
                source: Bytes::from(format!("{{\"n\":{i}}}")),
            })
            .collect(),
    }
}

#[tokio::test]
async fn only_retryable_items_are_sent_again_until_they_are_delivered() {
    let stub = BulkStub::start().await;
    stub.item_statuses("d1", &[400]);
    stub.item_statuses("d2", &[429, 429]);
    stub.item_statuses("d3", &[503]);
    let dest = SearchDestination::new(settings(&stub, 60)).unwrap();
    let mut retries = Vec::new();
    let rejected = deliver_with_retry(&dest, request(5), |e, attempt, _| {
        retries.push((e.code.clone(), attempt));
    })
    .await
    .unwrap();

    let sent: Vec<Vec<String>> =
        stub.requests().iter().map(|r| r.ids().into_iter().map(String::from).collect()).collect();
    assert_eq!(sent, vec![vec!["d0", "d1", "d2", "d3", "d4"], vec!["d2", "d3"], vec!["d2"]]);
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].record.index, 10);
    assert_eq!(rejected[0].record.code, "OS.MapperParsingException");
    let message = &rejected[0].record.message;
    assert!(message.contains("failed to parse field [n]"), "{message}");
    assert_eq!(rejected[0].attempts, 1, "its 400 came on the first attempt");
    assert_eq!(retries.len(), 2);
    assert!(stub.requests().iter().all(|r| r.malformed.is_none()));
}

#[tokio::test]
async fn each_attempt_posts_ndjson_to_the_bulk_path_with_basic_auth() {
    let stub = BulkStub::start().await;
    let mut s = settings(&stub, 0);
    s.basic_auth = Some(hydrant_destinations::search::BasicAuth {
        username: "hydrant".into(),
        password: "s3cret".into(),
    });
    let dest = SearchDestination::new(s).unwrap();
    let outcome = dest.deliver(&request(1)).await.unwrap();
    assert!(
        matches!(outcome, hydrant_destinations::Outcome::Delivered { rejected } if rejected.is_empty())
    );
    let got = &stub.requests()[0];
    assert_eq!(got.path, "/_bulk");
    assert_eq!(got.content_type.as_deref(), Some("application/x-ndjson"));
    // base64("hydrant:s3cret")
    assert_eq!(got.authorization.as_deref(), Some("Basic aHlkcmFudDpzM2NyZXQ="));
    assert_eq!(got.docs[0].source, "{\"n\":0}");
}

#[tokio::test]
async fn a_whole_request_503_is_retried_with_the_same_documents() {
    let stub = BulkStub::start().await;
    stub.fault([Fault::Status(503)]);
    let dest = SearchDestination::new(settings(&stub, 60)).unwrap();
    let mut errors = Vec::new();
    let rejected =
        deliver_with_retry(&dest, request(3), |e, _, _| errors.push(e.code.clone())).await.unwrap();
    assert!(rejected.is_empty());
    assert_eq!(errors, vec!["OS.ServerError"]);
    let requests = stub.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].docs, requests[1].docs);
}

#[tokio::test]
async fn a_dropped_connection_is_transient_and_the_next_attempt_delivers() {
    let stub = BulkStub::start().await;
    stub.fault([Fault::Drop]);
    let dest = SearchDestination::new(settings(&stub, 60)).unwrap();
    let err = dest.deliver(&request(2)).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Transient, "{err}");
    assert_eq!(err.code, "OS.RequestFailed", "{err}");
    let rejected = deliver_with_retry(&dest, request(2), |_, _, _| {}).await.unwrap();
    assert!(rejected.is_empty());
    assert_eq!(stub.requests().len(), 2);
}

#[tokio::test]
async fn a_slow_answer_times_out_as_a_transient_error() {
    let stub = BulkStub::start().await;
    stub.fault([Fault::Slow(Duration::from_secs(3))]);
    let dest = SearchDestination::new(settings(&stub, 60)).unwrap();
    let err = dest.deliver(&request(1)).await.unwrap_err();
    assert_eq!((err.class, err.code.as_str()), (ErrorClass::Transient, "OS.Timeout"), "{err}");
}

#[tokio::test]
async fn an_unreachable_cluster_is_a_transient_connection_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener); // nothing listens there now
    let s = SearchSettings::validate(&SearchSettingsInput {
        cluster_endpoint: Some(format!("http://127.0.0.1:{port}")),
        index_name: "logs".into(),
        ..SearchSettingsInput::default()
    })
    .unwrap();
    let err = SearchDestination::new(s).unwrap().deliver(&request(1)).await.unwrap_err();
    assert_eq!(
        (err.class, err.code.as_str()),
        (ErrorClass::Transient, "OS.ConnectionFailed"),
        "{err}"
    );
}

#[tokio::test]
async fn retries_stop_when_the_retry_duration_runs_out() {
    let stub = BulkStub::start().await;
    stub.fault(std::iter::repeat_n(Fault::Status(503), 50));
    let dest = SearchDestination::new(settings(&stub, 1)).unwrap();
    let original = request(2);
    let gave_up = deliver_with_retry(&dest, original.clone(), |_, _, _| {}).await.unwrap_err();
    assert_eq!(gave_up.error.code, "OS.ServerError");
    assert_eq!(gave_up.remaining, original);
    // Waits of ~0.5 s then the rest of the 1 s duration: the last attempt lands at the deadline.
    assert!((2..=4).contains(&gave_up.attempts), "{}", gave_up.attempts);
    assert_eq!(stub.requests().len() as u32, gave_up.attempts);
}

#[tokio::test]
async fn a_zero_retry_duration_makes_exactly_one_attempt() {
    let stub = BulkStub::start().await;
    stub.fault([Fault::Status(429), Fault::Status(429)]);
    let dest = SearchDestination::new(settings(&stub, 0)).unwrap();
    let gave_up = deliver_with_retry(&dest, request(1), |_, _, _| {}).await.unwrap_err();
    assert_eq!(gave_up.error.code, "OS.TooManyRequests");
    assert_eq!(gave_up.attempts, 1);
    assert_eq!(stub.requests().len(), 1);
}

#[tokio::test]
async fn items_still_failing_at_the_deadline_are_left_over_with_earlier_rejections() {
    let stub = BulkStub::start().await;
    stub.item_statuses("d0", &[404]);
    stub.item_statuses("d1", &[503; 50]);
    let dest = SearchDestination::new(settings(&stub, 0)).unwrap();
    let gave_up = deliver_with_retry(&dest, request(3), |_, _, _| {}).await.unwrap_err();
    assert_eq!(gave_up.remaining.docs.len(), 1);
    assert_eq!(gave_up.remaining.docs[0].index, 10);
    assert_eq!(
        gave_up.rejected.into_iter().map(|r| r.record).collect::<Vec<_>>(),
        vec![Rejected {
            index: 0,
            code: "OS.MapperParsingException".into(),
            message: "mapper_parsing_exception: failed to parse field [n] of type [integer] \
                      (status 404)"
                .into(),
        }]
    );
}

#[tokio::test]
async fn records_that_are_not_json_objects_never_reach_the_cluster() {
    let stub = BulkStub::start().await;
    let mut req = request(3);
    req.docs[1].source = Bytes::from_static(b"{\"a\":1}\n{\"index\":{\"_index\":\"evil\"}}");
    let dest = SearchDestination::new(settings(&stub, 0)).unwrap();
    let rejected = deliver_with_retry(&dest, req, |_, _, _| {}).await.unwrap();
    assert_eq!(rejected.len(), 1);
    let first = &rejected[0].record;
    assert_eq!((first.index, first.code.as_str()), (10, "OS.MapperParsingException"));
    let requests = stub.requests();
    assert_eq!(requests[0].ids(), vec!["d0", "d2"]);
    assert!(requests[0].docs.iter().all(|d| d.index == "logs"));
}
