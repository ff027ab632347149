//! A Firehose HTTP endpoint: one request of the buffer's records.

mod sink;

pub use sink::HttpSink;

use super::{Descriptor, Kept, Secret};
use crate::config::DestinationKind;

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
