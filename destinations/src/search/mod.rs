//! OpenSearch and Elasticsearch through the `_bulk` API (Firehose's
//! `AmazonopensearchserviceDestinationConfiguration` and `ElasticsearchDestinationConfiguration`).
//!
//! The delivery layer turns a batch of records into a [`BulkRequest`] with
//! [`SearchSettings::document`] (rotated index name, stable document id), delivers it with
//! [`crate::deliver_with_retry`], and writes a [`FailedDocument`] line to the error output for
//! every document that is rejected or still undelivered when the retry duration runs out.
//! See `docs/destinations/search.md`.

mod config;
mod failed;
mod request_builder;
mod retry;
mod service;

pub use config::{
    BasicAuth, DefaultDocumentIdFormat, DocumentIdOptions, FieldErrors, IndexRotationPeriod,
    SearchFlavor, SearchSettings, SearchSettingsInput, DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_RETRY_SECONDS, MAX_RETRY_SECONDS,
};
pub use failed::{FailedDocument, Failure};
pub use request_builder::{document_id, index_name, BulkRequest, Document, RecordPosition};
pub use service::SearchDestination;
