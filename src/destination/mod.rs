//! The Hydrant side of each destination, one folder per kind: its [`Descriptor`] (what the
//! rest of Hydrant needs to know about it: names on the wire, metrics, error output, secrets)
//! and its [`Sink`](crate::delivery::sink::Sink).
//!
//! A destination has three homes, each forced by its layer: its Firehose block in
//! `config/destinations.rs` (the model deserializes without the runtime), its folder here,
//! and its service in the `hydrant-destinations` crate. Code elsewhere asks a descriptor
//! rather than matching on the kind: [`descriptor`] finds it.
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

use hydrant_destinations::DestinationError;

use crate::config::DestinationKind;
use crate::delivery::sink::SinkContext;

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

/// Records an attempt at `descriptor`'s destination that failed and will be retried: its
/// failure counter (`hydrant_delivery_to_<metric>_failures_total{code}`) and the shard's
/// health (`/readyz`, `hydrant_delivery_blocked_seconds`). The sink logs it with what it knows.
fn attempt_failed(ctx: &SinkContext, descriptor: &Descriptor, error: &DestinationError) {
    ctx.metrics.destination_failed(&ctx.stream, descriptor.metric, &error.code);
    ctx.health.attempt_failed(&ctx.stream, ctx.shard, error);
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
}
