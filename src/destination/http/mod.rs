//! A Firehose HTTP endpoint: one request of the buffer's records.

mod sink;

pub use sink::HttpSink;

use std::sync::Arc;

use hydrant_destinations::http::{HttpDestination, HttpEndpointSettings};

use super::{Descriptor, DestinationPlan, Endpoint, Kept, PlanError, S3Output, Secret};
use crate::config::{DestinationKind, HttpEndpointConfig, Issue};
use crate::delivery::sink::Sink;

pub const DESCRIPTOR: Descriptor = Descriptor {
    kind: DestinationKind::Http,
    update_members: &["HttpEndpointDestinationUpdate"],
    description_member: "HttpEndpointDestinationDescription",
    metric: "http_endpoint",
    log_name: "http",
    error_output_type: Some(hydrant_destinations::http::ERROR_OUTPUT_TYPE),
    secret: Some(Secret {
        endpoint: &["/EndpointConfiguration/Url"],
        kept: Kept::InBlock("/EndpointConfiguration/AccessKey"),
    }),
    switchable: false,
};

/// A checked HTTP endpoint destination.
#[derive(Debug)]
pub(super) struct HttpPlan {
    settings: HttpEndpointSettings,
    source_arn: String,
}

/// Checks the fields of the block at `block` (its path) of the stream `source_arn`, other than
/// its `S3Configuration` (which has the S3 rules, checked by `plan`); the plan when its
/// settings are valid.
pub(super) fn check(
    h: &HttpEndpointConfig,
    source_arn: &str,
    block: &str,
    issues: &mut Vec<Issue>,
) -> Option<HttpPlan> {
    match h.settings(source_arn) {
        Ok(settings) => Some(HttpPlan { settings, source_arn: source_arn.to_owned() }),
        Err(errors) => {
            for (field, message) in errors {
                issues.push(Issue::new(format!("{block}.{field}"), message));
            }
            None
        }
    }
}

impl DestinationPlan for HttpPlan {
    fn descriptor(&self) -> &'static Descriptor {
        &DESCRIPTOR
    }

    fn build(&self, output: S3Output) -> Result<Arc<dyn Sink>, PlanError> {
        let destination = HttpDestination::new(&self.settings)?;
        Ok(Arc::new(HttpSink { destination, source_arn: self.source_arn.clone(), errors: output }))
    }
}

/// The endpoint's `Url`.
pub(super) fn endpoints(block: &HttpEndpointConfig) -> Vec<Endpoint> {
    let member = format!("{}.EndpointConfiguration.Url", DESCRIPTOR.kind.config_member());
    let target = super::url_target(&block.endpoint_configuration.url);
    target.map(|target| Endpoint { member, target }).into_iter().collect()
}
