//! The Hydrant side of each destination, one folder per kind: its [`Descriptor`] (what the
//! rest of Hydrant needs to know about it: names on the wire, metrics, error output, secrets)
//! and its [`Sink`](crate::delivery::sink::Sink).
//!
//! A destination has three homes, each forced by its layer: its Firehose block in
//! `config/destinations.rs` (the model deserializes without the runtime), its folder here,
//! and its service in the `hydrant-destinations` crate. Code elsewhere asks a descriptor
//! rather than matching on the kind: [`descriptor`] finds it.
//!
//! Each folder also checks its block's own fields and makes the [`DestinationPlan`] the sink is
//! built from ([`check`], for `plan`): the rules of its service, and what it asks of its
//! intermediate bucket.
//!
//! A sink takes one sealed buffer and delivers it, retrying as its destination's policy says,
//! and writes whatever could not be delivered to the error output in S3, so the uploader can
//! move the checkpoint past it. Every sink writes its error documents and staged or backup
//! objects through an [`S3Output`].
//!
//! - [`S3Sink`]: the object itself (retried until it lands: Firehose retries S3 for 24 h,
//!   Hydrant keeps the records in its log until the store takes them);
//! - [`WarehouseSink`]: stage the object in S3, then COPY it (PostgreSQL or Redshift);
//! - [`SearchSink`]: one `_bulk` request of the buffer's records;
//! - [`HttpSink`]: one Firehose HTTP endpoint request of the buffer's records.

mod http;
mod s3;
mod search;
mod warehouse;

pub use self::http::HttpSink;
pub use self::s3::{Put, S3Output, S3Sink};
pub use self::search::SearchSink;
pub use self::warehouse::{Loader, WarehouseSink};

use std::fmt;
use std::sync::Arc;

use hydrant_destinations::DestinationError;

use crate::config::{DeliveryStreamConfig, DestinationBlock, DestinationKind, Issue};
use crate::delivery::sink::{Sink, SinkContext, SinkError};

/// What Hydrant needs to know about a destination kind, outside its own folder.
#[derive(Debug)]
pub struct Descriptor {
    pub kind: DestinationKind,
    /// The `UpdateDestination` members that change it, e.g. `HttpEndpointDestinationUpdate`.
    pub update_members: &'static [&'static str],
    /// Its member of `DescribeDeliveryStream`'s `Destinations[0]`, e.g.
    /// `HttpEndpointDestinationDescription`.
    pub description_member: &'static str,
    /// Its part of metric names (`hydrant_delivery_to_<metric>_records_total`) and the
    /// `destination` label of `hydrant_delivery_data_freshness_seconds`.
    pub metric: &'static str,
    /// `destination=` in log lines.
    pub log_name: &'static str,
    /// `!{firehose:error-output-type}` of the records it refuses, when it refuses records
    /// one by one.
    pub error_output_type: Option<&'static str>,
    /// The credential its block holds, never shown and dropped when its endpoint moves.
    pub secret: Option<Secret>,
    /// Whether `UpdateDestination` may switch a stream to or from it (Firehose refuses it
    /// for search and HTTP endpoint destinations).
    pub switchable: bool,
}

/// A credential of a destination block and the members that decide where it is sent.
#[derive(Debug, Clone, Copy)]
pub struct Secret {
    /// JSON pointers into the block: the members that say where the secret goes.
    pub endpoint: &'static [&'static str],
    pub kept: Kept,
}

/// Where a destination's secret is kept.
#[derive(Debug, Clone, Copy)]
pub enum Kept {
    /// In the destination block (a JSON pointer into it): an update can send it again.
    InBlock(&'static str),
    /// Elsewhere in the stream (a JSON pointer into the stream): an update cannot send it.
    InStream(&'static str),
}

/// Every destination Hydrant delivers to, in Firehose's order.
pub const ALL: [&Descriptor; 5] = [
    &s3::DESCRIPTOR,
    &warehouse::DESCRIPTOR,
    &search::OPENSEARCH,
    &search::ELASTICSEARCH,
    &http::DESCRIPTOR,
];

impl Descriptor {
    /// Removes the secret its block keeps from `block` (the block's Firehose JSON), for
    /// answers that must never echo it.
    pub fn hide_secret(&self, block: &mut serde_json::Value) {
        if let Some(Secret { kept: Kept::InBlock(pointer), .. }) = self.secret {
            remove_at(block, pointer);
        }
    }
}

/// A destination's checked settings: what the pipeline builds its sink from.
pub trait DestinationPlan: Send + Sync + fmt::Debug {
    fn descriptor(&self) -> &'static Descriptor;

    /// The sink, with its clients; `output` is the stream's S3 side (the destination itself,
    /// the intermediate bucket, or where failed records go).
    fn build(&self, output: S3Output) -> Result<Arc<dyn Sink>, PlanError>;
}

/// Why a destination's sink could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Its client cannot be made.
    #[error("{0}")]
    Client(#[from] DestinationError),
    /// A warehouse's `RoleARN` cannot be used in `CREDENTIALS`.
    #[error("{0}")]
    Credentials(String),
}

/// Checks the own fields of `stream`'s destination block, all problems at once, and returns
/// its plan when they are valid; `path` is the stream's, `source_arn` its ARN. The block's
/// `S3Configuration` has the S3 rules and an S3 block is all S3 rules: `plan` checks those.
pub fn check(
    stream: &DeliveryStreamConfig,
    source_arn: &str,
    path: &str,
    issues: &mut Vec<Issue>,
) -> Option<Box<dyn DestinationPlan>> {
    let block = stream.destination();
    let at = format!("{path}.{}", block.kind().config_member());
    Some(match block {
        DestinationBlock::S3(_) => Box::new(s3::S3Plan),
        DestinationBlock::Redshift(r) => Box::new(warehouse::check(r, &at, issues)?),
        DestinationBlock::Search { config, elasticsearch } => {
            let basic_auth = stream.hydrant.basic_auth.as_ref();
            Box::new(search::check(config, elasticsearch, basic_auth, path, &at, issues)?)
        }
        DestinationBlock::Http(h) => Box::new(http::check(h, source_arn, &at, issues)?),
    })
}

/// A place a destination connects to, and the member of its block that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The member's path in the stream, e.g.
    /// `HttpEndpointDestinationConfiguration.EndpointConfiguration.Url`.
    pub member: String,
    pub target: Target,
}

/// Where a destination connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Tcp { host: String, port: u16 },
    Unix,
}

/// Every place `stream`'s destination connects to. Values that do not parse are left out:
/// validation reports them, and nothing connects to them.
pub fn endpoints(stream: &DeliveryStreamConfig) -> Vec<Endpoint> {
    match stream.destination() {
        DestinationBlock::S3(_) => Vec::new(),
        DestinationBlock::Redshift(r) => warehouse::endpoints(r),
        DestinationBlock::Search { config, elasticsearch } => {
            search::endpoints(config, elasticsearch)
        }
        DestinationBlock::Http(h) => http::endpoints(h),
    }
}

/// The host and port of a URL, if it parses.
fn url_target(text: &str) -> Option<Target> {
    let url = reqwest::Url::parse(text.trim()).ok()?;
    // Normalised by the parser: lowercase, IPv4 dotted, IPv6 in brackets.
    let host = url.host_str()?.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = url.port_or_known_default()?;
    Some(Target::Tcp { host, port })
}

/// Records an attempt at `descriptor`'s destination that failed and will be retried: its
/// failure counter (`hydrant_delivery_to_<metric>_failures_total{code}`) and the shard's
/// health (`/readyz`, `hydrant_delivery_blocked_seconds`). The sink logs it with what it knows.
fn attempt_failed(ctx: &SinkContext, descriptor: &Descriptor, error: &DestinationError) {
    ctx.metrics.destination_failed(&ctx.stream, descriptor.metric, &error.code);
    ctx.health.attempt_failed(&ctx.stream, ctx.shard, error);
}

/// A destination's failure that its sink can neither retry nor route to the error output
/// (delivery knows no destination, so it holds the error as its source).
impl From<DestinationError> for SinkError {
    fn from(error: DestinationError) -> Self {
        SinkError::Destination(Box::new(error))
    }
}

/// Removes the member a JSON pointer names, if it is there.
pub fn remove_at(value: &mut serde_json::Value, pointer: &str) {
    if let Some((parent, key)) = pointer.rsplit_once('/') {
        if let Some(serde_json::Value::Object(parent)) = value.pointer_mut(parent) {
            parent.remove(key);
        }
    }
}

/// The descriptor of `kind`.
pub fn descriptor(kind: DestinationKind) -> &'static Descriptor {
    ALL.into_iter().find(|d| d.kind == kind).expect("every kind has a descriptor")
}

/// The destination a stream member configures (`HttpEndpointDestinationConfiguration`,
/// also the deprecated `S3DestinationConfiguration`).
pub fn by_config_member(member: &str) -> Option<&'static Descriptor> {
    ALL.into_iter().find(|d| d.kind.config_members().contains(&member))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_descriptor() {
        for kind in DestinationKind::ALL {
            assert_eq!(ALL.iter().filter(|d| d.kind == kind).count(), 1, "{kind:?}");
            assert_eq!(descriptor(kind).kind, kind);
        }
    }

    #[test]
    fn members_name_one_destination_each() {
        let mut members: Vec<&str> = ALL
            .iter()
            .flat_map(|d| d.update_members.iter().chain(d.kind.config_members()))
            .chain(ALL.iter().map(|d| &d.description_member))
            .copied()
            .collect();
        let all = members.len();
        members.sort();
        members.dedup();
        assert_eq!(members.len(), all, "a member names two destinations");
        assert_eq!(
            by_config_member("S3DestinationConfiguration").map(|d| d.kind),
            Some(DestinationKind::S3)
        );
        assert!(by_config_member("SplunkDestinationConfiguration").is_none());
    }

    #[test]
    fn a_destination_error_reaches_the_worker_as_its_source() {
        let error = DestinationError::permanent("Redshift.DataLoadFailed", "not valid GZIP");
        let e = SinkError::from(error.clone());
        assert!(matches!(e, SinkError::Destination(_)), "{e:?}");
        // The log line reads as the destination's error did.
        assert_eq!(e.to_string(), error.to_string());
        let source = std::error::Error::source(&e).expect("carried");
        let source = source.downcast_ref::<DestinationError>().expect("the destination's own type");
        assert_eq!(source.code, "Redshift.DataLoadFailed");
    }
}
