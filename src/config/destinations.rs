//! The non-S3 destination blocks of a delivery stream, in Firehose's `CreateDeliveryStream`
//! shape: `RedshiftDestinationConfiguration`, `AmazonopensearchserviceDestinationConfiguration`
//! (and the legacy `ElasticsearchDestinationConfiguration`) and
//! `HttpEndpointDestinationConfiguration`.
//!
//! Each one carries an `S3Configuration`: the intermediate bucket a warehouse COPY loads from,
//! or where search and HTTP deliveries write failed (or all) records. The delivery pipeline
//! works on that S3 side ([`DeliveryStreamConfig::s3`]) and hands sealed buffers to the
//! destination; the destination-specific fields are checked by the destination modules of
//! `hydrant-destinations`, with their field names prefixed by the path here.

use hydrant_destinations::http::{EndpointConfiguration, HttpS3BackupMode, RequestConfiguration};
use hydrant_destinations::redact::redact_url_credentials;
use hydrant_destinations::search::{DocumentIdOptions, IndexRotationPeriod};
use hydrant_destinations::warehouse::CopyCommand;
use serde::{Deserialize, Serialize};

use super::model::{
    BufferingHints, CloudWatchLoggingOptions, ExtendedS3Config, ProcessingConfig, RetryOptions,
    S3BackupMode, S3DestinationConfig,
};

/// `RedshiftDestinationConfiguration`: stage records in S3, then `COPY` them into a table of a
/// PostgreSQL-compatible warehouse (PostgreSQL itself with `COPY ... FROM STDIN`, or Redshift
/// with `COPY ... FROM 's3://...' MANIFEST`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedshiftConfig {
    /// IAM role; for Redshift targets it becomes `CREDENTIALS 'aws_iam_role=<RoleARN>'`.
    #[serde(rename = "RoleARN", default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// `jdbc:postgresql://host:port/db`, `postgres://...` (PostgreSQL COPY FROM STDIN) or
    /// `jdbc:redshift://host:port/db` (Redshift COPY from a manifest).
    #[serde(rename = "ClusterJDBCURL")]
    pub cluster_jdbc_url: String,
    /// Table, optional columns, and Redshift `CopyOptions`.
    #[serde(rename = "CopyCommand")]
    pub copy_command: CopyCommand,
    /// Database user (give it INSERT rights only).
    #[serde(rename = "Username")]
    pub username: String,
    /// Database password; write `${ENV_VAR}`, never the secret itself. Never echoed back.
    #[serde(rename = "Password", default)]
    pub password: String,
    /// How long a failing COPY is retried before the batch is skipped and a manifest of its
    /// staged objects is written under `errors/`. Default 3600 s.
    #[serde(rename = "RetryOptions", default, skip_serializing_if = "Option::is_none")]
    pub retry_options: Option<RetryOptions>,
    /// The intermediate bucket: staged objects (UNCOMPRESSED or GZIP, no prefix expressions),
    /// with its `BufferingHints` deciding when a batch is staged and loaded.
    #[serde(rename = "S3Configuration")]
    pub s3_configuration: S3DestinationConfig,
    /// Record processing before staging.
    #[serde(rename = "ProcessingConfiguration", default, skip_serializing_if = "Option::is_none")]
    pub processing_configuration: Option<ProcessingConfig>,
    /// `Enabled`: also back up the source records to `S3BackupConfiguration`.
    #[serde(rename = "S3BackupMode", default)]
    pub s3_backup_mode: S3BackupMode,
    /// Where source records are backed up.
    #[serde(rename = "S3BackupConfiguration", default, skip_serializing_if = "Option::is_none")]
    pub s3_backup_configuration: Option<S3DestinationConfig>,
    /// Accepted and ignored: Hydrant logs to its own output.
    #[serde(rename = "CloudWatchLoggingOptions", default, skip_serializing_if = "Option::is_none")]
    pub cloud_watch_logging_options: Option<CloudWatchLoggingOptions>,
}

impl std::fmt::Debug for RedshiftConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedshiftConfig")
            .field("cluster_jdbc_url", &redact_url_credentials(&self.cluster_jdbc_url))
            .field("copy_command", &self.copy_command)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("s3_configuration", &self.s3_configuration)
            .finish_non_exhaustive()
    }
}

/// `S3BackupMode` of a search destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SearchS3BackupMode {
    /// Only documents that could not be indexed go to S3 (default).
    #[default]
    FailedDocumentsOnly,
    /// Every record also goes to S3.
    AllDocuments,
}

/// `AmazonopensearchserviceDestinationConfiguration` / `ElasticsearchDestinationConfiguration`:
/// one `_bulk` request per buffer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchConfig {
    /// Accepted, not used.
    #[serde(rename = "RoleARN", default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// An AWS domain ARN; Hydrant cannot look it up: give `ClusterEndpoint` instead.
    #[serde(rename = "DomainARN", default, skip_serializing_if = "Option::is_none")]
    pub domain_arn: Option<String>,
    /// `https://host:port` (or `http://` on a private network).
    #[serde(rename = "ClusterEndpoint", default, skip_serializing_if = "Option::is_none")]
    pub cluster_endpoint: Option<String>,
    /// Base index name; the rotation suffix is appended.
    #[serde(rename = "IndexName")]
    pub index_name: String,
    /// Elasticsearch 6.x document type; leave out for 7+ and OpenSearch.
    #[serde(rename = "TypeName", default, skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
    /// `NoRotation`, `OneHour`, `OneDay` (default), `OneWeek` or `OneMonth`.
    #[serde(rename = "IndexRotationPeriod", default, skip_serializing_if = "Option::is_none")]
    pub index_rotation_period: Option<IndexRotationPeriod>,
    /// 1-100 MiB, 0-900 s. Default 5 MiB / 300 s.
    #[serde(rename = "BufferingHints", default, skip_serializing_if = "Option::is_none")]
    pub buffering_hints: Option<BufferingHints>,
    /// How long failed documents are retried. Default 300 s.
    #[serde(rename = "RetryOptions", default, skip_serializing_if = "Option::is_none")]
    pub retry_options: Option<RetryOptions>,
    /// `FailedDocumentsOnly` (default) or `AllDocuments`.
    #[serde(rename = "S3BackupMode", default)]
    pub s3_backup_mode: SearchS3BackupMode,
    /// Where failed (or all) documents are written.
    #[serde(rename = "S3Configuration")]
    pub s3_configuration: S3DestinationConfig,
    /// Record processing before indexing.
    #[serde(rename = "ProcessingConfiguration", default, skip_serializing_if = "Option::is_none")]
    pub processing_configuration: Option<ProcessingConfig>,
    /// Accepted and ignored.
    #[serde(rename = "CloudWatchLoggingOptions", default, skip_serializing_if = "Option::is_none")]
    pub cloud_watch_logging_options: Option<CloudWatchLoggingOptions>,
    /// Accepted and ignored (Hydrant reaches the cluster directly).
    #[serde(rename = "VpcConfiguration", default, skip_serializing_if = "Option::is_none")]
    pub vpc_configuration: Option<serde_json::Value>,
    /// `FIREHOSE_DEFAULT` (ids derived from the record's position: replays overwrite) or
    /// `NO_DOCUMENT_ID` (the cluster picks ids: replays can duplicate).
    #[serde(rename = "DocumentIdOptions", default, skip_serializing_if = "Option::is_none")]
    pub document_id_options: Option<DocumentIdOptions>,
}

/// `HttpEndpointDestinationConfiguration`: Firehose's HTTP endpoint delivery format.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpEndpointConfig {
    /// `Url`, `Name`, `AccessKey` (write `${ENV_VAR}`; never echoed back).
    #[serde(rename = "EndpointConfiguration")]
    pub endpoint_configuration: EndpointConfiguration,
    /// `ContentEncoding` (`NONE` | `GZIP`) and `CommonAttributes`.
    #[serde(rename = "RequestConfiguration", default, skip_serializing_if = "Option::is_none")]
    pub request_configuration: Option<RequestConfiguration>,
    /// 1-64 MiB, 0-900 s. Default 5 MiB / 300 s.
    #[serde(rename = "BufferingHints", default, skip_serializing_if = "Option::is_none")]
    pub buffering_hints: Option<BufferingHints>,
    /// How long failed requests are retried. Default 300 s.
    #[serde(rename = "RetryOptions", default, skip_serializing_if = "Option::is_none")]
    pub retry_options: Option<RetryOptions>,
    /// Accepted, not used.
    #[serde(rename = "RoleARN", default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// `FailedDataOnly` (default) or `AllData`.
    #[serde(rename = "S3BackupMode", default)]
    pub s3_backup_mode: HttpS3BackupMode,
    /// Where failed (or all) records are written.
    #[serde(rename = "S3Configuration")]
    pub s3_configuration: S3DestinationConfig,
    /// Record processing before delivery.
    #[serde(rename = "ProcessingConfiguration", default, skip_serializing_if = "Option::is_none")]
    pub processing_configuration: Option<ProcessingConfig>,
    /// Accepted and ignored.
    #[serde(rename = "CloudWatchLoggingOptions", default, skip_serializing_if = "Option::is_none")]
    pub cloud_watch_logging_options: Option<CloudWatchLoggingOptions>,
}

impl std::fmt::Debug for HttpEndpointConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpEndpointConfig")
            .field("url", &redact_url_credentials(&self.endpoint_configuration.url))
            .field("s3_configuration", &self.s3_configuration)
            .finish_non_exhaustive()
    }
}

/// Which destination a stream delivers to.
#[derive(Debug, Clone, Copy)]
pub enum DestinationBlock<'a> {
    S3,
    Redshift(&'a RedshiftConfig),
    /// `elasticsearch` is true for the legacy `ElasticsearchDestinationConfiguration`.
    Search {
        config: &'a SearchConfig,
        elasticsearch: bool,
    },
    Http(&'a HttpEndpointConfig),
}

/// The S3 side of a non-S3 destination, in the form the delivery pipeline works on: its
/// `S3Configuration` with the destination's processing and buffering.
pub fn s3_view(
    s3: &S3DestinationConfig,
    processing: Option<&ProcessingConfig>,
    buffering: Option<BufferingHints>,
) -> ExtendedS3Config {
    let mut view: ExtendedS3Config = s3.clone().into();
    view.processing_configuration = processing.cloned();
    if let Some(hints) = buffering {
        view.buffering_hints = Some(hints);
    }
    view
}

impl RedshiftConfig {
    /// The checked warehouse settings (errors name Firehose fields of this block).
    pub fn settings(
        &self,
    ) -> Result<hydrant_destinations::warehouse::WarehouseSettings, Vec<(&'static str, String)>>
    {
        hydrant_destinations::warehouse::WarehouseSettings::from_firehose(
            &self.cluster_jdbc_url,
            &self.copy_command,
            &self.username,
            &self.password,
            self.retry_options.and_then(|o| o.duration_in_seconds),
        )
    }
}

impl SearchConfig {
    /// The checked search settings; `username` / `password` errors concern
    /// `hydrant.basic_auth`, the others this block's Firehose fields.
    pub fn settings(
        &self,
        elasticsearch: bool,
        basic_auth: Option<&super::model::BasicAuthConfig>,
    ) -> Result<hydrant_destinations::search::SearchSettings, Vec<(&'static str, String)>> {
        use hydrant_destinations::search::{SearchFlavor, SearchSettings, SearchSettingsInput};
        SearchSettings::validate(&SearchSettingsInput {
            flavor: if elasticsearch {
                SearchFlavor::Elasticsearch
            } else {
                SearchFlavor::OpenSearch
            },
            cluster_endpoint: self.cluster_endpoint.clone(),
            domain_arn: self.domain_arn.clone(),
            index_name: self.index_name.clone(),
            type_name: self.type_name.clone(),
            index_rotation_period: self.index_rotation_period,
            document_id_options: self.document_id_options,
            retry_duration_in_seconds: self.retry_options.and_then(|o| o.duration_in_seconds),
            username: basic_auth.map(|a| a.username.clone()),
            password: basic_auth.map(|a| a.password.clone()),
            request_timeout: None,
        })
    }
}

impl HttpEndpointConfig {
    /// The checked endpoint settings (errors name fields relative to this block).
    pub fn settings(
        &self,
        source_arn: &str,
    ) -> Result<hydrant_destinations::http::HttpEndpointSettings, Vec<(String, String)>> {
        let hints = self.buffering_hints.unwrap_or_default();
        hydrant_destinations::http::HttpEndpointSettings::validate(
            hydrant_destinations::http::HttpEndpointInput {
                endpoint: &self.endpoint_configuration,
                request: self.request_configuration.as_ref(),
                retry_duration_in_seconds: self.retry_options.and_then(|o| o.duration_in_seconds),
                buffering_size_in_mbs: hints.size_in_mbs,
                buffering_interval_in_seconds: hints.interval_in_seconds,
                source_arn,
            },
        )
    }
}
