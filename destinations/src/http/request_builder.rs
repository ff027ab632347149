//! Encodes one batch into the exact request Firehose sends to an HTTP endpoint: the JSON body
//! (optionally gzip-compressed) and the `X-Amz-Firehose-*` headers.
//!
//! Everything here is a pure function of the batch and the settings, so every retry of a batch
//! sends the same bytes.

use std::io::{self, BufWriter, Write};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, USER_AGENT,
};
use uuid::Uuid;

use super::config::{ContentEncoding, HttpEndpointSettings};
use super::retry::codes;
use crate::DestinationError;

/// Most records one request may carry.
pub const MAX_RECORDS_PER_REQUEST: usize = 10_000;

pub const PROTOCOL_VERSION: &str = "X-Amz-Firehose-Protocol-Version";
pub const REQUEST_ID: &str = "X-Amz-Firehose-Request-Id";
pub const SOURCE_ARN: &str = "X-Amz-Firehose-Source-Arn";
pub const ACCESS_KEY: &str = "X-Amz-Firehose-Access-Key";
pub const COMMON_ATTRIBUTES: &str = "X-Amz-Firehose-Common-Attributes";

/// Hydrant's own `User-Agent` (Firehose's is not documented).
pub const HYDRANT_USER_AGENT: &str =
    concat!("Hydrant/", env!("CARGO_PKG_VERSION"), " (Firehose HTTP endpoint delivery 1.0)");

/// Namespace of [`request_id_for`]'s name-based UUIDs.
const REQUEST_ID_NAMESPACE: Uuid = Uuid::from_u128(0x876c790b_3292_479a_961c_7e7e2ef62b14);

/// One batch for one endpoint, as the delivery layer hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpDeliveryRequest {
    /// Sent as `X-Amz-Firehose-Request-Id` and `requestId`. Derived from the batch (see
    /// [`request_id_for`]) so that it is the same on every retry, also after a restart:
    /// receivers deduplicate on it.
    pub request_id: String,
    /// `timestamp` of the body: epoch milliseconds when the batch's request was first
    /// generated. Kept with the batch so retries are byte-identical.
    pub timestamp_ms: u64,
    /// The records, 1 to 10,000 (each at most 1,024,000 bytes, which the API already
    /// enforces).
    pub records: Vec<Bytes>,
}

/// A UUID-shaped request id that depends only on the stream and the batch: the same batch
/// always gets the same id, different batches (or streams) different ones.
pub fn request_id_for(source_arn: &str, batch_key: &str) -> String {
    let mut name = Vec::with_capacity(source_arn.len() + 1 + batch_key.len());
    name.extend_from_slice(source_arn.as_bytes());
    name.push(0);
    name.extend_from_slice(batch_key.as_bytes());
    Uuid::new_v5(&REQUEST_ID_NAMESPACE, &name).to_string()
}

/// One encoded request: what goes on the wire.
#[derive(Debug, Clone)]
pub struct EncodedRequest {
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Builds requests for one endpoint.
#[derive(Debug, Clone)]
pub struct HttpRequestBuilder {
    encoding: ContentEncoding,
    /// The headers every request carries; [`REQUEST_ID`] is added per request.
    headers: HeaderMap,
}

impl HttpRequestBuilder {
    pub fn new(settings: &HttpEndpointSettings) -> Result<Self, DestinationError> {
        let invalid = |what: &str| {
            DestinationError::permanent(
                codes::INVALID_CONFIGURATION,
                format!("{what} cannot be sent as an HTTP header value"),
            )
        };
        let mut headers = HeaderMap::new();
        headers.insert(USER_AGENT, HeaderValue::from_static(HYDRANT_USER_AGENT));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if settings.content_encoding == ContentEncoding::Gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        headers.insert(name(PROTOCOL_VERSION), HeaderValue::from_static("1.0"));
        headers.insert(
            name(SOURCE_ARN),
            HeaderValue::from_str(&settings.source_arn).map_err(|_| invalid("the source ARN"))?,
        );
        if let Some(key) = &settings.access_key {
            let mut value = HeaderValue::from_str(key).map_err(|_| invalid("the access key"))?;
            value.set_sensitive(true);
            headers.insert(name(ACCESS_KEY), value);
        }
        let attributes = common_attributes_json(&settings.common_attributes);
        headers.insert(
            name(COMMON_ATTRIBUTES),
            HeaderValue::from_bytes(attributes.as_bytes())
                .map_err(|_| invalid("the common attributes"))?,
        );
        Ok(Self { encoding: settings.content_encoding, headers })
    }

    /// Encodes `request`. Fails (permanently: the caller broke the contract) on an empty or
    /// oversized batch or a request id that is not a valid header value.
    pub fn build(&self, request: &HttpDeliveryRequest) -> Result<EncodedRequest, DestinationError> {
        let count = request.records.len();
        if count == 0 || count > MAX_RECORDS_PER_REQUEST {
            return Err(DestinationError::permanent(
                codes::INVALID_REQUEST,
                format!("a request carries 1 to {MAX_RECORDS_PER_REQUEST} records, got {count}"),
            ));
        }
        let id = HeaderValue::from_str(&request.request_id).map_err(|_| {
            DestinationError::permanent(
                codes::INVALID_REQUEST,
                format!("request id {:?} cannot be sent as a header", request.request_id),
            )
        })?;
        let mut headers = self.headers.clone();
        headers.insert(name(REQUEST_ID), id);
        let body = match self.encoding {
            ContentEncoding::None => {
                let mut body = Vec::with_capacity(body_size_hint(request));
                write_body(&mut body, request).expect("writing to a Vec cannot fail");
                body
            }
            ContentEncoding::Gzip => {
                let gz = GzEncoder::new(
                    Vec::with_capacity(body_size_hint(request) / 4),
                    Compression::default(),
                );
                let mut out = BufWriter::with_capacity(64 * 1024, gz);
                write_body(&mut out, request)
                    .and_then(|()| out.into_inner().map_err(|e| e.into_error()))
                    .and_then(GzEncoder::finish)
                    .expect("compressing into a Vec cannot fail")
            }
        };
        Ok(EncodedRequest { headers, body: Bytes::from(body) })
    }
}

fn name(text: &'static str) -> HeaderName {
    HeaderName::from_static(match text {
        PROTOCOL_VERSION => "x-amz-firehose-protocol-version",
        REQUEST_ID => "x-amz-firehose-request-id",
        SOURCE_ARN => "x-amz-firehose-source-arn",
        ACCESS_KEY => "x-amz-firehose-access-key",
        COMMON_ATTRIBUTES => "x-amz-firehose-common-attributes",
        _ => unreachable!("not a Firehose header: {text}"),
    })
}

/// `{"commonAttributes":{"name":"value",...}}`, in configured order.
pub fn common_attributes_json(attributes: &[(String, String)]) -> String {
    let mut out = String::from("{\"commonAttributes\":{");
    for (i, (name, value)) in attributes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(name).expect("a string serializes"));
        out.push(':');
        out.push_str(&serde_json::to_string(value).expect("a string serializes"));
    }
    out.push_str("}}");
    out
}

/// A little more than the size of the uncompressed body (request ids are rarely escaped).
fn body_size_hint(request: &HttpDeliveryRequest) -> usize {
    let records: usize = request.records.iter().map(|r| r.len().div_ceil(3) * 4 + 12).sum();
    records + request.request_id.len() + 64
}

/// `{"requestId":"…","timestamp":…,"records":[{"data":"<base64>"},…]}`.
fn write_body(out: &mut impl Write, request: &HttpDeliveryRequest) -> io::Result<()> {
    out.write_all(b"{\"requestId\":")?;
    serde_json::to_writer(&mut *out, &request.request_id)?;
    write!(out, ",\"timestamp\":{},\"records\":[", request.timestamp_ms)?;
    let mut data = String::new();
    for (i, record) in request.records.iter().enumerate() {
        out.write_all(if i == 0 { b"{\"data\":\"" } else { b",{\"data\":\"" })?;
        data.clear();
        BASE64.encode_string(record, &mut data);
        out.write_all(data.as_bytes())?;
        out.write_all(b"\"}")?;
    }
    out.write_all(b"]}")
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::http::config::{EndpointConfiguration, HttpEndpointInput};

    const ARN: &str = "arn:aws:firehose:us-east-1:123456789012:deliverystream/logs";

    fn settings(encoding: ContentEncoding, key: Option<&str>) -> HttpEndpointSettings {
        let endpoint = EndpointConfiguration {
            url: "https://x.example/in".into(),
            name: None,
            access_key: key.map(str::to_owned),
        };
        let mut s = HttpEndpointSettings::validate(HttpEndpointInput {
            endpoint: &endpoint,
            request: None,
            retry_duration_in_seconds: None,
            buffering_size_in_mbs: None,
            buffering_interval_in_seconds: None,
            source_arn: ARN,
        })
        .unwrap();
        s.content_encoding = encoding;
        s
    }

    fn request() -> HttpDeliveryRequest {
        HttpDeliveryRequest {
            request_id: "ed4acda5-034f-9f42-bba1-f29aea6d7d8f".into(),
            timestamp_ms: 1578090901599,
            records: vec![Bytes::from_static(b"hello"), Bytes::from_static(b"hello world")],
        }
    }

    const BODY: &str = r#"{"requestId":"ed4acda5-034f-9f42-bba1-f29aea6d7d8f","timestamp":1578090901599,"records":[{"data":"aGVsbG8="},{"data":"aGVsbG8gd29ybGQ="}]}"#;

    #[test]
    fn the_body_is_firehoses_json_byte_for_byte() {
        let built = HttpRequestBuilder::new(&settings(ContentEncoding::None, None))
            .unwrap()
            .build(&request())
            .unwrap();
        assert_eq!(std::str::from_utf8(&built.body).unwrap(), BODY);
        assert!(built.body.len() <= body_size_hint(&request()));
    }

    #[test]
    fn binary_and_empty_records_are_base64_encoded() {
        let mut req = request();
        req.records = vec![Bytes::new(), Bytes::from_static(&[0, 255, 10, b'"'])];
        let built = HttpRequestBuilder::new(&settings(ContentEncoding::None, None))
            .unwrap()
            .build(&req)
            .unwrap();
        let text = std::str::from_utf8(&built.body).unwrap();
        assert!(text.ends_with(r#""records":[{"data":""},{"data":"AP8KIg=="}]}"#), "{text}");
    }

    #[test]
    fn headers_are_exactly_firehoses() {
        let mut s = settings(ContentEncoding::None, Some("k3y"));
        s.common_attributes = vec![("b".into(), "2".into()), ("a".into(), "say \"hi\"".into())];
        let built = HttpRequestBuilder::new(&s).unwrap().build(&request()).unwrap();
        let mut headers: Vec<(String, String)> = built
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        headers.sort();
        let expected: Vec<(String, String)> = [
            ("content-type", "application/json"),
            ("user-agent", HYDRANT_USER_AGENT),
            ("x-amz-firehose-access-key", "k3y"),
            (
                "x-amz-firehose-common-attributes",
                r#"{"commonAttributes":{"b":"2","a":"say \"hi\""}}"#,
            ),
            ("x-amz-firehose-protocol-version", "1.0"),
            ("x-amz-firehose-request-id", "ed4acda5-034f-9f42-bba1-f29aea6d7d8f"),
            ("x-amz-firehose-source-arn", ARN),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(headers, expected);
        assert!(built.headers[ACCESS_KEY].is_sensitive());
    }

    #[test]
    fn without_access_key_or_attributes_the_key_header_is_absent_and_attributes_are_empty() {
        let built = HttpRequestBuilder::new(&settings(ContentEncoding::None, None))
            .unwrap()
            .build(&request())
            .unwrap();
        assert!(!built.headers.contains_key(ACCESS_KEY));
        assert!(!built.headers.contains_key(CONTENT_ENCODING));
        assert_eq!(built.headers[COMMON_ATTRIBUTES], r#"{"commonAttributes":{}}"#);
    }

    #[test]
    fn gzip_bodies_decompress_to_the_same_json_and_say_so() {
        let builder = HttpRequestBuilder::new(&settings(ContentEncoding::Gzip, None)).unwrap();
        let built = builder.build(&request()).unwrap();
        assert_eq!(built.headers[CONTENT_ENCODING], "gzip");
        assert_eq!(&built.body[..2], &[0x1f, 0x8b]);
        let mut text = String::new();
        flate2::read::GzDecoder::new(&built.body[..]).read_to_string(&mut text).unwrap();
        assert_eq!(text, BODY);
        assert_eq!(builder.build(&request()).unwrap().body, built.body, "not deterministic");
    }

    #[test]
    fn a_large_gzip_batch_round_trips() {
        let mut req = request();
        req.records = (0..5000u32)
            .map(|i| Bytes::from(format!("record {i} {}", "x".repeat(i as usize % 300))))
            .collect();
        let plain = HttpRequestBuilder::new(&settings(ContentEncoding::None, None))
            .unwrap()
            .build(&req)
            .unwrap();
        let gz = HttpRequestBuilder::new(&settings(ContentEncoding::Gzip, None))
            .unwrap()
            .build(&req)
            .unwrap();
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(&gz.body[..]).read_to_end(&mut text).unwrap();
        assert_eq!(text, plain.body);
        assert!(gz.body.len() < plain.body.len() / 4);
        assert!(plain.body.len() <= body_size_hint(&req));
    }

    #[test]
    fn empty_oversized_and_badly_named_batches_are_refused() {
        let builder = HttpRequestBuilder::new(&settings(ContentEncoding::None, None)).unwrap();
        let mut req = request();
        req.records.clear();
        assert_eq!(builder.build(&req).unwrap_err().code, codes::INVALID_REQUEST);
        req.records = vec![Bytes::from_static(b"x"); MAX_RECORDS_PER_REQUEST];
        assert!(builder.build(&req).is_ok());
        req.records.push(Bytes::from_static(b"x"));
        let e = builder.build(&req).unwrap_err();
        assert!(!e.is_retryable() && e.message.contains("10001"), "{e}");
        let mut req = request();
        req.request_id = "a\nb".into();
        assert_eq!(builder.build(&req).unwrap_err().code, codes::INVALID_REQUEST);
    }

    #[test]
    fn request_ids_are_uuids_that_depend_only_on_stream_and_batch() {
        let a = request_id_for(ARN, "shard-0/00000000000000000042");
        assert_eq!(a, request_id_for(ARN, "shard-0/00000000000000000042"));
        assert_ne!(a, request_id_for(ARN, "shard-0/00000000000000000043"));
        assert_ne!(
            a,
            request_id_for(
                "arn:aws:firehose:us-east-1:1:deliverystream/x",
                "shard-0/00000000000000000042"
            )
        );
        let parsed = Uuid::parse_str(&a).unwrap();
        assert_eq!(parsed.get_version_num(), 5);
        assert_eq!(a.len(), 36);
        // Pinned (checked with Python's uuid.uuid5): a change here would give batches new ids
        // across an upgrade, and receivers would deliver them twice.
        assert_eq!(request_id_for("s", "b"), "ee0acd5e-e97d-5d9e-8ba2-d4ef5eafc0b6");
    }
}
