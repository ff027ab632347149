//! The configuration blocks of `HttpEndpointDestinationConfiguration` that this destination
//! owns, with Firehose's names, and their validation into [`HttpEndpointSettings`].
//!
//! The lead configuration (`S3Configuration`, `ProcessingConfiguration`, `RoleARN`, ...) lives
//! in Hydrant's config model; it hands the values this destination needs to
//! [`HttpEndpointSettings::validate`].

use std::fmt;
use std::time::Duration;

use reqwest::header::HeaderValue;
use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::retry::{DEFAULT_RETRY_DURATION, MAX_RETRY_DURATION, RESPONSE_TIMEOUT};

/// Longest `EndpointConfiguration.Url` Firehose accepts.
pub const MAX_URL_LEN: usize = 1000;
/// Longest `EndpointConfiguration.Name`.
pub const MAX_NAME_LEN: usize = 256;
/// Longest `EndpointConfiguration.AccessKey`, in bytes.
pub const MAX_ACCESS_KEY_LEN: usize = 4096;
/// Most `RequestConfiguration.CommonAttributes`.
pub const MAX_COMMON_ATTRIBUTES: usize = 50;
/// Longest `AttributeName`.
pub const MAX_ATTRIBUTE_NAME_LEN: usize = 256;
/// Longest `AttributeValue`.
pub const MAX_ATTRIBUTE_VALUE_LEN: usize = 1024;
/// `BufferingHints.SizeInMBs` range for HTTP endpoints, and its default.
pub const BUFFER_SIZE_MBS: (u32, u32, u32) = (1, 64, 5);
/// `BufferingHints.IntervalInSeconds` range for HTTP endpoints, and its default.
pub const BUFFER_INTERVAL_SECONDS: (u32, u32, u32) = (0, 900, 300);

/// One validation problem: the Firehose field (relative to
/// `HttpEndpointDestinationConfiguration`, e.g. `EndpointConfiguration.Url`) and what to do
/// about it.
pub type ConfigIssue = (String, String);

/// `EndpointConfiguration`: where records go.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfiguration {
    /// The URL every request is POSTed to. Firehose requires `https://`; Hydrant also accepts
    /// `http://` for receivers on a trusted network (the access key then travels in clear).
    #[serde(rename = "Url")]
    pub url: String,
    /// A display name for the endpoint (1 to 256 characters). Not sent.
    #[serde(rename = "Name", default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Sent verbatim in `X-Amz-Firehose-Access-Key` (at most 4096 bytes). Write `${VAR}` to
    /// take it from the environment. Empty or absent: the header is not sent.
    #[serde(rename = "AccessKey", default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
}

impl fmt::Debug for EndpointConfiguration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointConfiguration")
            .field("url", &crate::redact::redact_url_credentials(&self.url))
            .field("name", &self.name)
            .field("access_key", &self.access_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// `RequestConfiguration`: how requests are encoded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestConfiguration {
    /// `NONE` (default) or `GZIP` (the whole body, with `Content-Encoding: gzip`).
    #[serde(rename = "ContentEncoding", default)]
    pub content_encoding: ContentEncoding,
    /// Name/value pairs sent with every request in `X-Amz-Firehose-Common-Attributes`
    /// (at most 50; names 1 to 256 characters, values up to 1024).
    #[serde(rename = "CommonAttributes", default, skip_serializing_if = "Vec::is_empty")]
    pub common_attributes: Vec<CommonAttribute>,
}

/// `RequestConfiguration.ContentEncoding`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContentEncoding {
    /// The body is sent as is; no `Content-Encoding` header.
    #[default]
    #[serde(rename = "NONE")]
    None,
    /// The body is one gzip stream; `Content-Encoding: gzip`.
    #[serde(rename = "GZIP")]
    Gzip,
}

/// One entry of `RequestConfiguration.CommonAttributes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommonAttribute {
    #[serde(rename = "AttributeName")]
    pub name: String,
    #[serde(rename = "AttributeValue")]
    pub value: String,
}

/// `S3BackupMode` of an HTTP endpoint destination: which records are also written to
/// `S3Configuration`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpS3BackupMode {
    /// Only records that could not be delivered (under `http-endpoint-failed/`).
    #[default]
    FailedDataOnly,
    /// Every record, delivered or not.
    AllData,
}

/// What [`HttpEndpointSettings::validate`] needs: the blocks above, the relevant values of the
/// shared blocks, and the stream's ARN.
#[derive(Debug, Clone, Copy)]
pub struct HttpEndpointInput<'a> {
    pub endpoint: &'a EndpointConfiguration,
    pub request: Option<&'a RequestConfiguration>,
    /// `RetryOptions.DurationInSeconds` (0..=7200, default 300).
    pub retry_duration_in_seconds: Option<u32>,
    /// `BufferingHints.SizeInMBs` (1..=64 for HTTP endpoints, default 5).
    pub buffering_size_in_mbs: Option<u32>,
    /// `BufferingHints.IntervalInSeconds` (0..=900, default 300).
    pub buffering_interval_in_seconds: Option<u32>,
    /// `arn:aws:firehose:<region>:<account>:deliverystream/<name>`, sent in
    /// `X-Amz-Firehose-Source-Arn`.
    pub source_arn: &'a str,
}

/// A checked HTTP endpoint configuration, ready for [`super::HttpDestination::new`].
#[derive(Clone, PartialEq, Eq)]
pub struct HttpEndpointSettings {
    pub url: Url,
    pub name: Option<String>,
    /// `None` when not configured or empty.
    pub access_key: Option<String>,
    pub content_encoding: ContentEncoding,
    /// In configured order; names are unique.
    pub common_attributes: Vec<(String, String)>,
    /// How long failed requests are retried, not counting time spent waiting for answers.
    pub retry_duration: Duration,
    /// Deliver once this many bytes of record data are buffered.
    pub buffer_size_bytes: u64,
    /// Deliver once the oldest buffered record is this old.
    pub buffer_interval: Duration,
    pub source_arn: String,
    /// How long one attempt may take, answer included (Firehose: 3 minutes).
    pub response_timeout: Duration,
}

impl fmt::Debug for HttpEndpointSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpEndpointSettings")
            .field("url", &crate::redact::redact_url_credentials(self.url.as_str()))
            .field("name", &self.name)
            .field("access_key", &self.access_key.as_ref().map(|_| "<redacted>"))
            .field("content_encoding", &self.content_encoding)
            .field("common_attributes", &self.common_attributes)
            .field("retry_duration", &self.retry_duration)
            .field("buffer_size_bytes", &self.buffer_size_bytes)
            .field("buffer_interval", &self.buffer_interval)
            .field("source_arn", &self.source_arn)
            .field("response_timeout", &self.response_timeout)
            .finish()
    }
}

impl HttpEndpointSettings {
    /// Checks every field and reports all problems at once, each naming its Firehose field.
    pub fn validate(input: HttpEndpointInput<'_>) -> Result<Self, Vec<ConfigIssue>> {
        let mut issues = Vec::new();
        let mut issue = |field: &str, message: String| issues.push((field.to_owned(), message));

        let url = check_url(&input.endpoint.url).map_err(|m| issue("EndpointConfiguration.Url", m));

        if let Some(name) = &input.endpoint.name {
            let len = name.chars().count();
            if name.trim().is_empty() || len > MAX_NAME_LEN {
                issue(
                    "EndpointConfiguration.Name",
                    format!(
                        "must be 1 to {MAX_NAME_LEN} characters and not blank, got {len}; \
                         leave it out if the endpoint needs no display name"
                    ),
                );
            }
        }

        let access_key = input.endpoint.access_key.as_deref().filter(|k| !k.is_empty());
        if let Some(key) = access_key {
            if key.len() > MAX_ACCESS_KEY_LEN {
                issue(
                    "EndpointConfiguration.AccessKey",
                    format!("must be at most {MAX_ACCESS_KEY_LEN} bytes, got {}", key.len()),
                );
            } else if HeaderValue::from_str(key).is_err() {
                issue(
                    "EndpointConfiguration.AccessKey",
                    "must be printable text without control characters or line breaks: it is \
                     sent verbatim in the X-Amz-Firehose-Access-Key header"
                        .to_owned(),
                );
            }
        }

        let request = input.request.cloned().unwrap_or_default();
        let attributes = &request.common_attributes;
        if attributes.len() > MAX_COMMON_ATTRIBUTES {
            issue(
                "RequestConfiguration.CommonAttributes",
                format!(
                    "at most {MAX_COMMON_ATTRIBUTES} attributes are allowed, got {}",
                    attributes.len()
                ),
            );
        }
        for (i, attribute) in attributes.iter().enumerate() {
            let field = format!("RequestConfiguration.CommonAttributes[{i}]");
            let name_len = attribute.name.chars().count();
            if attribute.name.trim().is_empty() || name_len > MAX_ATTRIBUTE_NAME_LEN {
                issue(
                    &format!("{field}.AttributeName"),
                    format!(
                        "must be 1 to {MAX_ATTRIBUTE_NAME_LEN} characters and not blank, \
                         got {name_len}"
                    ),
                );
            } else if attributes[..i].iter().any(|a| a.name == attribute.name) {
                issue(
                    &format!("{field}.AttributeName"),
                    format!(
                        "`{}` is given more than once; each attribute name may appear once",
                        attribute.name
                    ),
                );
            }
            let value_len = attribute.value.chars().count();
            if value_len > MAX_ATTRIBUTE_VALUE_LEN {
                issue(
                    &format!("{field}.AttributeValue"),
                    format!(
                        "must be at most {MAX_ATTRIBUTE_VALUE_LEN} characters, got {value_len}"
                    ),
                );
            }
        }

        let retry_secs = input.retry_duration_in_seconds.unwrap_or(DEFAULT_RETRY_DURATION);
        if retry_secs > MAX_RETRY_DURATION {
            issue(
                "RetryOptions.DurationInSeconds",
                format!("must be 0..={MAX_RETRY_DURATION} seconds (0: no retry), got {retry_secs}"),
            );
        }

        let (min, max, default) = BUFFER_SIZE_MBS;
        let size_mbs = input.buffering_size_in_mbs.unwrap_or(default);
        if !(min..=max).contains(&size_mbs) {
            issue(
                "BufferingHints.SizeInMBs",
                format!(
                    "must be {min}..={max} for an HTTP endpoint, got {size_mbs}; make sure the \
                     receiver accepts requests of that size"
                ),
            );
        }
        let (min, max, default) = BUFFER_INTERVAL_SECONDS;
        let interval = input.buffering_interval_in_seconds.unwrap_or(default);
        if !(min..=max).contains(&interval) {
            issue(
                "BufferingHints.IntervalInSeconds",
                format!("must be {min}..={max}, got {interval}"),
            );
        }

        if !input.source_arn.starts_with("arn:") || HeaderValue::from_str(input.source_arn).is_err()
        {
            issue(
                "DeliveryStreamARN",
                format!(
                    "`{}` is not a delivery stream ARN \
                     (arn:aws:firehose:<region>:<account>:deliverystream/<name>)",
                    input.source_arn
                ),
            );
        }

        match url {
            Ok(url) if issues.is_empty() => Ok(Self {
                url,
                name: input.endpoint.name.clone(),
                access_key: access_key.map(str::to_owned),
                content_encoding: request.content_encoding,
                common_attributes: request
                    .common_attributes
                    .into_iter()
                    .map(|a| (a.name, a.value))
                    .collect(),
                retry_duration: Duration::from_secs(u64::from(retry_secs)),
                buffer_size_bytes: u64::from(size_mbs) * 1024 * 1024,
                buffer_interval: Duration::from_secs(u64::from(interval)),
                source_arn: input.source_arn.to_owned(),
                response_timeout: RESPONSE_TIMEOUT,
            }),
            _ => Err(issues),
        }
    }
}

fn check_url(text: &str) -> Result<Url, String> {
    if text.is_empty() {
        return Err("is required: the address that receives the records, \
                    e.g. https://logs.example.com/firehose"
            .to_owned());
    }
    let len = text.chars().count();
    if len > MAX_URL_LEN {
        return Err(format!("must be at most {MAX_URL_LEN} characters, got {len}"));
    }
    let url = Url::parse(text).map_err(|e| {
        format!("`{text}` is not a valid URL ({e}); write e.g. https://host:port/path")
    })?;
    match url.scheme() {
        "https" | "http" => {}
        other => {
            return Err(format!(
                "must start with https:// (or http:// for a receiver on a trusted network), \
                 got `{other}:`"
            ))
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{text}` has no host name"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:firehose:us-east-1:123456789012:deliverystream/logs";

    fn endpoint(yaml: &str) -> EndpointConfiguration {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    fn input<'a>(
        endpoint: &'a EndpointConfiguration,
        request: Option<&'a RequestConfiguration>,
    ) -> HttpEndpointInput<'a> {
        HttpEndpointInput {
            endpoint,
            request,
            retry_duration_in_seconds: None,
            buffering_size_in_mbs: None,
            buffering_interval_in_seconds: None,
            source_arn: ARN,
        }
    }

    fn issues_of(input: HttpEndpointInput<'_>) -> Vec<ConfigIssue> {
        HttpEndpointSettings::validate(input).unwrap_err()
    }

    #[test]
    fn a_full_configuration_parses_with_firehose_names_and_round_trips() {
        let yaml = r#"
ContentEncoding: GZIP
CommonAttributes:
  - { AttributeName: env, AttributeValue: prod }
  - { AttributeName: team, AttributeValue: "" }
"#;
        let request: RequestConfiguration = serde_yaml_ng::from_str(yaml).unwrap();
        assert_eq!(request.content_encoding, ContentEncoding::Gzip);
        assert_eq!(request.common_attributes[1].name, "team");
        let back: RequestConfiguration =
            serde_yaml_ng::from_str(&serde_yaml_ng::to_string(&request).unwrap()).unwrap();
        assert_eq!(back, request);

        let ep = endpoint("{ Url: 'https://x.example/in', Name: X, AccessKey: secret }");
        let back: EndpointConfiguration =
            serde_yaml_ng::from_str(&serde_yaml_ng::to_string(&ep).unwrap()).unwrap();
        assert_eq!(back, ep);
    }

    #[test]
    fn defaults_follow_firehose() {
        let ep = endpoint("{ Url: 'https://x.example/in' }");
        let s = HttpEndpointSettings::validate(input(&ep, None)).unwrap();
        assert_eq!(s.content_encoding, ContentEncoding::None);
        assert_eq!(s.retry_duration, Duration::from_secs(300));
        assert_eq!(s.buffer_size_bytes, 5 * 1024 * 1024);
        assert_eq!(s.buffer_interval, Duration::from_secs(300));
        assert_eq!(s.response_timeout, Duration::from_secs(180));
        assert_eq!(s.access_key, None);
        assert!(s.common_attributes.is_empty());
        assert_eq!(HttpS3BackupMode::default(), HttpS3BackupMode::FailedDataOnly);
    }

    #[test]
    fn unknown_keys_and_encodings_are_rejected() {
        let e = serde_yaml_ng::from_str::<EndpointConfiguration>("{ Url: 'https://a', URL: b }")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `URL`"), "{e}");
        let e = serde_yaml_ng::from_str::<RequestConfiguration>("{ ContentEncoding: gzip }")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown variant `gzip`"), "{e}");
        let e = serde_yaml_ng::from_str::<RequestConfiguration>(
            "{ CommonAttributes: [{ AttributeName: a, Value: b }] }",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field `Value`"), "{e}");
    }

    #[test]
    fn plain_http_is_allowed_but_other_schemes_are_not() {
        let ep = endpoint("{ Url: 'http://127.0.0.1:8080/in' }");
        assert!(HttpEndpointSettings::validate(input(&ep, None)).is_ok());

        let ep = endpoint("{ Url: 'ftp://files.example/in' }");
        let issues = issues_of(input(&ep, None));
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].0, "EndpointConfiguration.Url");
        assert!(issues[0].1.contains("https://") && issues[0].1.contains("`ftp:`"), "{issues:?}");

        let ep = endpoint("{ Url: 'not a url' }");
        assert!(issues_of(input(&ep, None))[0].1.contains("not a valid URL"));
        let ep = endpoint("{ Url: '' }");
        assert!(issues_of(input(&ep, None))[0].1.contains("is required"));
        let long = format!("{{ Url: 'https://a.example/{}' }}", "x".repeat(1000));
        let ep = endpoint(&long);
        assert!(issues_of(input(&ep, None))[0].1.contains("at most 1000"));
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let ep = EndpointConfiguration {
            url: "https://x.example".into(),
            name: Some(" ".into()),
            access_key: Some("line\nbreak".into()),
        };
        let mut attributes: Vec<_> = (0..51)
            .map(|i| CommonAttribute { name: format!("a{i}"), value: String::new() })
            .collect();
        attributes[1].name = "a0".into();
        attributes[2].name = String::new();
        attributes[3].value = "v".repeat(1025);
        let request = RequestConfiguration {
            content_encoding: ContentEncoding::None,
            common_attributes: attributes,
        };
        let issues = issues_of(HttpEndpointInput {
            retry_duration_in_seconds: Some(7201),
            buffering_size_in_mbs: Some(65),
            buffering_interval_in_seconds: Some(901),
            source_arn: "logs",
            ..input(&ep, Some(&request))
        });
        let fields: Vec<&str> = issues.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "EndpointConfiguration.Name",
                "EndpointConfiguration.AccessKey",
                "RequestConfiguration.CommonAttributes",
                "RequestConfiguration.CommonAttributes[1].AttributeName",
                "RequestConfiguration.CommonAttributes[2].AttributeName",
                "RequestConfiguration.CommonAttributes[3].AttributeValue",
                "RetryOptions.DurationInSeconds",
                "BufferingHints.SizeInMBs",
                "BufferingHints.IntervalInSeconds",
                "DeliveryStreamARN",
            ]
        );
        assert!(issues[3].1.contains("`a0` is given more than once"), "{:?}", issues[3]);
        assert!(issues[6].1.contains("0..=7200") && issues[6].1.contains("7201"));
        assert!(issues[7].1.contains("1..=64") && issues[7].1.contains("65"));
    }

    #[test]
    fn limits_themselves_are_accepted() {
        let ep = EndpointConfiguration {
            url: "https://x.example".into(),
            name: Some("n".repeat(256)),
            access_key: Some("k".repeat(4096)),
        };
        let request = RequestConfiguration {
            content_encoding: ContentEncoding::Gzip,
            common_attributes: (0..50)
                .map(|i| CommonAttribute { name: format!("{i:0>256}"), value: "v".repeat(1024) })
                .collect(),
        };
        let s = HttpEndpointSettings::validate(HttpEndpointInput {
            retry_duration_in_seconds: Some(7200),
            buffering_size_in_mbs: Some(64),
            buffering_interval_in_seconds: Some(0),
            ..input(&ep, Some(&request))
        })
        .unwrap();
        assert_eq!(s.retry_duration, Duration::from_secs(7200));
        assert_eq!(s.buffer_size_bytes, 64 << 20);
        assert_eq!(s.common_attributes.len(), 50);
        let ep = EndpointConfiguration { access_key: Some("k".repeat(4097)), ..ep };
        assert_eq!(issues_of(input(&ep, None))[0].1, "must be at most 4096 bytes, got 4097");
    }

    #[test]
    fn an_empty_access_key_is_not_sent_and_debug_output_hides_it() {
        let ep = endpoint("{ Url: 'https://x.example', AccessKey: '' }");
        assert_eq!(HttpEndpointSettings::validate(input(&ep, None)).unwrap().access_key, None);
        let ep = endpoint("{ Url: 'https://x.example', AccessKey: hunter2 }");
        let s = HttpEndpointSettings::validate(input(&ep, None)).unwrap();
        assert_eq!(s.access_key.as_deref(), Some("hunter2"));
        assert!(!format!("{ep:?}{s:?}").contains("hunter2"));
    }
}
