//! Missing, malformed and unsigned headers, session tokens, keys and their allowed actions.

use super::*;

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
        AuthError::WrongService {
            got: String::new(),
            expected: crate::operations::Service::Firehose,
        },
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
