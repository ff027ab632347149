//! Should we retry? Which answers from an endpoint count as delivered, which are worth another
//! attempt, and Firehose's backoff for them.
//!
//! Only a `200` whose JSON body echoes our `requestId` (and has a `timestamp`) is a delivery.
//! A `4xx` other than `408` (timeout) and `429` (throttled) is permanent: the receiver refuses
//! this request, and the same bytes would be refused again, so its records go to the error
//! output at once instead of holding the shard for `RetryOptions.DurationInSeconds` (`413`
//! keeps its own code). Everything else (`5xx`, `408`, `429`, redirects, malformed answers,
//! timeouts, connection failures) is transient.

use std::time::Duration;

use serde_json::Value;

use crate::{DestinationError, RetryClock, RetryPolicy};

/// First wait after a failed attempt.
pub const INITIAL_WAIT: Duration = Duration::from_secs(1);
/// Longest wait between two attempts.
pub const MAX_WAIT: Duration = Duration::from_secs(120);
/// Each wait is scaled by a random factor in `1 ± JITTER`.
pub const JITTER: f64 = 0.15;
/// How long one attempt may take, answer included.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(180);
/// `RetryOptions.DurationInSeconds` when not given, in seconds.
pub const DEFAULT_RETRY_DURATION: u32 = 300;
/// Largest `RetryOptions.DurationInSeconds`.
pub const MAX_RETRY_DURATION: u32 = 7200;
/// Larger answers are not read: they fail with `HttpEndpoint.ResponseTooLarge`.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Longest error message kept from an endpoint's answer, in characters.
pub const MAX_ERROR_MESSAGE_CHARS: usize = 8192;

/// Error codes, as Firehose writes them to its error output and logs.
pub mod codes {
    /// The endpoint answered with a status other than 200 (or 413).
    pub const DESTINATION_EXCEPTION: &str = "HttpEndpoint.DestinationException";
    /// A 200 whose body is not `{"requestId": <ours>, "timestamp": ...}`.
    pub const INVALID_RESPONSE: &str = "HttpEndpoint.InvalidResponseFromDestination";
    /// No complete answer within the response timeout.
    pub const REQUEST_TIMEOUT: &str = "HttpEndpoint.RequestTimeout";
    /// The answer is larger than 1 MiB.
    pub const RESPONSE_TOO_LARGE: &str = "HttpEndpoint.ResponseTooLarge";
    /// No connection could be made (refused, DNS, TLS handshake).
    pub const CONNECTION_FAILED: &str = "HttpEndpoint.ConnectionFailed";
    /// The connection broke before a complete answer arrived.
    pub const CONNECTION_RESET: &str = "HttpEndpoint.ConnectionReset";
    /// HTTP 413: the endpoint refuses a request this large. Not retried. (Hydrant's name:
    /// Firehose documents the behaviour but not a code.)
    pub const PAYLOAD_TOO_LARGE: &str = "HttpEndpoint.PayloadTooLarge";
    /// The request handed to the destination breaks its contract (no records, too many,
    /// a request id that cannot be a header). A bug in the caller, not in the endpoint.
    pub const INVALID_REQUEST: &str = "HttpEndpoint.InvalidRequest";
    /// The settings cannot be turned into a client or headers (validation prevents this).
    pub const INVALID_CONFIGURATION: &str = "HttpEndpoint.InvalidConfiguration";
}

/// Firehose's HTTP endpoint backoff: 1 s, doubling, at most 2 min, ±15 % jitter, for
/// `retry_duration` counted from the first failure and excluding time spent waiting for answers.
pub fn firehose_retry_policy(retry_duration: Duration) -> RetryPolicy {
    RetryPolicy {
        initial: INITIAL_WAIT,
        max: MAX_WAIT,
        multiplier: 2.0,
        jitter: JITTER,
        max_duration: Some(retry_duration),
        clock: RetryClock::WaitsOnly,
    }
}

/// Decides what an answer means. `body` is the answer's body, at most
/// [`MAX_RESPONSE_BYTES`] (larger answers never get here).
pub fn check_response(status: u16, body: &[u8], request_id: &str) -> Result<(), DestinationError> {
    if status == 413 {
        return Err(DestinationError::permanent(
            codes::PAYLOAD_TOO_LARGE,
            format!(
                "The endpoint refused the request as too large (HTTP 413). Lower \
                 BufferingHints.SizeInMBs or raise the receiver's body limit. {}",
                body_excerpt(body)
            ),
        ));
    }
    if (400..500).contains(&status) && status != 408 && status != 429 {
        return Err(DestinationError::permanent(
            codes::DESTINATION_EXCEPTION,
            format!(
                "Received the following response from the endpoint destination. HTTP {status}: {} \
                 (a 4xx answer refuses the request itself; it is not retried)",
                body_excerpt(body)
            ),
        ));
    }
    if status != 200 {
        return Err(DestinationError::transient(
            codes::DESTINATION_EXCEPTION,
            format!(
                "Received the following response from the endpoint destination. HTTP {status}: {}",
                body_excerpt(body)
            ),
        ));
    }
    let invalid = |problem: String| {
        Err(DestinationError::transient(
            codes::INVALID_RESPONSE,
            format!(
                "The response from the endpoint destination is invalid: {problem}. A receiver \
                 must answer 200 with {{\"requestId\":\"{request_id}\",\"timestamp\":<epoch ms>}}."
            ),
        ))
    };
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(e) => return invalid(format!("the body is not JSON ({e}): {}", body_excerpt(body))),
    };
    let Some(object) = value.as_object() else {
        return invalid(format!("the body is not a JSON object: {}", body_excerpt(body)));
    };
    match object.get("requestId") {
        Some(Value::String(id)) if id == request_id => {}
        Some(Value::String(id)) => {
            return invalid(format!("requestId is \"{id}\" but the request's is \"{request_id}\""))
        }
        Some(other) => return invalid(format!("requestId is {other}, not a string")),
        None => return invalid("requestId is missing".to_owned()),
    }
    match object.get("timestamp") {
        Some(Value::Number(n)) if n.is_u64() => Ok(()),
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        Some(other) => invalid(format!("timestamp is {other}, not epoch milliseconds")),
        None => invalid("timestamp is missing".to_owned()),
    }
}

/// The answer claims or turns out to be larger than [`MAX_RESPONSE_BYTES`].
pub fn response_too_large(status: u16, size: Option<u64>) -> DestinationError {
    let size = size.map_or_else(|| "more than 1 MiB".to_owned(), |n| format!("{n} bytes"));
    DestinationError::transient(
        codes::RESPONSE_TOO_LARGE,
        format!(
            "The endpoint answered HTTP {status} with {size}; answers are limited to \
             {MAX_RESPONSE_BYTES} bytes and were not read."
        ),
    )
}

/// Classifies a failure to get a complete answer.
pub fn transport_error(error: &reqwest::Error, timeout: Duration) -> DestinationError {
    let detail = error_chain(error);
    if error.is_timeout() {
        DestinationError::transient(
            codes::REQUEST_TIMEOUT,
            format!("No complete response from the endpoint within {timeout:?} ({detail})."),
        )
    } else if error.is_connect() {
        DestinationError::transient(
            codes::CONNECTION_FAILED,
            format!("Could not connect to the endpoint ({detail})."),
        )
    } else {
        DestinationError::transient(
            codes::CONNECTION_RESET,
            format!("The connection to the endpoint broke before a complete response ({detail})."),
        )
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// The body as text, cut to [`MAX_ERROR_MESSAGE_CHARS`].
fn body_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut chars = text.char_indices();
    match chars.nth(MAX_ERROR_MESSAGE_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None if text.is_empty() => "(empty body)".to_owned(),
        None => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorClass;

    const ID: &str = "ed4acda5-034f-9f42-bba1-f29aea6d7d8f";

    fn check(status: u16, body: &str) -> Result<(), (ErrorClass, String, String)> {
        check_response(status, body.as_bytes(), ID).map_err(|e| (e.class, e.code, e.message))
    }

    /// `None`: delivered; otherwise the class, code and a piece of the message.
    type Expected = Option<(ErrorClass, &'static str, &'static str)>;

    #[test]
    fn only_a_200_echoing_the_request_id_is_a_delivery() {
        use ErrorClass::{Permanent, Transient};
        let ok = format!(r#"{{"requestId":"{ID}","timestamp":1578090903599}}"#);
        let table: Vec<(u16, String, Expected)> = vec![
            (200, ok.clone(), None),
            (200, format!(r#"{{"requestId":"{ID}","timestamp":"1578090903599"}}"#), None),
            (
                200,
                r#"{"requestId":"other","timestamp":1}"#.into(),
                Some((Transient, codes::INVALID_RESPONSE, "requestId is \"other\"")),
            ),
            (
                200,
                r#"{"timestamp":1}"#.into(),
                Some((Transient, codes::INVALID_RESPONSE, "requestId is missing")),
            ),
            (
                200,
                format!(r#"{{"requestId":"{ID}"}}"#),
                Some((Transient, codes::INVALID_RESPONSE, "timestamp is missing")),
            ),
            (
                200,
                format!(r#"{{"requestId":"{ID}","timestamp":-1}}"#),
                Some((Transient, codes::INVALID_RESPONSE, "timestamp is -1")),
            ),
            (200, "OK".into(), Some((Transient, codes::INVALID_RESPONSE, "not JSON"))),
            (200, "".into(), Some((Transient, codes::INVALID_RESPONSE, "not JSON"))),
            (
                200,
                format!("[\"{ID}\"]"),
                Some((Transient, codes::INVALID_RESPONSE, "not a JSON object")),
            ),
            (
                500,
                r#"{"errorMessage":"disk full"}"#.into(),
                Some((
                    Transient,
                    codes::DESTINATION_EXCEPTION,
                    "HTTP 500: {\"errorMessage\":\"disk full\"}",
                )),
            ),
            (500, ok.clone(), Some((Transient, codes::DESTINATION_EXCEPTION, "HTTP 500"))),
            (
                429,
                "".into(),
                Some((Transient, codes::DESTINATION_EXCEPTION, "HTTP 429: (empty body)")),
            ),
            (201, ok.clone(), Some((Transient, codes::DESTINATION_EXCEPTION, "HTTP 201"))),
            (302, "".into(), Some((Transient, codes::DESTINATION_EXCEPTION, "HTTP 302"))),
            (400, "bad".into(), Some((Permanent, codes::DESTINATION_EXCEPTION, "HTTP 400: bad"))),
            (401, "".into(), Some((Permanent, codes::DESTINATION_EXCEPTION, "HTTP 401"))),
            (404, "".into(), Some((Permanent, codes::DESTINATION_EXCEPTION, "HTTP 404"))),
            (408, "".into(), Some((Transient, codes::DESTINATION_EXCEPTION, "HTTP 408"))),
            (503, "".into(), Some((Transient, codes::DESTINATION_EXCEPTION, "HTTP 503"))),
            (413, "too big".into(), Some((Permanent, codes::PAYLOAD_TOO_LARGE, "HTTP 413"))),
        ];
        for (status, body, expected) in table {
            let got = check(status, &body);
            match (expected, got) {
                (None, Ok(())) => {}
                (Some((class, code, text)), Err((c, k, message))) => {
                    assert_eq!((c, k.as_str()), (class, code), "{status} {body}: {message}");
                    assert!(message.contains(text), "{status} {body}: {message}");
                }
                (expected, got) => panic!("{status} {body}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn long_error_bodies_are_cut_to_8192_characters() {
        let body = "é".repeat(10_000);
        let e = check_response(500, body.as_bytes(), ID).unwrap_err();
        let kept = e.message.chars().filter(|c| *c == 'é').count();
        assert_eq!(kept, MAX_ERROR_MESSAGE_CHARS);
        assert!(e.message.ends_with('…'));
    }

    #[test]
    fn the_policy_is_firehoses_one_second_doubling_to_two_minutes() {
        let policy =
            RetryPolicy { jitter: 0.0, ..firehose_retry_policy(Duration::from_secs(7200)) };
        let mut backoff = policy.backoff();
        let waits: Vec<u64> = (0..10).map(|_| backoff.next_wait().unwrap().as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 64, 120, 120, 120]);
    }

    #[test]
    fn jitter_keeps_each_wait_within_fifteen_percent() {
        let policy = firehose_retry_policy(Duration::from_secs(7200));
        let mut seen_low = false;
        let mut seen_high = false;
        for _ in 0..200 {
            let mut backoff = policy.backoff();
            for base in [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 120.0, 120.0] {
                let w = backoff.next_wait().unwrap().as_secs_f64();
                assert!((base * 0.85 - 1e-9..=base * 1.15 + 1e-9).contains(&w), "{base}: {w}");
                seen_low |= w < base * 0.95;
                seen_high |= w > base * 1.05;
            }
        }
        assert!(seen_low && seen_high, "the waits are not jittered");
    }

    #[test]
    fn the_default_retry_duration_allows_eight_retries() {
        // 1+2+4+8+16+32+64+120 = 247 s of waiting; the ninth wait is cut to the 53 s left, so
        // the last attempt lands at 300 s.
        let policy = RetryPolicy { jitter: 0.0, ..firehose_retry_policy(Duration::from_secs(300)) };
        let mut backoff = policy.backoff();
        let mut retries = 0;
        while backoff.next_wait().is_some() {
            retries += 1;
        }
        assert_eq!(retries, 9);
        assert_eq!(policy.clock, RetryClock::WaitsOnly);
    }

    #[test]
    fn a_zero_retry_duration_means_a_single_attempt() {
        assert!(firehose_retry_policy(Duration::ZERO).backoff().next_wait().is_none());
    }
}
