//! A fault-injecting `_bulk` endpoint on 127.0.0.1, for the retry paths a real cluster (or
//! osmem-server) will not produce on demand: per-document 429/5xx/4xx items, whole-request
//! error statuses, slow answers and dropped connections.
//!
//! It indexes like a cluster whose mapping says `n` is an integer: a document whose `n` is not
//! one is refused with a mapping error, the others are kept by `_id`.
//!
//! Every request is recorded (headers of interest and the documents of its body) before any
//! fault is applied, so a test can check exactly what each attempt sent.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

/// What happens to one whole request (faults are used up in order, one per request).
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this HTTP status and an OpenSearch-style error body.
    Status(u16),
    /// Wait this long, then answer normally.
    Slow(Duration),
    /// Close the connection without answering.
    Drop,
}

/// One document as the stub received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub index: String,
    pub id: Option<String>,
    pub source: String,
}

/// One request as the stub received it.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    pub path: String,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    pub docs: Vec<Received>,
    /// Why the body was not a well-formed `_bulk` body (the stub then answered 400).
    pub malformed: Option<String>,
}

impl ReceivedRequest {
    /// The `_id`s of the request's documents, in body order.
    pub fn ids(&self) -> Vec<&str> {
        self.docs.iter().map(|d| d.id.as_deref().unwrap_or("")).collect()
    }
}

#[derive(Default)]
struct State {
    received: Vec<ReceivedRequest>,
    faults: VecDeque<Fault>,
    /// Item status per `_id`, one per attempt that carries the document; 201 afterwards.
    items: HashMap<String, VecDeque<u16>>,
    /// The documents indexed, by index and `_id` (a document without one gets a new id).
    stored: HashMap<(String, String), String>,
}

/// The running stub. Dropping it stops accepting connections.
pub struct BulkStub {
    /// `http://127.0.0.1:<port>`, to use as ClusterEndpoint.
    pub url: String,
    state: Arc<Mutex<State>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for BulkStub {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl BulkStub {
    pub async fn start() -> BulkStub {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the stub");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(state.clone(), req));
                    // A `Drop` fault ends the connection with an error: that is the point.
                    let _ =
                        http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        BulkStub { url, state, accept }
    }

    /// Queues faults for the next requests, one each.
    pub fn fault(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state.lock().unwrap().faults.extend(faults);
    }

    /// The item statuses the document with `_id` `id` gets on its next attempts (201 once
    /// they are used up).
    pub fn item_statuses(&self, id: &str, statuses: &[u16]) {
        self.state.lock().unwrap().items.insert(id.to_string(), statuses.iter().copied().collect());
    }

    /// The sources of the documents indexed so far (a document indexed again under its id
    /// replaces itself, as in a cluster).
    pub fn stored(&self) -> Vec<String> {
        self.state.lock().unwrap().stored.values().cloned().collect()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.state.lock().unwrap().received.clone()
    }
}

/// The error type hyper sees when a `Drop` fault closes the connection.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the stub")
    }
}

impl std::error::Error for Dropped {}

async fn handle(
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let header =
        |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (content_type, authorization) = (header("content-type"), header("authorization"));
    let path = req.uri().path().to_string();
    let body = req.into_body().collect().await.map_err(|_| Dropped)?.to_bytes();
    let (docs, malformed) = match parse_bulk(&body) {
        Ok(docs) => (docs, None),
        Err(why) => (Vec::new(), Some(why)),
    };
    let fault = {
        let mut state = state.lock().unwrap();
        state.received.push(ReceivedRequest {
            path,
            content_type,
            authorization,
            docs: docs.clone(),
            malformed: malformed.clone(),
        });
        state.faults.pop_front()
    };
    if let Some(why) = malformed {
        let body =
            json!({"error": {"type": "illegal_argument_exception", "reason": why}, "status": 400});
        return Ok(json_response(400, &body));
    }
    match fault {
        Some(Fault::Drop) => return Err(Dropped),
        Some(Fault::Status(status)) => {
            let body = json!({
                "error": {"type": "stub_fault", "reason": format!("injected HTTP {status}")},
                "status": status,
            });
            return Ok(json_response(status, &body));
        }
        Some(Fault::Slow(wait)) => tokio::time::sleep(wait).await,
        None => {}
    }
    let items: Vec<Value> = {
        let mut state = state.lock().unwrap();
        let generated = state.stored.len();
        docs.iter()
            .enumerate()
            .map(|(i, doc)| {
                let key = doc.id.clone().unwrap_or_default();
                let scripted = state.items.get_mut(&key).and_then(VecDeque::pop_front);
                let status = scripted.unwrap_or(if maps(&doc.source) { 201 } else { 400 });
                if status == 201 {
                    let id =
                        doc.id.clone().unwrap_or_else(|| format!("generated-{}", generated + i));
                    state.stored.insert((doc.index.clone(), id), doc.source.clone());
                }
                item(doc, status)
            })
            .collect()
    };
    let errors = items.iter().any(|i| i["index"]["status"].as_u64() != Some(201));
    Ok(json_response(200, &json!({"took": 1, "errors": errors, "items": items})))
}

/// Whether a source fits the stub's mapping, `n` an integer (as a cluster with
/// `{"n": {"type": "integer"}}` refuses `{"n":"ten"}`).
fn maps(source: &str) -> bool {
    let source: Value = serde_json::from_str(source).unwrap_or(Value::Null);
    source.get("n").is_none_or(|n| n.is_i64() || n.is_u64())
}

fn item(doc: &Received, status: u16) -> Value {
    let mut result = json!({"_index": doc.index, "_id": doc.id, "status": status});
    let error = match status {
        200..=299 => {
            result["result"] = json!("created");
            return json!({ "index": result });
        }
        429 => ("es_rejected_execution_exception", "rejected execution: write queue is full"),
        500..=599 => ("unavailable_shards_exception", "primary shard is not active"),
        _ => ("mapper_parsing_exception", "failed to parse field [n] of type [integer]"),
    };
    result["error"] = json!({"type": error.0, "reason": error.1});
    json!({ "index": result })
}

fn json_response(status: u16, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid response")
}

/// Reads pairs of action and source lines, or says what is wrong with the body.
fn parse_bulk(body: &[u8]) -> Result<Vec<Received>, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("body is not UTF-8: {e}"))?;
    if !text.ends_with('\n') {
        return Err("the body must end with a newline".into());
    }
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    if !lines.len().is_multiple_of(2) {
        return Err(format!("action and source lines do not pair up: {text}"));
    }
    lines
        .chunks(2)
        .map(|pair| {
            let action: Value =
                serde_json::from_str(pair[0]).map_err(|e| format!("action line: {e}"))?;
            let meta = action.get("index").ok_or("the action is not `index`")?;
            serde_json::from_str::<serde_json::Map<String, Value>>(pair[1])
                .map_err(|e| format!("source line is not a JSON object: {e}"))?;
            Ok(Received {
                index: meta["_index"].as_str().ok_or("no _index")?.to_string(),
                id: meta["_id"].as_str().map(str::to_string),
                source: pair[1].to_string(),
            })
        })
        .collect()
}
