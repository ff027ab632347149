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

// The cases, by subject.
mod headers;
mod properties;
mod signature;
