//! A stream's destination block: its own fields, which the destination's folder checks
//! ([`destination::check`], which also makes the destination's plan), and for a block other
//! than S3 (`RedshiftDestinationConfiguration`, the search blocks,
//! `HttpEndpointDestinationConfiguration`) its `S3Configuration`, which has the S3 rules, and
//! what the stream's `hydrant:` block may add to it.

use super::s3::check_s3_destination;
use crate::config::{Config, DeliveryStreamConfig, DestinationKind, Issue};
use crate::destination::{self, DestinationPlan};
use crate::names::arn_of;
use crate::naming::CheckedPrefixes;

/// Checks `stream`'s destination block (an S3 block is checked with the stream's S3 blocks);
/// `path` is the stream's. Returns the destination's plan, and the
/// prefixes of its `S3Configuration` (`None` for S3), when they are valid.
pub(super) fn check(
    config: &Config,
    stream: &DeliveryStreamConfig,
    path: &str,
    issues: &mut Vec<Issue>,
) -> (Option<Box<dyn DestinationPlan>>, Option<CheckedPrefixes>) {
    let block = stream.destination();
    let kind = block.kind();
    let source_arn = arn_of(&config.region, &config.account_id, &stream.delivery_stream_name);
    let plan = destination::check(stream, &source_arn, path, issues);
    if kind == DestinationKind::S3 {
        return (plan, None);
    }
    let prefixes = block.s3_configuration().and_then(|s3| {
        let at = format!("{path}.{}.S3Configuration", kind.config_member());
        check_s3_destination(s3, &at, issues)
    });
    if stream.hydrant.encryption.is_some() && kind == DestinationKind::Redshift {
        issues.push(Issue::new(
            format!("{path}.hydrant.encryption"),
            "client-side object encryption cannot be used with a warehouse destination (the \
             database must read the staged objects); remove it",
        ));
    }
    let search = matches!(kind, DestinationKind::OpenSearch | DestinationKind::Elasticsearch);
    if stream.hydrant.basic_auth.is_some() && !search {
        issues.push(Issue::new(
            format!("{path}.hydrant.basic_auth"),
            "is only used by search destinations; remove it",
        ));
    }
    (plan, prefixes)
}
