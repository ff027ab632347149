//! The bounds on what one HTTP client may hold, in process: request memory is reserved only
//! for authenticated-looking requests of a valid size, per client and in time; bodies must
//! keep arriving; and the real listener closes slow, idle and surplus connections and still
//! stops gracefully. The same attacks against the real binary with real clients are in
//! tests/clients/test_slow_clients.py.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use axum::routing::get;
use http_body_util::BodyExt;
use hydrant::api::{self, BodyRate, MAX_INFLIGHT_MIB};
use hydrant::listener::clients::{ClientLimits, Clients};
use hydrant::listener::{self, Listener, Peer};
use hydrant::server::Hydrant;
use hydrant::telemetry::Metrics;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

mod common;

const TOTAL_KIB: usize = MAX_INFLIGHT_MIB as usize * 1024;

fn config(dir: &Path, sigv4: bool) -> hydrant::plan::ServerPlan {
    let auth = if sigv4 {
        "auth:\n  mode: sigv4\n  credentials:\n    - { access_key_id: AKIDKNOWN, secret_access_key: known-secret }\n"
    } else {
        ""
    };
    let yaml = format!(
        "data_dir: {data}\nobject_stores:\n  local: {{ type: local, root: {root} }}\n{auth}\
         delivery_streams:\n  - DeliveryStreamName: clicks\n    ExtendedS3DestinationConfiguration:\n      \
         BucketARN: arn:aws:s3:::raw\n      Prefix: clicks/\n    hydrant: {{ object_store: local, shards: 1 }}\n",
        data = dir.join("data").display(),
        root = dir.join("buckets").display(),
    );
    hydrant::plan::parse(&yaml, dir).expect("valid test config")
}

/// A body that never sends a byte, and whether anyone ever asked it for one.
fn silent_body() -> (Body, Arc<AtomicBool>) {
    let polled = Arc::new(AtomicBool::new(false));
    let flag = polled.clone();
    let stream = futures::stream::poll_fn(move |_| {
        flag.store(true, Ordering::SeqCst);
        Poll::<Option<Result<Bytes, std::io::Error>>>::Pending
    });
    (Body::from_stream(stream), polled)
}

fn put_request(length: usize) -> axum::http::request::Builder {
    Request::post("/")
        .header("x-amz-target", "Firehose_20150804.PutRecordBatch")
        .header("content-type", "application/x-amz-json-1.1")
        .header("content-length", length.to_string())
}

fn small_batch() -> String {
    json!({"DeliveryStreamName": "clicks", "Records": [{"Data": "eAo="}]}).to_string()
}

fn signed_put(key: &str, secret: &str, length: usize, body: Body) -> Request<Body> {
    signed_call(key, secret, "PutRecordBatch", length, body)
}

/// A call signed over an empty body (the body is never checked in these tests).
fn signed_call(
    key: &str,
    secret: &str,
    operation: &str,
    length: usize,
    body: Body,
) -> Request<Body> {
    let mut request = Request::post("/").header("content-length", length.to_string());
    for (name, value) in common::signed_headers(key, secret, operation, b"") {
        request = request.header(name, value);
    }
    request.body(body).unwrap()
}

async fn answer(app: &axum::Router, request: Request<Body>) -> (StatusCode, Value, bool) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let close = response.headers().get("connection").is_some_and(|v| v == "close");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null), close)
}

async fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_access_key_is_refused_before_any_memory_is_reserved_for_its_body() {
    let dir = tempfile::tempdir().unwrap();
    let hydrant = Hydrant::start(&config(dir.path(), true)).unwrap();
    let app = api::router(hydrant.state.clone());
    let inflight = hydrant.state.inflight.clone();

    // All request memory is taken: a call that tried to reserve any would wait 5 s, then 503.
    let everything = inflight.clone().acquire_many_owned(TOTAL_KIB as u32).await.unwrap();
    let (body, polled) = silent_body();
    let started = Instant::now();
    let (status, error, _) =
        answer(&app, signed_put("AKIDUNKNOWN", "whatever", 8 << 20, body)).await;
    assert_eq!(
        (status, error["__type"].as_str()),
        (StatusCode::BAD_REQUEST, Some("UnrecognizedClientException"))
    );
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert!(!polled.load(Ordering::SeqCst), "the body of an unknown key was read");
    drop(everything);

    // A known key (its signature cannot be checked before the body is in) does reserve.
    let (body, polled) = silent_body();
    let request = signed_put("AKIDKNOWN", "known-secret", 8 << 20, body);
    let pending = tokio::spawn({
        let app = app.clone();
        async move { app.oneshot(request).await }
    });
    wait_until("the known key's reservation", || inflight.available_permits() == TOTAL_KIB - 8192)
        .await;
    assert!(polled.load(Ordering::SeqCst));
    pending.abort();
    let _ = pending.await;
    wait_until("the reservation to be given back", || inflight.available_permits() == TOTAL_KIB)
        .await;
    hydrant.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_may_not_call_the_operation_is_refused_before_its_large_body_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let hydrant = Hydrant::start(&config(dir.path(), true)).unwrap();
    let app = api::router(hydrant.state.clone());
    let inflight = hydrant.state.inflight.clone();

    // AKIDKNOWN has no `actions`: data plane only. All request memory is taken, so a call
    // that reserved any would wait 5 s, and a body that was read would time out after 10 s.
    let everything = inflight.clone().acquire_many_owned(TOTAL_KIB as u32).await.unwrap();
    let (body, _polled) = silent_body();
    let started = Instant::now();
    let request = signed_call("AKIDKNOWN", "known-secret", "CreateDeliveryStream", 8 << 20, body);
    let (status, error, _) = answer(&app, request).await;
    assert_eq!(
        (status, error["__type"].as_str()),
        (StatusCode::BAD_REQUEST, Some("AccessDeniedException")),
        "{error}"
    );
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("not authorized to perform: firehose:CreateDeliveryStream")
            && message.contains("auth.credentials[].actions"),
        "{message}"
    );
    // The signature is not checked yet: what the key may call is not told to whoever sent it.
    assert!(!message.contains("may call"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    drop(everything);
    hydrant.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_length_over_8_mib_is_answered_413_before_its_body_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let hydrant = Hydrant::start(&config(dir.path(), false)).unwrap();
    let app = api::router(hydrant.state.clone());
    for length in [(8 << 20) + 1, usize::MAX / 2] {
        let (body, _) = silent_body();
        let request = put_request(length).body(body).unwrap();
        let started = Instant::now();
        let (status, error, close) = answer(&app, request).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{error}");
        assert_eq!(error["__type"], "RequestEntityTooLargeException");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("{length} bytes")) && message.contains("4 MiB"),
            "{message}"
        );
        assert!(close, "the connection cannot carry another request");
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(hydrant.state.inflight.available_permits(), TOTAL_KIB, "nothing reserved");
    }
    // Exactly 8 MiB is not too large: it is read (and refused for what it holds).
    let request = put_request(8 << 20).body(Body::from(vec![b' '; 8 << 20])).unwrap();
    let (status, error, _) = answer(&app, request).await;
    assert_eq!(
        (status, error["__type"].as_str()),
        (StatusCode::BAD_REQUEST, Some("SerializationException"))
    );
    hydrant.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_that_grows_past_8_mib_is_answered_413() {
    let dir = tempfile::tempdir().unwrap();
    let hydrant = Hydrant::start(&config(dir.path(), false)).unwrap();
    let app = api::router(hydrant.state.clone());
    let chunks = (0..9).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 1 << 20])));
    let request = Request::post("/")
        .header("x-amz-target", "Firehose_20150804.PutRecordBatch")
        .header("content-type", "application/x-amz-json-1.1")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    let (status, error, _) = answer(&app, request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{error}");
    assert!(error["message"].as_str().unwrap().contains("chunked"), "{error}");
    hydrant.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_below_the_minimum_rate_is_cut_off_and_one_above_it_fits() {
    let dir = tempfile::tempdir().unwrap();
    let hydrant = Hydrant::start(&config(dir.path(), false)).unwrap();
    let mut state = hydrant.state.clone();
    state.body_rate = BodyRate { grace: Duration::from_millis(300), min_bytes_per_second: 1024 };
    let app = api::router(state);

    let (body, _) = silent_body();
    let started = Instant::now();
    let (status, error, close) = answer(&app, put_request(1000).body(body).unwrap()).await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{error}");
    assert_eq!(error["__type"], "RequestTimeoutException");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("0 of 1000 bytes") && message.contains("1024 bytes per second"),
        "{message}"
    );
    assert!(close);
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(3), "{took:?}");

    // ~2.4 KiB/s for 1.2 s: longer than the 300 ms allowance, never behind 1 KiB/s, and
    // no pause as long as the allowance.
    let batch = small_batch().into_bytes();
    let mut padded = batch.clone();
    padded.resize(3000, b' ');
    let pieces: Vec<Bytes> = padded.chunks(500).map(Bytes::copy_from_slice).collect();
    let stream = futures::stream::unfold(pieces.into_iter(), |mut rest| async move {
        let piece = rest.next()?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        Some((Ok::<_, std::io::Error>(piece), rest))
    });
    let started = Instant::now();
    let request = put_request(3000).body(Body::from_stream(stream)).unwrap();
    let (status, answer_body, _) = answer(&app, request).await;
    assert_eq!(status, StatusCode::OK, "{answer_body}");
    assert_eq!(answer_body["FailedPutCount"], 0);
    assert!(started.elapsed() > Duration::from_millis(1000));
    hydrant.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_mostly_at_once_cannot_then_stall_past_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let hydrant = Hydrant::start(&config(dir.path(), false)).unwrap();
    let mut state = hydrant.state.clone();
    state.body_rate = BodyRate { grace: Duration::from_millis(300), min_bytes_per_second: 1024 };
    let app = api::router(state);

    // 20,000 bytes at once earn ~20 s at 1 KiB/s on average; then nothing more comes.
    let mut sent = false;
    let stream = futures::stream::poll_fn(move |_| {
        if std::mem::replace(&mut sent, true) {
            Poll::Pending
        } else {
            Poll::Ready(Some(Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 20_000]))))
        }
    });
    let started = Instant::now();
    let request = put_request(20_001).body(Body::from_stream(stream)).unwrap();
    let (status, error, close) = answer(&app, request).await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{error}");
    assert!(error["message"].as_str().unwrap().contains("20000 of 20001 bytes"), "{error}");
    assert!(close);
    println!("a front-loaded body that stalls is cut off after {took:?}");
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(3), "{took:?}");
    hydrant.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_at_its_inflight_cap_gets_503_while_another_client_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let hydrant = Hydrant::start(&config(dir.path(), false)).unwrap();
    let app = api::router(hydrant.state.clone());
    let inflight = hydrant.state.inflight.clone();
    let clients = Clients::new(ClientLimits { max_connections: 0, max_inflight_bytes: 8 << 20 });
    let greedy_ip: IpAddr = "10.0.0.1".parse().unwrap();
    let greedy = clients.admit(greedy_ip).unwrap();
    let other = clients.admit("10.0.0.2".parse().unwrap()).unwrap();
    let from = |admitted: &listener::clients::Admitted, request: Request<Body>| {
        let mut request = request;
        let addr = SocketAddr::new(greedy_ip, 40000); // only the client is looked at
        request.extensions_mut().insert(Peer { addr, client: admitted.client().clone() });
        request
    };

    // The greedy client announces 8 MiB and sends nothing: its whole allowance is taken.
    let (body, _) = silent_body();
    let holder = tokio::spawn({
        let (app, request) = (app.clone(), from(&greedy, put_request(8 << 20).body(body).unwrap()));
        async move { app.oneshot(request).await }
    });
    wait_until("the greedy reservation", || inflight.available_permits() == TOTAL_KIB - 8192).await;

    // Its next call waits for room, then is told to slow down; the other client is served at once.
    let batch = small_batch();
    let greedy_call = tokio::spawn({
        let request =
            from(&greedy, put_request(batch.len()).body(Body::from(batch.clone())).unwrap());
        let app = app.clone();
        async move {
            let started = Instant::now();
            (answer(&app, request).await, started.elapsed())
        }
    });
    let started = Instant::now();
    let request = from(&other, put_request(batch.len()).body(Body::from(batch.clone())).unwrap());
    let (status, body, _) = answer(&app, request).await;
    assert_eq!((status, body["FailedPutCount"].as_u64()), (StatusCode::OK, Some(0)), "{body}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());

    let ((status, error, _), waited) = greedy_call.await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{error}");
    assert_eq!(error["__type"], "ServiceUnavailableException");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("10.0.0.1") && message.contains("http.max_inflight_bytes_per_client"),
        "{message}"
    );
    assert!(waited >= Duration::from_secs(4), "{waited:?}");
    assert!(hydrant
        .state
        .metrics
        .render()
        .contains("hydrant_http_requests_rejected_total{reason=\"client_inflight\"}"));
    holder.abort();
    let _ = holder.await;
    drop((greedy, other));
    hydrant.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_admin_listener_metrics_and_readiness_leave_the_api_router() {
    let dir = tempfile::tempdir().unwrap();
    let hydrant = Hydrant::start(&config(dir.path(), false)).unwrap();
    let get = |app: axum::Router, path: &'static str| async move {
        app.oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap().status()
    };
    let public = api::api_router(hydrant.state.clone());
    let admin = api::admin_router(hydrant.state.clone());
    let both = api::router(hydrant.state.clone());
    assert_eq!(get(public.clone(), "/healthz").await, StatusCode::OK);
    assert_eq!(get(public.clone(), "/metrics").await, StatusCode::BAD_REQUEST);
    assert_eq!(get(public, "/readyz").await, StatusCode::BAD_REQUEST);
    for path in ["/healthz", "/metrics", "/readyz"] {
        assert_eq!(get(admin.clone(), path).await, StatusCode::OK, "admin {path}");
        assert_eq!(get(both.clone(), path).await, StatusCode::OK, "single port {path}");
    }
    let (status, answer, _) =
        answer(&admin, put_request(small_batch().len()).body(Body::from(small_batch())).unwrap())
            .await;
    assert_eq!(
        (status, answer["__type"].as_str()),
        (StatusCode::BAD_REQUEST, Some("UnknownOperationException"))
    );
    hydrant.shutdown().await;
}

// --- the listener over real TCP ------------------------------------------------------------------

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_millis(800)).await;
    "done\n"
}

async fn start_listener(
    http: &str,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<std::io::Result<()>>) {
    let http: hydrant::config::HttpConfig = serde_yaml_ng::from_str(http).unwrap();
    let router =
        axum::Router::new().route("/healthz", get(|| async { "ok\n" })).route("/slow", get(slow));
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listener = Listener::new("api", tcp, None, router, &http);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(listener::serve(vec![listener], Metrics::global(), async move {
        let _ = stopped.await;
    }));
    (addr, stop, server)
}

/// Reads until the server closes the connection; (bytes, how long it took).
async fn until_closed(stream: &mut TcpStream, within: Duration) -> (Vec<u8>, Option<Duration>) {
    let started = Instant::now();
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + within).into(), stream.read(&mut buf)).await {
            Err(_) => return (data, None),
            Ok(Ok(0)) | Ok(Err(_)) => return (data, Some(started.elapsed())),
            Ok(Ok(n)) => data.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_closes_surplus_silent_and_idle_connections() {
    let (addr, stop, server) = start_listener(
        "{ header_timeout_seconds: 1, idle_timeout_seconds: 2, max_connections_per_client: 2 }",
    )
    .await;
    let mut first = TcpStream::connect(addr).await.unwrap();
    let mut second = TcpStream::connect(addr).await.unwrap();
    // A third connection from the same address is closed at once, without an answer.
    let mut third = TcpStream::connect(addr).await.unwrap();
    let (data, closed) = until_closed(&mut third, Duration::from_secs(5)).await;
    assert!(data.is_empty() && closed.unwrap() < Duration::from_millis(500), "{closed:?}");

    // The second sends half a request head: both are cut off at the 1 s header timeout.
    let opened = Instant::now();
    second.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    for stream in [&mut first, &mut second] {
        let (data, closed) = until_closed(stream, Duration::from_secs(5)).await;
        assert!(data.is_empty() && closed.is_some(), "{}", String::from_utf8_lossy(&data));
        let after = opened.elapsed();
        assert!(after >= Duration::from_millis(700) && after < Duration::from_secs(3), "{after:?}");
    }

    // A kept-alive connection that goes quiet is closed after the 2 s idle timeout, not the
    // 1 s header timeout; each new request head gets a fresh second.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    for _ in 0..2 {
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 1024];
        let n = idle.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let (_, closed) = until_closed(&mut idle, Duration::from_secs(5)).await;
    let closed = closed.expect("closed");
    assert!(closed < Duration::from_secs(2), "{closed:?}");

    let metrics = Metrics::global().render();
    for needle in [
        "hydrant_http_connections_rejected_total{listener=\"api\",reason=\"client_connections\"}",
        "hydrant_http_connections_timed_out_total{listener=\"api\",phase=\"header\"}",
        "hydrant_http_connections_timed_out_total{listener=\"api\",phase=\"idle\"}",
    ] {
        assert!(metrics.contains(needle), "{needle} missing:\n{metrics}");
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_answers_the_request_in_flight_and_closes_idle_connections() {
    let (addr, stop, server) = start_listener("{}").await;
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 1024];
    assert!(idle.read(&mut buf).await.unwrap() > 0);
    let mut busy = TcpStream::connect(addr).await.unwrap();
    busy.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let _ = stop.send(());
    let (data, closed) = until_closed(&mut idle, Duration::from_secs(5)).await;
    assert!(data.is_empty() && closed.unwrap() < Duration::from_millis(500), "{closed:?}");
    let (data, _) = until_closed(&mut busy, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&data);
    assert!(text.starts_with("HTTP/1.1 200") && text.ends_with("done\n"), "{text}");
    tokio::time::timeout(Duration::from_secs(5), server).await.unwrap().unwrap().unwrap();
    // Nothing listens any more.
    assert!(TcpStream::connect(addr).await.is_err());
}
