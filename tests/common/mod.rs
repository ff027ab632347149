//! Helpers shared by the in-process integration tests (`mod common;` in each test file).

/// The headers (`host`, `content-type`, `x-amz-target` and the signature's) of a request for
/// `operation` with `body`, signed now for `key` with aws-sigv4, as an AWS SDK signs it.
pub fn signed_headers(
    key: &str,
    secret: &str,
    operation: &str,
    body: &[u8],
) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    let target = format!("Firehose_20150804.{operation}");
    let headers = [
        ("host", "127.0.0.1:4573"),
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", target.as_str()),
    ];
    let identity = aws_credential_types::Credentials::new(key, secret, None, None, "test").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("firehose")
        .time(std::time::SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signable =
        SignableRequest::new("POST", "/", headers.into_iter(), SignableBody::Bytes(body)).unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    headers
        .into_iter()
        .chain(instructions.headers())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
