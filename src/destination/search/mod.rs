//! OpenSearch and Elasticsearch: one `_bulk` request of the buffer's records.

mod sink;

pub use sink::SearchSink;

use hydrant_destinations::search::SearchFlavor;

use super::{Descriptor, Kept, Secret};
use crate::config::DestinationKind;

/// The cluster's credentials are the stream's `hydrant.basic_auth`.
const BASIC_AUTH: Secret = Secret {
    endpoint: &["/ClusterEndpoint", "/DomainARN"],
    kept: Kept::InStream("/hydrant/basic_auth"),
};

pub const OPENSEARCH: Descriptor = Descriptor {
    kind: DestinationKind::OpenSearch,
    update_members: &["AmazonopensearchserviceDestinationUpdate"],
    description_member: "AmazonopensearchserviceDestinationDescription",
    metric: "amazon_opensearch_service",
    log_name: "search",
    error_output_type: Some(SearchFlavor::OpenSearch.error_output_type()),
    secret: Some(BASIC_AUTH),
    switchable: false,
};

pub const ELASTICSEARCH: Descriptor = Descriptor {
    kind: DestinationKind::Elasticsearch,
    update_members: &["ElasticsearchDestinationUpdate"],
    description_member: "ElasticsearchDestinationDescription",
    // The same metrics as OpenSearch (Firehose's DeliveryToAmazonOpenSearchService.*).
    metric: "amazon_opensearch_service",
    log_name: "search",
    error_output_type: Some(SearchFlavor::Elasticsearch.error_output_type()),
    secret: Some(BASIC_AUTH),
    switchable: false,
};
