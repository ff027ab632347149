//! The HTTP endpoint destination against a real receiver on 127.0.0.1: what arrives on the
//! wire, which answers count as delivered, and how failed requests are retried.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use hydrant_destinations::http::{
    codes, EndpointConfiguration, HttpDeliveryRequest, HttpDestination, HttpEndpointInput,
    HttpEndpointSettings, RequestConfiguration,
};
use hydrant_destinations::{deliver_with_retry, Destination, ErrorClass, RetryClock, RetryPolicy};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ARN: &str = "arn:aws:firehose:eu-west-1:123456789012:deliverystream/clicks";
const REQUEST_ID: &str = "0b5f6a8e-5f0e-5c1a-9d1e-2b1f3c4d5e6f";

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy)]
enum Reply {
    /// 200 with the request's id and a timestamp.
    Ok,
    /// This status with an `errorMessage` body, after an optional delay.
    Fail(u16, Duration),
    /// 200 echoing another request id.
    WrongId,
    /// 200 without a timestamp.
    NoTimestamp,
    /// The right answer, too late.
    Slow(Duration),
    /// A 200 whose body is 2 MiB.
    Huge,
    /// Headers, then the connection breaks.
    Drop,
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    at: Instant,
    headers: HeaderMap,
    /// The body as sent (compressed when Content-Encoding says so).
    raw: Bytes,
    /// The body decompressed and parsed.
    json: Value,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    fn records(&self) -> Vec<Vec<u8>> {
        self.json["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| BASE64.decode(r["data"].as_str().unwrap()).unwrap())
            .collect()
    }
}

#[derive(Default)]
struct Shared {
    log: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Reply>>,
}

/// A Firehose HTTP endpoint that records every request and answers by script (then `Ok`).
struct Receiver {
    url: String,
    shared: Arc<Shared>,
}

impl Receiver {
    async fn start(script: &[Reply]) -> Self {
        let shared = Arc::new(Shared::default());
        shared.script.lock().unwrap().extend(script.iter().copied());
        let app = Router::new()
            .route("/firehose", post(handle))
            .layer(DefaultBodyLimit::disable())
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/firehose", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, shared }
    }

    fn received(&self) -> Vec<Received> {
        self.shared.log.lock().unwrap().clone()
    }
}

async fn handle(State(shared): State<Arc<Shared>>, headers: HeaderMap, raw: Bytes) -> Response {
    let mut text = Vec::new();
    if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
        flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut text).unwrap();
    } else {
        text = raw.to_vec();
    }
    let json: Value = serde_json::from_slice(&text).unwrap();
    let id = json["requestId"].as_str().unwrap().to_owned();
    shared.log.lock().unwrap().push(Received { at: Instant::now(), headers, raw, json });
    let reply = shared.script.lock().unwrap().pop_front().unwrap_or(Reply::Ok);
    let ok = |id: &str| {
        let body = serde_json::json!({ "requestId": id, "timestamp": 1578090903599u64 });
        (StatusCode::OK, [("content-type", "application/json")], body.to_string()).into_response()
    };
    match reply {
        Reply::Ok => ok(&id),
        Reply::Fail(status, delay) => {
            tokio::time::sleep(delay).await;
            let body = serde_json::json!({ "requestId": id, "errorMessage": "not today" });
            (StatusCode::from_u16(status).unwrap(), body.to_string()).into_response()
        }
        Reply::WrongId => ok("someone-else"),
        Reply::NoTimestamp => serde_json::json!({ "requestId": id }).to_string().into_response(),
        Reply::Slow(delay) => {
            tokio::time::sleep(delay).await;
            ok(&id)
        }
        Reply::Huge => "x".repeat(2 << 20).into_response(),
        Reply::Drop => {
            let broken =
                futures_util::stream::iter([Err::<Bytes, _>(std::io::Error::other("gone"))]);
            Response::new(Body::from_stream(broken))
        }
    }
}

fn settings(
    url: &str,
    request: Option<&RequestConfiguration>,
    key: Option<&str>,
) -> HttpEndpointSettings {
    let endpoint = EndpointConfiguration {
        url: url.to_owned(),
        name: Some("test receiver".into()),
        access_key: key.map(str::to_owned),
    };
    HttpEndpointSettings::validate(HttpEndpointInput {
        endpoint: &endpoint,
        request,
        retry_duration_in_seconds: None,
        buffering_size_in_mbs: None,
        buffering_interval_in_seconds: None,
        source_arn: ARN,
    })
    .unwrap()
}

/// Firehose's policy shape with waits short enough for a test.
fn quick_policy(initial_ms: u64, max_ms: u64, jitter: f64, duration_ms: u64) -> RetryPolicy {
    RetryPolicy {
        initial: Duration::from_millis(initial_ms),
        max: Duration::from_millis(max_ms),
        multiplier: 2.0,
        jitter,
        max_duration: Some(Duration::from_millis(duration_ms)),
        clock: RetryClock::WaitsOnly,
    }
}

fn batch(records: &[&[u8]]) -> HttpDeliveryRequest {
    HttpDeliveryRequest {
        request_id: REQUEST_ID.into(),
        timestamp_ms: 1_700_000_000_123,
        records: records.iter().map(|r| Bytes::copy_from_slice(r)).collect(),
    }
}

#[tokio::test]
async fn the_receiver_gets_firehoses_headers_and_body() {
    let receiver = Receiver::start(&[]).await;
    let request: RequestConfiguration = serde_yaml_ng::from_str(
        "{ CommonAttributes: [{ AttributeName: env, AttributeValue: prod }, \
           { AttributeName: team, AttributeValue: data }] }",
    )
    .unwrap();
    let dest =
        HttpDestination::new(&settings(&receiver.url, Some(&request), Some("s3cr3t"))).unwrap();
    let records: [&[u8]; 3] = [b"{\"a\":1}\n", b"", &[0, 159, 255]];
    dest.deliver(&batch(&records)).await.unwrap();

    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.header("x-amz-firehose-protocol-version"), Some("1.0"));
    assert_eq!(r.header("x-amz-firehose-request-id"), Some(REQUEST_ID));
    assert_eq!(r.header("x-amz-firehose-source-arn"), Some(ARN));
    assert_eq!(r.header("x-amz-firehose-access-key"), Some("s3cr3t"));
    assert_eq!(
        r.header("x-amz-firehose-common-attributes"),
        Some(r#"{"commonAttributes":{"env":"prod","team":"data"}}"#)
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("content-length"), Some(r.raw.len().to_string().as_str()));
    assert!(r.header("user-agent").unwrap().starts_with("Hydrant/"));
    let expected = format!(
        r#"{{"requestId":"{REQUEST_ID}","timestamp":1700000000123,"records":[{{"data":"eyJhIjoxfQo="}},{{"data":""}},{{"data":"AJ//"}}]}}"#
    );
    assert_eq!(std::str::from_utf8(&r.raw).unwrap(), expected);
    assert_eq!(r.records(), records.iter().map(|r| r.to_vec()).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_gzip_endpoint_gets_a_compressed_body_with_the_same_records() {
    let receiver = Receiver::start(&[]).await;
    let request: RequestConfiguration =
        serde_yaml_ng::from_str("{ ContentEncoding: GZIP }").unwrap();
    let dest = HttpDestination::new(&settings(&receiver.url, Some(&request), None)).unwrap();
    let records: Vec<Vec<u8>> =
        (0..2000).map(|i| format!("event {i} {}", "y".repeat(i % 97)).into_bytes()).collect();
    let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
    dest.deliver(&batch(&refs)).await.unwrap();

    let r = &receiver.received()[0];
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("x-amz-firehose-access-key"), None);
    assert_eq!(r.header("x-amz-firehose-common-attributes"), Some(r#"{"commonAttributes":{}}"#));
    assert_eq!(&r.raw[..2], &[0x1f, 0x8b]);
    assert_eq!(r.records(), records);
    assert_eq!(r.json["requestId"], REQUEST_ID);
    assert_eq!(r.json["timestamp"], 1_700_000_000_123u64);
}

#[tokio::test]
async fn header_names_go_on_the_wire_in_firehoses_spelling() {
    // A hand-written receiver, to see the request head exactly as sent.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/in", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !seen.ends_with(b"]}") {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed early");
            seen.extend_from_slice(&buf[..n]);
        }
        let body = format!(r#"{{"requestId":"{REQUEST_ID}","timestamp":1}}"#);
        let answer = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        socket.write_all(answer.as_bytes()).await.unwrap();
        String::from_utf8(seen).unwrap()
    });
    let dest = HttpDestination::new(&settings(&url, None, Some("k"))).unwrap();
    dest.deliver(&batch(&[b"x"])).await.unwrap();
    let head = server.await.unwrap();
    assert!(head.starts_with("POST /in HTTP/1.1\r\n"), "{head}");
    for line in [
        "X-Amz-Firehose-Protocol-Version: 1.0\r\n",
        &format!("X-Amz-Firehose-Request-Id: {REQUEST_ID}\r\n"),
        &format!("X-Amz-Firehose-Source-Arn: {ARN}\r\n"),
        "X-Amz-Firehose-Access-Key: k\r\n",
        "Content-Type: application/json\r\n",
    ] {
        assert!(head.contains(line), "missing {line:?} in\n{head}");
    }
}

#[tokio::test]
async fn a_failed_request_is_sent_again_with_the_same_id_and_the_same_bytes() {
    let receiver =
        Receiver::start(&[Reply::Fail(500, Duration::ZERO), Reply::Fail(503, Duration::ZERO)])
            .await;
    let gzip: RequestConfiguration = serde_yaml_ng::from_str("{ ContentEncoding: GZIP }").unwrap();
    let dest = HttpDestination::new(&settings(&receiver.url, Some(&gzip), None))
        .unwrap()
        .with_retry_policy(quick_policy(5, 20, 0.0, 10_000));
    let mut retried = Vec::new();
    let rejected = deliver_with_retry(&dest, batch(&[b"one", b"two"]), |e, attempt, _| {
        retried.push((e.code.clone(), attempt))
    })
    .await
    .unwrap();
    assert!(rejected.is_empty());
    assert_eq!(
        retried,
        vec![
            (codes::DESTINATION_EXCEPTION.to_owned(), 1),
            (codes::DESTINATION_EXCEPTION.to_owned(), 2)
        ]
    );
    let got = receiver.received();
    assert_eq!(got.len(), 3);
    for r in &got {
        assert_eq!(r.header("x-amz-firehose-request-id"), Some(REQUEST_ID));
        assert_eq!(r.raw, got[0].raw, "a retry sent different bytes");
    }
}

#[tokio::test]
async fn a_413_is_not_retried() {
    let receiver = Receiver::start(&[Reply::Fail(413, Duration::ZERO)]).await;
    let dest = HttpDestination::new(&settings(&receiver.url, None, None))
        .unwrap()
        .with_retry_policy(quick_policy(5, 20, 0.0, 10_000));
    let gave_up =
        deliver_with_retry(&dest, batch(&[b"big"]), |e, _, _| panic!("retried after {e}"))
            .await
            .unwrap_err();
    assert_eq!(gave_up.attempts, 1);
    assert_eq!(gave_up.error.class, ErrorClass::Permanent);
    assert_eq!(gave_up.error.code, codes::PAYLOAD_TOO_LARGE);
    assert_eq!(gave_up.remaining, batch(&[b"big"]));
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn a_4xx_that_is_not_a_timeout_or_throttle_is_not_retried() {
    for status in [400, 401, 403, 404, 422] {
        let receiver = Receiver::start(&[Reply::Fail(status, Duration::ZERO)]).await;
        let dest = HttpDestination::new(&settings(&receiver.url, None, None))
            .unwrap()
            .with_retry_policy(quick_policy(5, 20, 0.0, 10_000));
        let gave_up = deliver_with_retry(&dest, batch(&[b"r"]), |e, _, _| {
            panic!("{status}: retried after {e}")
        })
        .await
        .unwrap_err();
        assert_eq!(gave_up.attempts, 1, "{status}");
        assert_eq!(gave_up.error.class, ErrorClass::Permanent, "{status}");
        assert_eq!(gave_up.error.code, codes::DESTINATION_EXCEPTION, "{status}");
        assert!(
            gave_up.error.message.contains(&format!("HTTP {status}")),
            "{}",
            gave_up.error.message
        );
    }
}

#[tokio::test]
async fn every_kind_of_bad_answer_is_retried_with_firehoses_code() {
    let receiver = Receiver::start(&[
        Reply::WrongId,
        Reply::NoTimestamp,
        Reply::Fail(500, Duration::ZERO),
        Reply::Fail(429, Duration::ZERO),
        Reply::Fail(408, Duration::ZERO),
        Reply::Huge,
        Reply::Drop,
    ])
    .await;
    let dest = HttpDestination::new(&settings(&receiver.url, None, None))
        .unwrap()
        .with_retry_policy(quick_policy(1, 2, 0.0, 10_000));
    let mut codes_seen = Vec::new();
    deliver_with_retry(&dest, batch(&[b"r"]), |e, _, _| {
        assert_eq!(e.class, ErrorClass::Transient);
        codes_seen.push(e.code.clone());
    })
    .await
    .unwrap();
    assert_eq!(
        codes_seen,
        [
            codes::INVALID_RESPONSE,
            codes::INVALID_RESPONSE,
            codes::DESTINATION_EXCEPTION,
            codes::DESTINATION_EXCEPTION,
            codes::DESTINATION_EXCEPTION,
            codes::RESPONSE_TOO_LARGE,
            codes::CONNECTION_RESET,
        ]
    );
    let got = receiver.received();
    assert_eq!(got.len(), 8);
    assert!(got.iter().all(|r| r.raw == got[0].raw));
}

#[tokio::test]
async fn a_slow_answer_times_out_and_is_retried() {
    let receiver = Receiver::start(&[Reply::Slow(Duration::from_secs(3))]).await;
    let mut s = settings(&receiver.url, None, None);
    s.response_timeout = Duration::from_millis(300);
    let dest =
        HttpDestination::new(&s).unwrap().with_retry_policy(quick_policy(5, 20, 0.0, 10_000));
    let started = Instant::now();
    let mut seen = Vec::new();
    deliver_with_retry(&dest, batch(&[b"r"]), |e, _, _| seen.push(e.clone())).await.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].code, codes::REQUEST_TIMEOUT);
    assert!(seen[0].message.contains("300ms"), "{}", seen[0].message);
    assert!(started.elapsed() < Duration::from_secs(2), "waited for the slow answer");
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].raw, got[1].raw);
}

#[tokio::test]
async fn an_endpoint_that_is_not_listening_is_a_connection_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/in", listener.local_addr().unwrap());
    drop(listener);
    let dest = HttpDestination::new(&settings(&url, None, None)).unwrap();
    let e = dest.deliver(&batch(&[b"r"])).await.unwrap_err();
    assert_eq!(e.code, codes::CONNECTION_FAILED);
    assert!(e.is_retryable());
}

#[tokio::test]
async fn retries_follow_the_exponential_schedule() {
    let fail = Reply::Fail(500, Duration::ZERO);
    let receiver = Receiver::start(&[fail, fail, fail, fail]).await;
    let dest = HttpDestination::new(&settings(&receiver.url, None, None))
        .unwrap()
        .with_retry_policy(quick_policy(60, 200, 0.15, 10_000));
    let mut announced = Vec::new();
    deliver_with_retry(&dest, batch(&[b"r"]), |_, _, wait| announced.push(wait)).await.unwrap();
    let got = receiver.received();
    assert_eq!(got.len(), 5);
    let gaps: Vec<Duration> = got.windows(2).map(|w| w[1].at - w[0].at).collect();
    for (i, (base_ms, gap)) in [60u64, 120, 200, 200].into_iter().zip(&gaps).enumerate() {
        let wait = announced[i];
        let base = Duration::from_millis(base_ms);
        assert!(wait >= base.mul_f64(0.85) && wait <= base.mul_f64(1.15), "wait {i}: {wait:?}");
        // The gap is the wait plus one round trip on loopback (generous for loaded CI).
        assert!(
            *gap >= wait && *gap <= wait + Duration::from_millis(250),
            "gap {i}: {gap:?} vs {wait:?}"
        );
    }
}

#[tokio::test]
async fn retries_stop_when_the_retry_duration_is_used_up_not_counting_answer_time() {
    // Every answer takes 150 ms and fails. Waits of 40, 80, 160 ms use 280 of the 300 ms; the
    // fourth wait is cut to the 20 ms left, so a fifth attempt lands at the deadline. The
    // attempts' own 750 ms are not counted.
    let fail = Reply::Fail(500, Duration::from_millis(150));
    let receiver = Receiver::start(&[fail; 10]).await;
    let dest = HttpDestination::new(&settings(&receiver.url, None, None))
        .unwrap()
        .with_retry_policy(quick_policy(40, 160, 0.0, 300));
    let started = Instant::now();
    let gave_up = deliver_with_retry(&dest, batch(&[b"r"]), |_, _, _| {}).await.unwrap_err();
    assert_eq!(gave_up.attempts, 5);
    assert_eq!(gave_up.error.code, codes::DESTINATION_EXCEPTION);
    assert!(
        gave_up.error.message.contains("HTTP 500") && gave_up.error.message.contains("not today")
    );
    assert_eq!(receiver.received().len(), 5);
    assert!(started.elapsed() >= Duration::from_millis(5 * 150 + 300));
}

#[tokio::test]
async fn a_zero_retry_duration_makes_exactly_one_attempt() {
    let receiver = Receiver::start(&[Reply::Fail(500, Duration::ZERO)]).await;
    let endpoint =
        EndpointConfiguration { url: receiver.url.clone(), name: None, access_key: None };
    let s = HttpEndpointSettings::validate(HttpEndpointInput {
        endpoint: &endpoint,
        request: None,
        retry_duration_in_seconds: Some(0),
        buffering_size_in_mbs: None,
        buffering_interval_in_seconds: None,
        source_arn: ARN,
    })
    .unwrap();
    let dest = HttpDestination::new(&s).unwrap(); // Firehose's own policy
    let gave_up = deliver_with_retry(&dest, batch(&[b"r"]), |_, _, _| {}).await.unwrap_err();
    assert_eq!(gave_up.attempts, 1);
    assert_eq!(receiver.received().len(), 1);
}
