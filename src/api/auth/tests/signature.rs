//! Requests signed as clients sign them, then changed one field at a time; dates and clock skew.

use super::*;

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
    assert_eq!(
        e,
        AuthError::WrongService {
            got: "kinesis".into(),
            expected: crate::operations::Service::Firehose
        }
    );
    assert_eq!(e.kind(), ErrorType::InvalidSignature);
    assert!(e.to_string().contains("'firehose'"), "{e}");
}

#[test]
fn a_kinesis_call_is_signed_for_kinesis_and_gets_its_keys_kinesis_actions() {
    let kinesis = |service| Signer {
        service,
        headers: vec![
            ("host", HOST),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "Kinesis_20131202.PutRecords"),
        ],
        ..Signer::default()
    };
    let caller = kinesis("kinesis").sign().verify().unwrap();
    assert_eq!(caller.service, crate::operations::Service::Kinesis);
    // The default actions: put and look up, not read.
    assert!(caller.may_call("PutRecords") && caller.may_call("ListShards"));
    assert!(!caller.may_call("GetRecords") && !caller.may_call("PutRecordBatch"));
    let e = kinesis("firehose").sign().verify().unwrap_err();
    assert_eq!(
        e,
        AuthError::WrongService {
            got: "firehose".into(),
            expected: crate::operations::Service::Kinesis
        }
    );
    assert!(e.to_string().contains("use a Kinesis client"), "{e}");
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
