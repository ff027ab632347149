//! A Firehose HTTP endpoint as Firehose asks receivers to be: it acknowledges each request
//! with its `requestId` and keeps the records of one request id once, so a request sent again
//! (a retry, or a replay after a crash) is not stored twice.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{DefaultBodyLimit, State};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{json, Value};

type Requests = Arc<Mutex<BTreeMap<String, Vec<Bytes>>>>;

/// The running receiver, until the test's runtime ends.
pub struct Receiver {
    /// `http://127.0.0.1:<port>/firehose`.
    pub url: String,
    requests: Requests,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let requests = Requests::default();
        let app = Router::new()
            .route("/firehose", post(handle))
            .layer(DefaultBodyLimit::disable())
            .with_state(requests.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/firehose", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, requests }
    }

    /// The records kept, request by request.
    pub fn stored(&self) -> Vec<Bytes> {
        self.requests.lock().unwrap().values().flatten().cloned().collect()
    }
}

async fn handle(State(requests): State<Requests>, body: Bytes) -> impl IntoResponse {
    let body: Value = serde_json::from_slice(&body).unwrap();
    let id = body["requestId"].as_str().unwrap().to_owned();
    let records = body["records"].as_array().unwrap().iter();
    let records = records.map(|r| Bytes::from(BASE64.decode(r["data"].as_str().unwrap()).unwrap()));
    requests.lock().unwrap().insert(id.clone(), records.collect());
    let answer = json!({ "requestId": id, "timestamp": 1_578_090_903_599u64 });
    ([("content-type", "application/json")], answer.to_string())
}
