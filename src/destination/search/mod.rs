//! OpenSearch and Elasticsearch: one `_bulk` request of the buffer's records.

mod sink;

pub use sink::SearchSink;

use std::sync::Arc;

use hydrant_destinations::search::{SearchDestination, SearchFlavor, SearchSettings};

use super::{Descriptor, DestinationPlan, Endpoint, Kept, PlanError, S3Output, Secret};
use crate::config::{DestinationKind, SearchConfig};
use crate::delivery::sink::Sink;

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

fn descriptor(elasticsearch: bool) -> &'static Descriptor {
    if elasticsearch {
        &ELASTICSEARCH
    } else {
        &OPENSEARCH
    }
}

/// A checked OpenSearch or Elasticsearch destination.
#[derive(Debug)]
pub(super) struct SearchPlan {
    settings: SearchSettings,
    descriptor: &'static Descriptor,
}

pub(super) fn plan(
    block: &SearchConfig,
    elasticsearch: bool,
    basic_auth: Option<&crate::config::BasicAuthConfig>,
) -> Result<SearchPlan, PlanError> {
    let settings = block.settings(elasticsearch, basic_auth).map_err(PlanError::invalid)?;
    Ok(SearchPlan { settings, descriptor: descriptor(elasticsearch) })
}

impl DestinationPlan for SearchPlan {
    fn descriptor(&self) -> &'static Descriptor {
        self.descriptor
    }

    fn build(&self, output: S3Output) -> Result<Arc<dyn Sink>, PlanError> {
        let destination = SearchDestination::new(self.settings.clone())?;
        Ok(Arc::new(SearchSink { destination, settings: self.settings.clone(), errors: output }))
    }
}

/// The cluster's `ClusterEndpoint`.
pub(super) fn endpoints(block: &SearchConfig, elasticsearch: bool) -> Vec<Endpoint> {
    let member = format!("{}.ClusterEndpoint", descriptor(elasticsearch).kind.config_member());
    let target = super::url_target(block.cluster_endpoint.as_deref().unwrap_or(""));
    target.map(|target| Endpoint { member, target }).into_iter().collect()
}
