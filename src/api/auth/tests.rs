//! Requests are signed here the way clients sign them (aws-sigv4's signer, and one request
//! signed by botocore, an independent implementation), then changed one field at a time.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use proptest::prelude::*;

use super::*;
use crate::config::{AuthConfig, Sigv4Credential};

const KEY: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const REGION: &str = "us-east-1";
const HOST: &str = "127.0.0.1:4573";
const BODY: &[u8] =
    br#"{"DeliveryStreamName": "clicks", "Records": [{"Data": "aGVsbG8gd29ybGQK"}]}"#;

/// 2026-11-22T03:24:22Z, the date of the botocore-signed request.
fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_317_862)
}

fn verifier() -> Verifier {
    let auth = AuthConfig::Sigv4 {
        credentials: vec![
            Sigv4Credential {
                access_key_id: KEY.into(),
                secret_access_key: SECRET.into(),
                streams: None,
                actions: None,
            },
            Sigv4Credential {
                access_key_id: "AKIDLIMITED".into(),
                secret_access_key: "limited-secret".into(),
                streams: Some(vec!["clicks".into()]),
                actions: Some(vec!["firehose:Put*".into()]),
            },
        ],
    };
    Verifier::from_config(&auth, REGION).expect("sigv4 mode")
}

/// What a client sends.
#[derive(Clone, Debug)]
struct Signed {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Signed {
    fn verify_at(&self, now: SystemTime) -> Result<Caller, AuthError> {
        verifier().verify(&self.method, &self.uri, &self.headers, &self.body, now)
    }

    fn verify(&self) -> Result<Caller, AuthError> {
        self.verify_at(t0())
    }

    fn set(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        self
    }

    fn authorization(&self) -> String {
        self.headers["authorization"].to_str().unwrap().to_owned()
    }

    fn with_authorization(self, value: &str) -> Self {
        self.set("authorization", value)
    }
}

struct Signer<'a> {
    key: &'a str,
    secret: &'a str,
    region: &'a str,
    service: &'a str,
    time: SystemTime,
    uri: &'a str,
    body: &'a [u8],
    headers: Vec<(&'a str, &'a str)>,
}

impl Default for Signer<'_> {
    fn default() -> Self {
        Signer {
            key: KEY,
            secret: SECRET,
            region: REGION,
            service: "firehose",
            time: t0(),
            uri: "/",
            body: BODY,
            headers: vec![
                ("host", HOST),
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", "Firehose_20150804.PutRecordBatch"),
            ],
        }
    }
}

impl Signer<'_> {
    /// Signs with aws-sigv4 as an SDK does, and returns the request as sent.
    fn sign(&self) -> Signed {
        let identity =
            aws_credential_types::Credentials::new(self.key, self.secret, None, None, "test")
                .into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region)
            .name(self.service)
            .time(self.time)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let request = SignableRequest::new(
            "POST",
            self.uri,
            self.headers.iter().copied(),
            SignableBody::Bytes(self.body),
        )
        .unwrap();
        let (instructions, _) = sign(request, &params).unwrap().into_parts();
        let mut headers = HeaderMap::new();
        for (name, value) in self.headers.iter().copied().chain(instructions.headers()) {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        Signed {
            method: Method::POST,
            uri: self.uri.parse().unwrap(),
            headers,
            body: self.body.to_vec(),
        }
    }
}

fn signed() -> Signed {
    Signer::default().sign()
}

#[test]
fn a_request_signed_with_the_aws_sigv4_signer_verifies() {
    let caller = signed().verify().unwrap();
    assert_eq!(caller.access_key_id, KEY);
    assert!(!caller.is_restricted());
    assert!(caller.may_use("anything"));
}

#[test]
fn a_request_signed_by_botocore_verifies() {
    // Captured from botocore's SigV4Auth with the clock fixed at 2026-11-22T03:24:22Z.
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("host", HOST),
        ("x-amz-target", "Firehose_20150804.PutRecordBatch"),
        ("content-type", "application/x-amz-json-1.1"),
        ("user-agent", "aws-cli/1.0 test"),
        ("x-amz-date", "20261122T032422Z"),
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/firehose/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-target, \
             Signature=f5a3e152934360d2952b1c5723587922ed778e8e10c290fff0e5d05223988a3c",
        ),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    let request =
        Signed { method: Method::POST, uri: Uri::from_static("/"), headers, body: BODY.to_vec() };
    assert_eq!(request.verify().unwrap().access_key_id, KEY);
    // One byte less in the body and the same signature no longer matches.
    let mut changed = request.clone();
    changed.body.pop();
    assert_eq!(changed.verify(), Err(AuthError::Mismatch));
}

#[test]
fn unsigned_headers_and_their_values_do_not_matter() {
    let request = signed().set("user-agent", "something/else").set("x-forwarded-for", "10.0.0.1");
    assert!(request.verify().is_ok());
}

#[test]
fn changing_a_signed_header_value_fails_with_a_signature_mismatch() {
    for (name, value) in [
        ("x-amz-target", "Firehose_20150804.PutRecord"),
        ("content-type", "application/json"),
        ("host", "127.0.0.1:4574"),
    ] {
        let request = signed().set(name, value);
        assert_eq!(request.verify(), Err(AuthError::Mismatch), "{name}");
    }
}

#[test]
fn changing_any_body_byte_fails_with_a_signature_mismatch() {
    let request = signed();
    for i in [0, 10, BODY.len() / 2, BODY.len() - 1] {
        let mut changed = request.clone();
        changed.body[i] ^= 0x01;
        assert_eq!(changed.verify(), Err(AuthError::Mismatch), "byte {i}");
    }
    let mut longer = request.clone();
    longer.body.push(b' ');
    assert_eq!(longer.verify(), Err(AuthError::Mismatch));
}

#[test]
fn changing_the_date_by_a_second_fails_with_a_signature_mismatch() {
    let request = signed().set("x-amz-date", "20261122T032423Z");
    assert_eq!(request.verify(), Err(AuthError::Mismatch));
}

#[test]
fn a_wrong_secret_fails_with_a_signature_mismatch() {
    let request = Signer { secret: "not-the-secret", ..Signer::default() }.sign();
    let e = request.verify().unwrap_err();
    assert_eq!(e, AuthError::Mismatch);
    assert_eq!(e.kind(), ErrorType::InvalidSignature);
    assert!(e.to_string().starts_with("The request signature we calculated does not match"));
}

#[test]
fn a_changed_signature_fails_with_a_signature_mismatch() {
    let request = signed();
    let auth = request.authorization();
    let last = auth.chars().last().unwrap();
    let flipped = if last == '0' { '1' } else { '0' };
    let changed = format!("{}{flipped}", &auth[..auth.len() - 1]);
    assert_eq!(request.with_authorization(&changed).verify(), Err(AuthError::Mismatch));
}

#[test]
fn an_unknown_access_key_is_an_unrecognized_client() {
    let e = Signer { key: "AKIDUNKNOWN", ..Signer::default() }.sign().verify().unwrap_err();
    assert_eq!(e, AuthError::UnknownKey);
    assert_eq!(e.kind(), ErrorType::UnrecognizedClient);
    assert_eq!(e.kind().status(), 400);
    assert_eq!(e.to_string(), "The security token included in the request is invalid.");
}

#[test]
fn another_region_is_rejected_naming_the_expected_region() {
    let e = Signer { region: "eu-west-1", ..Signer::default() }.sign().verify().unwrap_err();
    assert_eq!(e, AuthError::WrongRegion { got: "eu-west-1".into(), expected: REGION.into() });
    assert_eq!(e.kind(), ErrorType::InvalidSignature);
    let message = e.to_string();
    assert!(message.contains("not 'eu-west-1'") && message.contains("'us-east-1'"), "{message}");
}

#[test]
fn another_service_is_rejected_naming_firehose() {
    let e = Signer { service: "kinesis", ..Signer::default() }.sign().verify().unwrap_err();
    assert_eq!(e, AuthError::WrongService { got: "kinesis".into() });
    assert_eq!(e.kind(), ErrorType::InvalidSignature);
    assert!(e.to_string().contains("'firehose'"), "{e}");
}

#[test]
fn a_request_older_than_15_minutes_has_an_expired_signature() {
    let request = signed();
    let e = request.verify_at(t0() + Duration::from_secs(20 * 60)).unwrap_err();
    assert_eq!(e.kind(), ErrorType::InvalidSignature);
    assert_eq!(
        e.to_string().split(" Check").next().unwrap(),
        "Signature expired: 20261122T032422Z is now earlier than 20261122T032922Z \
         (20261122T034422Z - 15 min.)"
    );
    // Just inside the window on either side is fine.
    assert!(request.verify_at(t0() + MAX_SKEW).is_ok());
    assert!(request.verify_at(t0() - MAX_SKEW).is_ok());
}

#[test]
fn a_request_dated_more_than_15_minutes_ahead_is_not_yet_current() {
    let e = signed().verify_at(t0() - Duration::from_secs(16 * 60)).unwrap_err();
    assert!(matches!(e, AuthError::NotYetCurrent { .. }), "{e:?}");
    assert!(e.to_string().starts_with("Signature not yet current: 20261122T032422Z"), "{e}");
}

#[test]
fn a_credential_scope_date_other_than_the_request_date_is_rejected() {
    let request = signed();
    let auth = request.authorization().replace("/20261122/", "/20261121/");
    let e = request.with_authorization(&auth).verify().unwrap_err();
    assert_eq!(
        e,
        AuthError::ScopeDate {
            scope: "20261121".into(),
            date: "20261122".into(),
            stamp: "20261122T032422Z".into()
        }
    );
}

#[test]
fn a_date_header_works_in_place_of_x_amz_date() {
    // Sign as a client that dates its request with `Date` (and so never sends X-Amz-Date).
    let date = "Sun, 22 Nov 2026 03:24:22 GMT";
    let mut settings = SigningSettings::default();
    settings.excluded_headers = Some(vec!["x-amz-date".into()]);
    let identity = aws_credential_types::Credentials::new(KEY, SECRET, None, None, "t").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("firehose")
        .time(t0())
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let headers = [("host", HOST), ("date", date), ("x-amz-target", "Firehose_20150804.PutRecord")];
    let request =
        SignableRequest::new("POST", "/", headers.into_iter(), SignableBody::Bytes(BODY)).unwrap();
    let (instructions, _) = sign(request, &params).unwrap().into_parts();
    let mut map = HeaderMap::new();
    for (name, value) in headers.into_iter().chain(instructions.headers()) {
        if name != "x-amz-date" {
            map.insert(HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
    }
    let request = Signed {
        method: Method::POST,
        uri: Uri::from_static("/"),
        headers: map,
        body: BODY.to_vec(),
    };
    assert!(request.authorization().contains("SignedHeaders=date;host;x-amz-target"));
    assert_eq!(request.verify().unwrap().access_key_id, KEY);
    assert_eq!(
        request.clone().set("date", "Sun, 22 Nov 2026 03:24:23 GMT").verify(),
        Err(AuthError::Mismatch)
    );
}

#[test]
fn a_request_without_a_date_is_an_incomplete_signature() {
    let mut request = signed();
    request.headers.remove("x-amz-date");
    let e = request.verify().unwrap_err();
    assert_eq!(e.kind(), ErrorType::IncompleteSignature);
    assert!(e.to_string().contains("'X-Amz-Date' or a 'Date' header"), "{e}");
}

#[test]
fn a_malformed_x_amz_date_is_an_incomplete_signature() {
    for bad in ["2026-11-22T03:24:22Z", "20261122T032422", "20261122T032422Z0", "yesterday"] {
        let e = signed().set("x-amz-date", bad).verify().unwrap_err();
        assert_eq!(e.kind(), ErrorType::IncompleteSignature, "{bad}: {e}");
    }
}

#[test]
fn a_missing_authorization_header_is_a_missing_authentication_token() {
    let mut request = signed();
    request.headers.remove("authorization");
    let e = request.verify().unwrap_err();
    assert_eq!(e, AuthError::Missing);
    assert_eq!(e.kind().name(), "MissingAuthenticationTokenException");
    assert_eq!(e.kind().status(), 403);
}

#[test]
fn a_presigned_url_is_refused_with_a_clear_message() {
    let mut request = signed();
    request.headers.remove("authorization");
    request.uri = Uri::from_static(
        "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261122%2Fus-east-1%2Ffirehose%2Faws4_request&X-Amz-Signature=00",
    );
    let e = request.verify().unwrap_err();
    assert_eq!(e, AuthError::Presigned);
    assert_eq!(e.kind(), ErrorType::IncompleteSignature);
    assert!(e.to_string().contains("Presigned URLs"), "{e}");
}

#[test]
fn a_header_named_in_signed_headers_but_absent_is_rejected_by_name() {
    let mut request = signed();
    request.headers.remove("x-amz-target");
    assert_eq!(request.verify(), Err(AuthError::SignedHeaderMissing("x-amz-target".into())));
}

#[test]
fn host_must_be_signed() {
    let request = signed();
    let auth = request.authorization().replace("content-type;host;", "content-type;");
    let e = request.with_authorization(&auth).verify().unwrap_err();
    assert_eq!(e.kind(), ErrorType::IncompleteSignature);
    assert!(e.to_string().contains("'Host' must be a 'SignedHeader'"), "{e}");
}

#[test]
fn x_amz_target_must_be_signed() {
    // Signed without the target, the same request could be replayed as any operation.
    let request = Signer {
        headers: vec![("host", HOST), ("content-type", "application/x-amz-json-1.1")],
        ..Signer::default()
    }
    .sign()
    .set("x-amz-target", "Firehose_20150804.DeleteDeliveryStream");
    assert!(!request.authorization().contains("x-amz-target"));
    let e = request.verify().unwrap_err();
    assert_eq!(e.kind(), ErrorType::IncompleteSignature);
    assert!(e.to_string().contains("'X-Amz-Target' must be a 'SignedHeader'"), "{e}");
    // Refused before the signature is even computed: the secret does not matter.
    let wrong_secret =
        Signer { secret: "not-the-secret", headers: vec![("host", HOST)], ..Signer::default() }
            .sign();
    assert_eq!(wrong_secret.verify().unwrap_err().kind(), ErrorType::IncompleteSignature);
}

#[test]
fn a_key_without_actions_may_call_the_data_plane_and_lookups_only() {
    let caller = signed().verify().unwrap();
    for operation in
        ["PutRecord", "PutRecordBatch", "DescribeDeliveryStream", "ListDeliveryStreams"]
    {
        assert!(caller.may_call(operation), "{operation}");
    }
    for operation in ["CreateDeliveryStream", "UpdateDestination", "DeleteDeliveryStream"] {
        assert!(!caller.may_call(operation), "{operation}");
    }
    let limited =
        Signer { key: "AKIDLIMITED", secret: "limited-secret", ..Signer::default() }.sign();
    let caller = limited.verify().unwrap();
    assert!(caller.may_call("PutRecordBatch") && !caller.may_call("DescribeDeliveryStream"));
}

#[test]
fn x_amz_content_sha256_must_be_the_body_hash() {
    let hash = hex(&Sha256::digest(BODY));
    let good = Signer {
        headers: vec![
            ("host", HOST),
            ("x-amz-content-sha256", &hash),
            ("x-amz-target", "Firehose_20150804.PutRecordBatch"),
        ],
        ..Signer::default()
    }
    .sign();
    assert!(good.verify().is_ok());
    let mut other_body = good.clone();
    other_body.body = b"{}".to_vec();
    assert_eq!(other_body.verify(), Err(AuthError::BodyHash));
    let unsigned = Signer {
        headers: vec![
            ("host", HOST),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            ("x-amz-target", "Firehose_20150804.PutRecordBatch"),
        ],
        ..Signer::default()
    }
    .sign();
    assert_eq!(unsigned.verify(), Err(AuthError::BodyHash));
}

#[test]
fn a_session_token_is_refused_as_an_unrecognized_client() {
    let request = signed().set("x-amz-security-token", "FQoGZXIvYXdzE");
    let e = request.verify().unwrap_err();
    assert_eq!(e, AuthError::SessionToken);
    assert_eq!(e.kind(), ErrorType::UnrecognizedClient);
}

#[test]
fn malformed_authorization_headers_are_incomplete_signatures_that_say_what_is_wrong() {
    let request = signed();
    let good = request.authorization();
    let (_, params) = good.split_once(' ').unwrap();
    let cases = [
        ("", "Unsupported AWS 'algorithm'"),
        ("Bearer abc", "Unsupported AWS 'algorithm'"),
        (&format!("AWS4-HMAC-SHA512 {params}"), "Unsupported AWS 'algorithm'"),
        ("AWS4-HMAC-SHA256", "requires 'Credential' parameter"),
        (
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/firehose/aws4_request",
            "requires 'Signature' parameter. Authorization header requires 'SignedHeaders'",
        ),
        (&good.replace("Credential=AKIDEXAMPLE/", "Credential="), "Credential should be"),
        (&good.replace("/20261122/", "/2026-11-22/"), "must be YYYYMMDD"),
        (&good.replace("SignedHeaders=content-type", "SignedHeaders=Content-Type"), "lowercase"),
        (&good.replace("SignedHeaders=content-type;", "SignedHeaders=host;"), "'host' twice"),
        (&good.replace("Signature=", "Signature=zz"), "64 hexadecimal"),
        (&format!("{good}, Signature=00"), "more than one 'Signature'"),
        (&good.replace(", ", ",garbage,"), "not of the form name=value"),
        (&good.replace(", ", ",,"), "empty parameter"),
        (&format!("{good},"), "empty parameter"),
    ];
    for (header, needle) in cases {
        let e = request.clone().with_authorization(header).verify().unwrap_err();
        assert_eq!(e.kind(), ErrorType::IncompleteSignature, "{header}: {e}");
        assert!(e.to_string().contains(needle), "{header}: {e}");
    }
}

#[test]
fn authorization_parameters_may_be_separated_without_spaces() {
    let request = signed();
    let compact = request.authorization().replace(", ", ",");
    assert!(request.with_authorization(&compact).verify().is_ok());
}

#[test]
fn a_wrong_scope_terminator_is_rejected() {
    let request = signed();
    let auth = request.authorization().replace("/aws4_request", "/aws4_reqest");
    let e = request.with_authorization(&auth).verify().unwrap_err();
    assert_eq!(e, AuthError::WrongTerminator { got: "aws4_reqest".into() });
}

#[test]
fn a_query_string_is_part_of_what_is_signed() {
    let request = Signer { uri: "/?a=1&b=two%20words", ..Signer::default() }.sign();
    assert!(request.verify().is_ok());
    let mut changed = request.clone();
    changed.uri = Uri::from_static("/?a=2&b=two%20words");
    assert_eq!(changed.verify(), Err(AuthError::Mismatch));
}

#[test]
fn a_key_with_an_allow_list_may_use_only_its_streams() {
    let request =
        Signer { key: "AKIDLIMITED", secret: "limited-secret", ..Signer::default() }.sign();
    let caller = request.verify().unwrap();
    assert!(caller.is_restricted());
    assert!(caller.may_use("clicks"));
    assert!(!caller.may_use("orders"));
}

#[test]
fn debug_output_never_shows_a_secret() {
    let v = verifier();
    let text = format!("{v:?}");
    assert!(
        text.contains(KEY) && !text.contains(SECRET) && !text.contains("limited-secret"),
        "{text}"
    );
    let pending = v.check_headers(&Uri::from_static("/"), &signed().headers, t0()).unwrap();
    let text = format!("{pending:?}");
    assert!(!text.contains(SECRET), "{text}");
}

#[test]
fn every_failure_has_a_distinct_metric_reason() {
    let all = [
        AuthError::Missing,
        AuthError::Presigned,
        AuthError::Incomplete(String::new()),
        AuthError::UnknownKey,
        AuthError::SessionToken,
        AuthError::WrongService { got: String::new() },
        AuthError::WrongRegion { got: String::new(), expected: String::new() },
        AuthError::WrongTerminator { got: String::new() },
        AuthError::ScopeDate { scope: String::new(), date: String::new(), stamp: String::new() },
        AuthError::Expired { stamp: String::new(), earliest: String::new(), now: String::new() },
        AuthError::NotYetCurrent {
            stamp: String::new(),
            latest: String::new(),
            now: String::new(),
        },
        AuthError::SignedHeaderMissing(String::new()),
        AuthError::BodyHash,
        AuthError::Mismatch,
    ];
    let reasons: HashSet<&str> = all.iter().map(AuthError::reason).collect();
    assert_eq!(reasons.len(), all.len());
}

/// Header values a fuzzer may put anywhere: visible ASCII, spaces, tabs and non-ASCII bytes.
fn header_value() -> impl Strategy<Value = HeaderValue> {
    proptest::collection::vec(prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff], 0..200)
        .prop_map(|bytes| HeaderValue::from_bytes(&bytes).unwrap())
}

/// Authorization values built from the pieces of real ones, in any order and number.
fn authorization_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("AWS4-HMAC-SHA256 ".to_owned()),
        Just("Credential=".to_owned()),
        Just("SignedHeaders=".to_owned()),
        Just("Signature=".to_owned()),
        Just("AKIDEXAMPLE/20261122/us-east-1/firehose/aws4_request".to_owned()),
        Just("host;x-amz-date".to_owned()),
        Just("/".to_owned()),
        Just(",".to_owned()),
        Just(";".to_owned()),
        Just("=".to_owned()),
        Just(" ".to_owned()),
        "[0-9a-f]{0,70}",
        "[ -~]{0,12}",
        "\\PC{0,6}",
    ];
    proptest::collection::vec(piece, 0..16).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn garbled_authorization_headers_never_panic_and_never_verify(value in header_value()) {
        let request = signed().set("authorization", "x");
        let mut request = request;
        request.headers.insert("authorization", value);
        prop_assert!(request.verify().is_err());
    }

    #[test]
    fn authorization_headers_made_of_real_pieces_never_panic(value in authorization_like()) {
        let mut request = signed();
        if let Ok(value) = HeaderValue::from_str(&value) {
            request.headers.insert("authorization", value);
            prop_assert!(request.verify().is_err());
        }
    }

    #[test]
    fn garbled_date_and_signed_headers_never_panic(
        date in header_value(),
        signed_names in proptest::collection::vec("[a-z-]{1,12}", 0..6),
        values in proptest::collection::vec(header_value(), 0..6),
    ) {
        let mut request = signed();
        request.headers.insert("x-amz-date", date);
        for (name, value) in signed_names.iter().zip(values) {
            if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
                request.headers.append(name, value);
            }
        }
        let auth = request.authorization().replace(
            "SignedHeaders=content-type;host;x-amz-date;x-amz-target",
            &format!("SignedHeaders=host;{}", signed_names.join(";")),
        );
        let request = request.with_authorization(&auth);
        // Whatever happens, it is an answer, not a panic; with a garbled date it never passes.
        let _ = request.verify();
    }

    #[test]
    fn a_single_flipped_body_bit_never_verifies(index in 0..BODY.len(), bit in 0u8..8) {
        let mut request = signed();
        request.body[index] ^= 1 << bit;
        prop_assert_eq!(request.verify(), Err(AuthError::Mismatch));
    }

    #[test]
    fn any_mutated_byte_of_the_authorization_header_is_rejected_without_panic(
        index in 0usize..250,
        byte in 0x20u8..0x7f,
    ) {
        let request = signed();
        let mut auth = request.authorization().into_bytes();
        let index = index % auth.len();
        prop_assume!(auth[index] != byte);
        auth[index] = byte;
        let auth = String::from_utf8(auth).unwrap();
        // A change of whitespace next to a separator is still the same header.
        let same = auth.split_whitespace().collect::<String>()
            == request.authorization().split_whitespace().collect::<String>();
        let result = request.with_authorization(&auth).verify();
        if !same {
            prop_assert!(result.is_err(), "{auth}");
        }
    }
}
