//! Should we retry? Reading a `_bulk` answer into an [`Outcome`].
//!
//! A whole request that fails says nothing about single documents:
//!
//! | answer | class | code |
//! |---|---|---|
//! | no connection, timeout, dropped connection | transient | `OS.ConnectionFailed`, `OS.Timeout`, `OS.RequestFailed` |
//! | 401, 403 | transient (an operator can fix credentials) | `OS.AccessDenied` |
//! | 408 | transient | `OS.Timeout` |
//! | 429 | transient | `OS.TooManyRequests` |
//! | 5xx | transient | `OS.ServerError` |
//! | 413 | permanent (the batch is too large for the cluster) | `OS.RequestEntityTooLarge` |
//! | other 4xx, 3xx (redirects are not followed) | permanent | `OS.BadRequest`, `OS.HttpError` |
//! | 2xx whose body is not a `_bulk` answer for this request | transient | `OS.InvalidResponse` |
//!
//! A 2xx answer lists one item per document, in body order. Items with a 2xx status are
//! delivered (a 409 on a `create` action means the document is already there; Hydrant sends
//! `index` actions, which do not conflict). Items with 429, a 5xx status, or a
//! `cluster_block_exception` (a read-only index, usually a full disk, which an operator can
//! clear) are sent again, alone, in the next attempt. Every other item is rejected for good
//! with code `OS.<error type in CamelCase>`, e.g. `OS.MapperParsingException`.
//! (`ES.` replaces `OS.` for an Elasticsearch destination.)

use serde::Deserialize;

use super::request_builder::{BulkRequest, EncodedBulk};
use crate::{DestinationError, Outcome, Rejected};

/// The parts of a `_bulk` answer Hydrant reads.
#[derive(Debug, Deserialize)]
struct BulkResponse {
    items: Vec<BulkItem>,
}

/// One item: `{"<action>": {...}}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum BulkItem {
    Index(ItemResult),
    Create(ItemResult),
    Update(ItemResult),
    Delete(ItemResult),
}

#[derive(Debug, Deserialize)]
struct ItemResult {
    status: u16,
    #[serde(default)]
    error: Option<ItemError>,
}

/// An error object, or the plain string very old Elasticsearch versions send.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ItemError {
    Detail(ErrorDetail),
    Text(String),
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    caused_by: Option<Box<ErrorDetail>>,
}

/// A whole-request error body: `{"error": {...}, "status": N}` (or `{"error": "text"}`).
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ItemError,
}

/// Turns one HTTP answer to `encoded` (built from `request`) into the attempt's outcome.
/// Documents rejected before sending (`encoded.rejected`) are included in the result.
pub(crate) fn response_outcome(
    request: &BulkRequest,
    encoded: EncodedBulk,
    status: u16,
    body: &[u8],
    prefix: &str,
) -> Result<Outcome<BulkRequest>, DestinationError> {
    if !(200..300).contains(&status) {
        return Err(request_error(status, body, encoded.body.len(), prefix));
    }
    let invalid = |why: String| {
        DestinationError::transient(
            format!("{prefix}.InvalidResponse"),
            format!("the cluster answered _bulk with HTTP {status} but {why}: {}", snippet(body)),
        )
    };
    let response: BulkResponse =
        serde_json::from_slice(body).map_err(|e| invalid(format!("not a _bulk answer ({e})")))?;
    if response.items.len() != encoded.sent.len() {
        return Err(invalid(format!(
            "with {} items for {} documents",
            response.items.len(),
            encoded.sent.len()
        )));
    }
    let mut rejected = encoded.rejected;
    let mut retry = Vec::new();
    for (item, &position) in response.items.into_iter().zip(&encoded.sent) {
        let doc = &request.docs[position];
        let (create, result) = match item {
            BulkItem::Create(r) => (true, r),
            BulkItem::Index(r) | BulkItem::Update(r) | BulkItem::Delete(r) => (false, r),
        };
        match item_verdict(create, &result) {
            Verdict::Delivered => {}
            Verdict::Retry => retry.push(doc.clone()),
            Verdict::Reject => rejected.push(Rejected {
                index: doc.index,
                code: item_code(prefix, result.error.as_ref()),
                message: item_message(&result),
            }),
        }
    }
    rejected.sort_by_key(|r| r.index);
    if !retry.is_empty() || !rejected.is_empty() {
        tracing::debug!(retry = retry.len(), rejected = rejected.len(), "bulk items failed");
    }
    if retry.is_empty() {
        Ok(Outcome::Delivered { rejected })
    } else {
        Ok(Outcome::RetryPartial { request: BulkRequest { docs: retry }, rejected })
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Delivered,
    Retry,
    Reject,
}

fn item_verdict(create: bool, result: &ItemResult) -> Verdict {
    let kind = match &result.error {
        Some(ItemError::Detail(d)) => d.kind.as_str(),
        _ => "",
    };
    match result.status {
        200..=299 => Verdict::Delivered,
        409 if create => Verdict::Delivered,
        429 | 500..=599 => Verdict::Retry,
        _ if kind == "cluster_block_exception" => Verdict::Retry,
        _ => Verdict::Reject,
    }
}

/// `mapper_parsing_exception` becomes `OS.MapperParsingException`.
fn item_code(prefix: &str, error: Option<&ItemError>) -> String {
    match error {
        Some(ItemError::Detail(d)) if !d.kind.is_empty() => {
            let camel: String = d
                .kind
                .split(['_', '.'])
                .flat_map(|word| {
                    let mut chars = word.chars();
                    chars.next().map(|c| c.to_ascii_uppercase()).into_iter().chain(chars)
                })
                .collect();
            format!("{prefix}.{camel}")
        }
        _ => format!("{prefix}.DocumentRejected"),
    }
}

/// `type: reason; caused by type: reason (status N)`.
fn item_message(result: &ItemResult) -> String {
    let mut out = match &result.error {
        Some(ItemError::Detail(d)) => describe(d),
        Some(ItemError::Text(t)) => t.clone(),
        None => "no error description".into(),
    };
    out.push_str(&format!(" (status {})", result.status));
    out
}

fn describe(d: &ErrorDetail) -> String {
    let mut out = d.kind.clone();
    if let Some(reason) = &d.reason {
        out.push_str(": ");
        out.push_str(reason);
    }
    if let Some(cause) = &d.caused_by {
        out.push_str("; caused by ");
        out.push_str(&describe(cause));
    }
    out
}

/// The error for a whole request answered with a non-2xx `status`.
pub(crate) fn request_error(
    status: u16,
    body: &[u8],
    body_len: usize,
    prefix: &str,
) -> DestinationError {
    let said = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error: ItemError::Detail(d) }) => describe(&d),
        Ok(ErrorBody { error: ItemError::Text(t) }) => t,
        Err(_) => snippet(body),
    };
    let code = |c: &str| format!("{prefix}.{c}");
    match status {
        401 | 403 => DestinationError::transient(
            code("AccessDenied"),
            format!(
                "the cluster refused the request (HTTP {status}: {said}); check the configured \
                 username and password and that the user may write to the index \
                 (indices:data/write/bulk). Retrying until RetryOptions.DurationInSeconds runs out"
            ),
        ),
        408 => DestinationError::transient(code("Timeout"), format!("HTTP 408: {said}")),
        429 => DestinationError::transient(
            code("TooManyRequests"),
            format!("the cluster is overloaded (HTTP 429: {said})"),
        ),
        413 => DestinationError::permanent(
            code("RequestEntityTooLarge"),
            format!(
                "the cluster refused a {body_len}-byte _bulk body (HTTP 413: {said}); lower \
                 BufferingHints.SizeInMBs below the cluster's http.max_content_length \
                 (100mb by default)"
            ),
        ),
        500..=599 => DestinationError::transient(
            code("ServerError"),
            format!("the cluster failed the _bulk request (HTTP {status}: {said})"),
        ),
        400 => DestinationError::permanent(
            code("BadRequest"),
            format!("the cluster rejected the whole _bulk request (HTTP 400: {said})"),
        ),
        300..=399 => DestinationError::permanent(
            code("HttpError"),
            format!(
                "the cluster answered with a redirect (HTTP {status}), which Hydrant does not \
                 follow; set ClusterEndpoint to the final URL"
            ),
        ),
        _ => DestinationError::permanent(
            code("HttpError"),
            format!("the cluster answered _bulk with HTTP {status}: {said}"),
        ),
    }
}

/// The start of a body, for messages.
fn snippet(body: &[u8]) -> String {
    const MAX: usize = 512;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]).into_owned();
    if body.len() > MAX {
        format!("{text}...")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::search::request_builder::{encode_bulk, Document};
    use crate::ErrorClass;

    fn request(n: usize) -> BulkRequest {
        BulkRequest {
            docs: (0..n)
                .map(|i| Document {
                    index: i * 10, // original positions differ from positions in this request
                    id: Some(format!("s-0-{i}-0")),
                    index_name: "logs".into(),
                    source: Bytes::from(format!("{{\"n\":{i}}}")),
                })
                .collect(),
        }
    }

    fn outcome(
        req: &BulkRequest,
        status: u16,
        body: &str,
    ) -> Result<Outcome<BulkRequest>, DestinationError> {
        let encoded = encode_bulk(req, None, "OS");
        response_outcome(req, encoded, status, body.as_bytes(), "OS")
    }

    fn item(status: u16, error: Option<(&str, &str)>) -> String {
        let error = error
            .map(|(t, r)| format!(",\"error\":{{\"type\":\"{t}\",\"reason\":\"{r}\"}}"))
            .unwrap_or_default();
        format!("{{\"index\":{{\"_index\":\"logs\",\"_id\":\"x\",\"status\":{status}{error}}}}}")
    }

    fn bulk(items: &[String]) -> String {
        format!("{{\"took\":3,\"errors\":true,\"items\":[{}]}}", items.join(","))
    }

    #[test]
    fn all_items_created_means_delivered() {
        let req = request(2);
        let body = bulk(&[item(201, None), item(200, None)]).replace("true", "false");
        assert!(matches!(
            outcome(&req, 200, &body).unwrap(),
            Outcome::Delivered { rejected } if rejected.is_empty()
        ));
    }

    #[test]
    fn mixed_items_retry_only_429_and_5xx_and_reject_the_rest_at_their_original_index() {
        let req = request(5);
        let body = bulk(&[
            item(201, None),
            item(
                400,
                Some(("mapper_parsing_exception", "failed to parse field [n] of type [integer]")),
            ),
            item(429, Some(("es_rejected_execution_exception", "queue full"))),
            item(503, Some(("unavailable_shards_exception", "primary shard is not active"))),
            item(201, None),
        ]);
        let Outcome::RetryPartial { request: retry, rejected } = outcome(&req, 200, &body).unwrap()
        else {
            panic!("expected a partial retry");
        };
        assert_eq!(retry.docs, vec![req.docs[2].clone(), req.docs[3].clone()]);
        assert_eq!(retry.docs[0].index, 20, "original position kept");
        assert_eq!(
            rejected,
            vec![Rejected {
                index: 10,
                code: "OS.MapperParsingException".into(),
                message: "mapper_parsing_exception: failed to parse field [n] of type [integer] \
                          (status 400)"
                    .into(),
            }]
        );
    }

    #[test]
    fn rejections_of_invalid_records_and_of_items_are_merged_in_original_order() {
        let mut req = request(3);
        req.docs[0].source = Bytes::from_static(b"not json");
        // Only documents 1 and 2 are sent, so the answer has two items.
        let body = bulk(&[
            item(404, Some(("index_not_found_exception", "no such index"))),
            item(201, None),
        ]);
        let Outcome::Delivered { rejected } = outcome(&req, 200, &body).unwrap() else {
            panic!("expected delivered");
        };
        let got: Vec<(usize, &str)> = rejected.iter().map(|r| (r.index, r.code.as_str())).collect();
        assert_eq!(got, vec![(0, "OS.MapperParsingException"), (10, "OS.IndexNotFoundException")]);
    }

    #[test]
    fn caused_by_and_create_conflicts_are_understood() {
        let req = request(2);
        let body = r#"{"errors":true,"items":[
            {"create":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"exists"}}},
            {"index":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse",
              "caused_by":{"type":"not_x_content_exception","reason":"Compressor detection"}}}}]}"#;
        let Outcome::Delivered { rejected } = outcome(&req, 200, body).unwrap() else {
            panic!("expected delivered");
        };
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].index, 10);
        assert_eq!(
            rejected[0].message,
            "mapper_parsing_exception: failed to parse; caused by not_x_content_exception: \
             Compressor detection (status 400)"
        );
    }

    #[test]
    fn a_read_only_index_block_is_retried_not_rejected() {
        let req = request(1);
        let body = bulk(&[item(
            403,
            Some((
                "cluster_block_exception",
                "index [logs] blocked by: [FORBIDDEN/12/index read-only / allow delete (api)]",
            )),
        )]);
        assert!(matches!(outcome(&req, 200, &body).unwrap(), Outcome::RetryPartial { .. }));
    }

    #[test]
    fn a_request_of_only_invalid_records_is_not_sent_and_all_are_rejected() {
        let mut req = request(1);
        req.docs[0].source = Bytes::from_static(b"[]");
        let encoded = encode_bulk(&req, None, "OS");
        assert!(encoded.body.is_empty() && encoded.sent.is_empty());
    }

    #[test]
    fn whole_request_statuses_are_classified() {
        let req = request(1);
        let cases = [
            (429, ErrorClass::Transient, "OS.TooManyRequests"),
            (500, ErrorClass::Transient, "OS.ServerError"),
            (503, ErrorClass::Transient, "OS.ServerError"),
            (401, ErrorClass::Transient, "OS.AccessDenied"),
            (403, ErrorClass::Transient, "OS.AccessDenied"),
            (408, ErrorClass::Transient, "OS.Timeout"),
            (400, ErrorClass::Permanent, "OS.BadRequest"),
            (413, ErrorClass::Permanent, "OS.RequestEntityTooLarge"),
            (404, ErrorClass::Permanent, "OS.HttpError"),
            (301, ErrorClass::Permanent, "OS.HttpError"),
        ];
        for (status, class, code) in cases {
            let err = outcome(&req, status, r#"{"error":{"type":"x","reason":"y"},"status":1}"#)
                .unwrap_err();
            assert_eq!((err.class, err.code.as_str()), (class, code), "{status}");
        }
    }

    #[test]
    fn whole_request_messages_carry_what_the_cluster_said() {
        let body = r#"{"error":{"root_cause":[],"type":"illegal_argument_exception","reason":"Action/metadata line [1] contains an unknown parameter [_type]"},"status":400}"#;
        let err = outcome(&request(1), 400, body).unwrap_err();
        assert!(err.message.contains("unknown parameter [_type]"), "{}", err.message);
        let err = outcome(&request(1), 401, "Unauthorized").unwrap_err();
        assert!(err.message.contains("username and password"), "{}", err.message);
        assert!(err.message.contains("Unauthorized"), "{}", err.message);
    }

    #[test]
    fn a_2xx_answer_that_is_not_a_bulk_answer_is_transient() {
        let req = request(2);
        for body in ["<html>proxy</html>", "{\"acknowledged\":true}", &bulk(&[item(201, None)])] {
            let err = outcome(&req, 200, body).unwrap_err();
            assert_eq!(
                (err.class, err.code.as_str()),
                (ErrorClass::Transient, "OS.InvalidResponse")
            );
        }
    }

    #[test]
    fn error_types_become_camel_case_codes() {
        let detail = |k: &str| {
            ItemError::Detail(ErrorDetail { kind: k.into(), reason: None, caused_by: None })
        };
        assert_eq!(
            item_code("ES", Some(&detail("strict_dynamic_mapping_exception"))),
            "ES.StrictDynamicMappingException"
        );
        assert_eq!(item_code("OS", Some(&ItemError::Text("boom".into()))), "OS.DocumentRejected");
        assert_eq!(item_code("OS", None), "OS.DocumentRejected");
    }
}
