//! OpenSearch and Elasticsearch: one `_bulk` request of the buffer's records.

mod sink;

pub use sink::SearchSink;

use std::sync::Arc;

use hydrant_destinations::search::{SearchDestination, SearchFlavor, SearchSettings};

use super::{Descriptor, DestinationPlan, Endpoint, Kept, PlanError, S3Output, Secret};
use crate::config::{BasicAuthConfig, BufferingHints, DestinationKind, Issue, SearchConfig};
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

/// Checks the fields of the block at `block` (its path) other than its `S3Configuration`
/// (which has the S3 rules, checked by `plan`), with the stream's `hydrant.basic_auth`;
/// `path` is the stream's. The plan when its settings are valid.
pub(super) fn check(
    config: &SearchConfig,
    elasticsearch: bool,
    basic_auth: Option<&BasicAuthConfig>,
    path: &str,
    block: &str,
    issues: &mut Vec<Issue>,
) -> Option<SearchPlan> {
    let plan = match config.settings(elasticsearch, basic_auth) {
        Ok(settings) => Some(SearchPlan { settings, descriptor: descriptor(elasticsearch) }),
        Err(errors) => {
            for (field, message) in errors {
                let at = match field {
                    "username" | "password" => format!("{path}.hydrant.basic_auth.{field}"),
                    f => format!("{block}.{f}"),
                };
                issues.push(Issue::new(at, message));
            }
            None
        }
    };
    check_hints(config.buffering_hints, block, issues);
    plan
}

/// The block's own `BufferingHints`: 1-100 MiB (search's range, not S3's), 0-900 s.
fn check_hints(hints: Option<BufferingHints>, path: &str, issues: &mut Vec<Issue>) {
    const SIZES: std::ops::RangeInclusive<u32> = 1..=100;
    const INTERVALS: std::ops::RangeInclusive<u32> = 0..=900;
    let Some(hints) = hints else { return };
    if let Some(size) = hints.size_in_mbs {
        if !SIZES.contains(&size) {
            issues.push(Issue::new(
                format!("{path}.BufferingHints.SizeInMBs"),
                format!("must be {}..={} MiB here, got {size}", SIZES.start(), SIZES.end()),
            ));
        }
    }
    if let Some(interval) = hints.interval_in_seconds {
        if !INTERVALS.contains(&interval) {
            issues.push(Issue::new(
                format!("{path}.BufferingHints.IntervalInSeconds"),
                format!("must be 0..=900 seconds, got {interval}"),
            ));
        }
    }
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
