//! Settings of the OpenSearch / Elasticsearch destination.
//!
//! Two layers, as everywhere in Hydrant: the serde types for the Firehose blocks this module
//! owns (`IndexRotationPeriod`, `DocumentIdOptions`), written exactly as in a Firehose
//! `AmazonopensearchserviceDestinationConfiguration` / `ElasticsearchDestinationConfiguration`,
//! and a checked [`SearchSettings`] built by [`SearchSettings::validate`] from the fields the
//! delivery layer picked out of the raw block ([`SearchSettingsInput`]). Validation errors name
//! the Firehose field and say how to fix it.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How often a new index is started (`IndexRotationPeriod`). The arrival time of each record
/// (UTC) is appended to `IndexName` with a `-`; see [`crate::search::index_name`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IndexRotationPeriod {
    /// Always write to `IndexName` itself.
    NoRotation,
    /// `IndexName-yyyy-MM-dd-HH`.
    OneHour,
    /// `IndexName-yyyy-MM-dd` (Firehose's default).
    #[default]
    OneDay,
    /// `IndexName-<week year>-w<week>`, US weeks (Sunday start, week 1 holds January 1).
    OneWeek,
    /// `IndexName-yyyy-MM`.
    OneMonth,
}

/// `DocumentIdOptions`: who chooses the `_id` of each document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentIdOptions {
    /// `FIREHOSE_DEFAULT` (Hydrant derives a stable id from the record's position in its log)
    /// or `NO_DOCUMENT_ID` (the cluster generates ids).
    #[serde(rename = "DefaultDocumentIdFormat")]
    pub default_document_id_format: DefaultDocumentIdFormat,
}

/// `DocumentIdOptions.DefaultDocumentIdFormat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DefaultDocumentIdFormat {
    /// Every document gets a deterministic id, so a re-delivered batch overwrites the documents
    /// it already wrote instead of duplicating them. The default when the option is absent.
    #[default]
    #[serde(rename = "FIREHOSE_DEFAULT")]
    FirehoseDefault,
    /// No `_id` is sent; the cluster assigns one. Needed by clusters that refuse explicit ids
    /// (OpenSearch Serverless time-series collections), at the price of duplicates when a batch
    /// is delivered again after a crash or a lost response.
    #[serde(rename = "NO_DOCUMENT_ID")]
    NoDocumentId,
}

/// Which Firehose block the destination came from. It changes only names: error codes
/// (`OS.*` or `ES.*`), the error-output folder and the destination's `kind()`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SearchFlavor {
    /// `AmazonopensearchserviceDestinationConfiguration`.
    #[default]
    OpenSearch,
    /// The legacy `ElasticsearchDestinationConfiguration` (same members).
    Elasticsearch,
}

impl SearchFlavor {
    /// Prefix of error codes, e.g. `OS` in `OS.MapperParsingException`.
    pub fn code_prefix(self) -> &'static str {
        match self {
            SearchFlavor::OpenSearch => "OS",
            SearchFlavor::Elasticsearch => "ES",
        }
    }

    /// Short name for logs and metrics.
    pub fn kind(self) -> &'static str {
        match self {
            SearchFlavor::OpenSearch => "opensearch",
            SearchFlavor::Elasticsearch => "elasticsearch",
        }
    }

    /// Folder (under the `S3Configuration` prefix) that failed documents are written to, and
    /// the value of `!{firehose:error-output-type}` (FIREHOSE.md 6.4).
    pub const fn error_output_type(self) -> &'static str {
        match self {
            SearchFlavor::OpenSearch => "AmazonOpenSearchService-failed",
            SearchFlavor::Elasticsearch => "elasticsearch-failed",
        }
    }
}

/// Firehose's default for `RetryOptions.DurationInSeconds`.
pub const DEFAULT_RETRY_SECONDS: u32 = 300;
/// Firehose's upper bound for `RetryOptions.DurationInSeconds`.
pub const MAX_RETRY_SECONDS: u32 = 7200;
/// How long one `_bulk` request may take before it counts as failed (and is retried).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The fields of a search destination block that [`SearchSettings::validate`] checks. The
/// delivery layer fills it from the raw Firehose block (after resolving `${ENV}` references);
/// `None` means "not given".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchSettingsInput {
    pub flavor: SearchFlavor,
    /// `ClusterEndpoint`: `https://host:port` (or `http://` for a cluster on a private network).
    pub cluster_endpoint: Option<String>,
    /// `DomainARN`: accepted by Firehose, but Hydrant cannot look an AWS domain up.
    pub domain_arn: Option<String>,
    /// `IndexName`.
    pub index_name: String,
    /// `TypeName` (Elasticsearch 6.x only); an empty string means none.
    pub type_name: Option<String>,
    /// `IndexRotationPeriod`; default `OneDay`.
    pub index_rotation_period: Option<IndexRotationPeriod>,
    /// `DocumentIdOptions`; default `FIREHOSE_DEFAULT`.
    pub document_id_options: Option<DocumentIdOptions>,
    /// `RetryOptions.DurationInSeconds`; default 300.
    pub retry_duration_in_seconds: Option<u32>,
    /// Hydrant extension: HTTP basic auth user (Firehose signs requests with IAM instead).
    pub username: Option<String>,
    /// Hydrant extension: HTTP basic auth password.
    pub password: Option<String>,
    /// Hydrant extension: timeout of one `_bulk` request; default 60 s.
    pub request_timeout: Option<Duration>,
}

/// HTTP basic auth credentials. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicAuth {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Checked settings of one search destination.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchSettings {
    pub flavor: SearchFlavor,
    /// Cluster URL without a trailing `/`; requests go to `<endpoint>/_bulk`.
    pub endpoint: String,
    /// `IndexName` before rotation.
    pub index_name: String,
    /// `TypeName`, only when set and not empty.
    pub type_name: Option<String>,
    pub rotation: IndexRotationPeriod,
    pub document_ids: DefaultDocumentIdFormat,
    /// How long failed requests and documents are retried (`RetryOptions`); zero: no retry.
    pub retry_duration: Duration,
    pub basic_auth: Option<BasicAuth>,
    pub request_timeout: Duration,
}

/// Validation problems: `(Firehose field name, what is wrong and how to fix it)`. Hydrant-only
/// fields are named in snake_case (`username`, `password`, `request_timeout`).
pub type FieldErrors = Vec<(&'static str, String)>;

/// Longest `IndexName` Firehose accepts.
const MAX_INDEX_NAME_CHARS: usize = 80;
/// Longest `TypeName` Firehose accepts.
const MAX_TYPE_NAME_CHARS: usize = 100;
/// Characters OpenSearch and Elasticsearch refuse in index names (`:` is refused since 7.0).
const INDEX_FORBIDDEN: &[char] = &['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ',', '#', ':'];

impl SearchSettings {
    /// Checks `input` and fills in Firehose's defaults. Returns every problem at once.
    pub fn validate(input: &SearchSettingsInput) -> Result<SearchSettings, FieldErrors> {
        let mut errors = FieldErrors::new();
        let endpoint = check_endpoint(input, &mut errors);
        check_index_name(&input.index_name, &mut errors);
        let type_name = input.type_name.clone().filter(|t| !t.is_empty());
        if let Some(t) = &type_name {
            check_type_name(t, &mut errors);
        }
        let retry_seconds = input.retry_duration_in_seconds.unwrap_or(DEFAULT_RETRY_SECONDS);
        if retry_seconds > MAX_RETRY_SECONDS {
            errors.push((
                "RetryOptions.DurationInSeconds",
                format!(
                    "{retry_seconds} is more than Firehose's maximum of {MAX_RETRY_SECONDS} \
                     seconds; use 0..={MAX_RETRY_SECONDS} (0 means no retry)"
                ),
            ));
        }
        let basic_auth = match (&input.username, &input.password) {
            (None, None) => None,
            (Some(u), Some(p)) if !u.is_empty() => {
                Some(BasicAuth { username: u.clone(), password: p.clone() })
            }
            (Some(_), Some(_)) => {
                errors.push((
                    "username",
                    "is empty; remove username and password to send no credentials, or set both"
                        .into(),
                ));
                None
            }
            (Some(_), None) => {
                errors.push(("password", "is missing: basic auth needs both username and password (use ${ENV_VAR} to keep the password out of the file)".into()));
                None
            }
            (None, Some(_)) => {
                errors.push((
                    "username",
                    "is missing: basic auth needs both username and password".into(),
                ));
                None
            }
        };
        let request_timeout = input.request_timeout.unwrap_or(DEFAULT_REQUEST_TIMEOUT);
        if request_timeout.is_zero() {
            errors.push(("request_timeout", "must be more than zero, e.g. 60s".into()));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(SearchSettings {
            flavor: input.flavor,
            endpoint: endpoint.unwrap_or_default(),
            index_name: input.index_name.clone(),
            type_name,
            rotation: input.index_rotation_period.unwrap_or_default(),
            document_ids: input
                .document_id_options
                .map(|o| o.default_document_id_format)
                .unwrap_or_default(),
            retry_duration: Duration::from_secs(retry_seconds.into()),
            basic_auth,
            request_timeout,
        })
    }

    /// Settings that are valid but probably not what the operator wants, as
    /// `(field, advice)`; the caller logs them at startup.
    pub fn warnings(&self) -> FieldErrors {
        let mut out = FieldErrors::new();
        if self.type_name.is_some() {
            out.push((
                "TypeName",
                "is sent as `_type` on every action line, which only Elasticsearch 6.x (and 7.x, \
                 deprecated) accept; OpenSearch and Elasticsearch 8+ reject every request with \
                 `unknown parameter [_type]`. Leave TypeName empty for them"
                    .into(),
            ));
        }
        if self.endpoint.starts_with("http://") && self.basic_auth.is_some() {
            out.push((
                "ClusterEndpoint",
                "uses plain http:// while basic auth is set, so the password crosses the \
                 network unencrypted; use https://"
                    .into(),
            ));
        }
        out
    }
}

fn check_endpoint(input: &SearchSettingsInput, errors: &mut FieldErrors) -> Option<String> {
    let Some(raw) = input.cluster_endpoint.as_deref().filter(|e| !e.is_empty()) else {
        let message = if input.domain_arn.is_some() {
            "is required: Hydrant cannot resolve DomainARN to a cluster address; remove DomainARN \
             and set ClusterEndpoint to the cluster URL, e.g. https://search.example.com:9200"
        } else {
            "is required: set it to the cluster URL, e.g. https://search.example.com:9200"
        };
        errors.push(("ClusterEndpoint", message.into()));
        return None;
    };
    if input.domain_arn.is_some() {
        errors.push((
            "DomainARN",
            "cannot be combined with ClusterEndpoint (Firehose takes one or the other); remove \
             DomainARN"
                .into(),
        ));
    }
    let url = match reqwest::Url::parse(raw) {
        Ok(url) => url,
        Err(e) => {
            errors.push((
                "ClusterEndpoint",
                format!("{raw:?} is not a URL ({e}); write it as https://host:port"),
            ));
            return None;
        }
    };
    if !matches!(url.scheme(), "http" | "https") {
        errors.push((
            "ClusterEndpoint",
            format!("{raw:?} must start with https:// (or http:// on a trusted network)"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        errors.push((
            "ClusterEndpoint",
            "must not carry credentials (user:password@); set hydrant username and password \
             instead, so they stay out of logs"
                .into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        errors.push((
            "ClusterEndpoint",
            format!("{raw:?} must not have a ?query or #fragment; give only scheme, host, port and an optional path"),
        ));
    }
    Some(raw.trim_end_matches('/').to_string())
}

fn check_index_name(name: &str, errors: &mut FieldErrors) {
    let mut problem = |m: String| errors.push(("IndexName", m));
    if name.is_empty() {
        problem("is required (1 to 80 characters), e.g. `logs`".into());
        return;
    }
    if name.chars().count() > MAX_INDEX_NAME_CHARS {
        problem(format!(
            "{name:?} is longer than Firehose's limit of {MAX_INDEX_NAME_CHARS} characters"
        ));
    }
    if name.chars().any(char::is_uppercase) {
        problem(format!(
            "{name:?} has uppercase letters, which OpenSearch refuses in index names; use {:?}",
            name.to_lowercase()
        ));
    }
    let bad: String = name.chars().filter(|c| INDEX_FORBIDDEN.contains(c)).collect();
    if !bad.is_empty() {
        problem(format!(
            "{name:?} contains {bad:?}; index names cannot contain spaces or any of \\ / * ? \" < > | , # :"
        ));
    }
    if name.starts_with(['_', '-', '+']) {
        problem(format!("{name:?} must not start with `_`, `-` or `+`"));
    }
    if name == "." || name == ".." {
        problem("cannot be `.` or `..`".into());
    }
}

fn check_type_name(name: &str, errors: &mut FieldErrors) {
    if name.chars().count() > MAX_TYPE_NAME_CHARS {
        errors.push((
            "TypeName",
            format!("is longer than Firehose's limit of {MAX_TYPE_NAME_CHARS} characters"),
        ));
    }
    if name.starts_with('_') && name != "_doc" {
        errors.push((
            "TypeName",
            format!(
                "{name:?} starts with `_`, which Elasticsearch reserves; use a plain name (or \
                 `_doc`), or leave TypeName empty for OpenSearch and Elasticsearch 7+"
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> SearchSettingsInput {
        SearchSettingsInput {
            cluster_endpoint: Some("https://search.example.com:9200/".into()),
            index_name: "logs".into(),
            ..SearchSettingsInput::default()
        }
    }

    fn fields(errors: &FieldErrors) -> Vec<&'static str> {
        errors.iter().map(|(f, _)| *f).collect()
    }

    #[test]
    fn firehose_blocks_parse_from_yaml_with_their_own_names() {
        let opts: DocumentIdOptions =
            serde_yaml_ng::from_str("DefaultDocumentIdFormat: NO_DOCUMENT_ID").unwrap();
        assert_eq!(opts.default_document_id_format, DefaultDocumentIdFormat::NoDocumentId);
        let opts: DocumentIdOptions =
            serde_yaml_ng::from_str("DefaultDocumentIdFormat: FIREHOSE_DEFAULT").unwrap();
        assert_eq!(opts.default_document_id_format, DefaultDocumentIdFormat::FirehoseDefault);
        for (text, period) in [
            ("NoRotation", IndexRotationPeriod::NoRotation),
            ("OneHour", IndexRotationPeriod::OneHour),
            ("OneDay", IndexRotationPeriod::OneDay),
            ("OneWeek", IndexRotationPeriod::OneWeek),
            ("OneMonth", IndexRotationPeriod::OneMonth),
        ] {
            assert_eq!(serde_yaml_ng::from_str::<IndexRotationPeriod>(text).unwrap(), period);
            assert_eq!(serde_yaml_ng::to_string(&period).unwrap().trim(), text);
        }
    }

    #[test]
    fn unknown_keys_and_values_are_rejected_with_their_name() {
        let err = serde_yaml_ng::from_str::<DocumentIdOptions>(
            "DefaultDocumentIdFormat: FIREHOSE_DEFAULT\nDocumentIdFormat: x",
        )
        .unwrap_err();
        assert!(err.to_string().contains("DocumentIdFormat"), "{err}");
        let err = serde_yaml_ng::from_str::<DocumentIdOptions>("DefaultDocumentIdFormat: RANDOM")
            .unwrap_err();
        assert!(err.to_string().contains("RANDOM"), "{err}");
        let err = serde_yaml_ng::from_str::<IndexRotationPeriod>("Daily").unwrap_err();
        assert!(err.to_string().contains("Daily"), "{err}");
    }

    #[test]
    fn defaults_follow_firehose() {
        let s = SearchSettings::validate(&input()).unwrap();
        assert_eq!(s.endpoint, "https://search.example.com:9200");
        assert_eq!(s.rotation, IndexRotationPeriod::OneDay);
        assert_eq!(s.document_ids, DefaultDocumentIdFormat::FirehoseDefault);
        assert_eq!(s.retry_duration, Duration::from_secs(300));
        assert_eq!(s.type_name, None);
        assert_eq!(s.basic_auth, None);
        assert!(s.warnings().is_empty());
    }

    #[test]
    fn an_empty_type_name_means_no_type() {
        let s = SearchSettings::validate(&SearchSettingsInput {
            type_name: Some(String::new()),
            ..input()
        })
        .unwrap();
        assert_eq!(s.type_name, None);
    }

    #[test]
    fn index_names_that_opensearch_refuses_are_reported_with_a_fix() {
        for (name, needle) in [
            ("Logs", "\"logs\""),
            ("my logs", "spaces"),
            ("a/b", "\"/\""),
            ("_logs", "must not start"),
            ("", "required"),
            ("l".repeat(81).as_str(), "80"),
        ] {
            let err = SearchSettings::validate(&SearchSettingsInput {
                index_name: name.into(),
                ..input()
            })
            .unwrap_err();
            assert_eq!(fields(&err), vec!["IndexName"], "{name}");
            assert!(err[0].1.contains(needle), "{name}: {}", err[0].1);
        }
    }

    #[test]
    fn a_cluster_endpoint_must_be_an_http_url() {
        for (endpoint, needle) in [
            ("search.example.com:9200", "https://"),
            ("ftp://search.example.com", "https://"),
            ("https://u:p@search.example.com", "credentials"),
            ("https://search.example.com/?x=1", "query"),
        ] {
            let err = SearchSettings::validate(&SearchSettingsInput {
                cluster_endpoint: Some(endpoint.into()),
                ..input()
            })
            .unwrap_err();
            assert_eq!(fields(&err), vec!["ClusterEndpoint"], "{endpoint}");
            assert!(err[0].1.contains(needle), "{endpoint}: {}", err[0].1);
        }
        let ok = SearchSettings::validate(&SearchSettingsInput {
            cluster_endpoint: Some("http://10.0.0.5:9200/opensearch/".into()),
            ..input()
        })
        .unwrap();
        assert_eq!(ok.endpoint, "http://10.0.0.5:9200/opensearch");
    }

    #[test]
    fn a_domain_arn_alone_asks_for_a_cluster_endpoint() {
        let err = SearchSettings::validate(&SearchSettingsInput {
            cluster_endpoint: None,
            domain_arn: Some("arn:aws:es:us-east-1:123456789012:domain/logs".into()),
            ..input()
        })
        .unwrap_err();
        assert_eq!(fields(&err), vec!["ClusterEndpoint"]);
        assert!(err[0].1.contains("DomainARN"), "{}", err[0].1);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = SearchSettings::validate(&SearchSettingsInput {
            cluster_endpoint: None,
            index_name: "Bad Name".into(),
            type_name: Some("_secret".into()),
            retry_duration_in_seconds: Some(7201),
            username: Some("admin".into()),
            ..SearchSettingsInput::default()
        })
        .unwrap_err();
        let mut got = fields(&err);
        got.dedup();
        assert_eq!(
            got,
            vec![
                "ClusterEndpoint",
                "IndexName",
                "TypeName",
                "RetryOptions.DurationInSeconds",
                "password"
            ]
        );
    }

    #[test]
    fn a_type_name_warns_that_opensearch_rejects_it() {
        let s = SearchSettings::validate(&SearchSettingsInput {
            type_name: Some("doc".into()),
            ..input()
        })
        .unwrap();
        assert_eq!(s.type_name.as_deref(), Some("doc"));
        let warnings = s.warnings();
        assert_eq!(fields(&warnings), vec!["TypeName"]);
        assert!(warnings[0].1.contains("OpenSearch"), "{}", warnings[0].1);
    }

    #[test]
    fn basic_auth_is_kept_and_its_password_never_printed() {
        let s = SearchSettings::validate(&SearchSettingsInput {
            username: Some("admin".into()),
            password: Some("hunter2".into()),
            retry_duration_in_seconds: Some(0),
            ..input()
        })
        .unwrap();
        assert_eq!(s.retry_duration, Duration::ZERO);
        assert_eq!(s.basic_auth.as_ref().unwrap().password, "hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
