//! The destination blocks other than S3 (`RedshiftDestinationConfiguration`, the search
//! blocks, `HttpEndpointDestinationConfiguration`): their own fields, which each
//! destination's folder checks ([`destination::check_fields`]), their `S3Configuration`, which
//! has the S3 rules, and what the stream's `hydrant:` block may add to them.

use super::s3::check_s3_destination;
use crate::config::{Config, DeliveryStreamConfig, DestinationKind, Issue};
use crate::destination;
use crate::names::arn_of;

/// Checks `stream`'s destination block when it is not S3 (an S3 block is checked with the
/// stream's S3 blocks); `path` is the stream's.
pub(super) fn check(
    config: &Config,
    stream: &DeliveryStreamConfig,
    path: &str,
    issues: &mut Vec<Issue>,
) {
    let block = stream.destination();
    let kind = block.kind();
    if kind == DestinationKind::S3 {
        return;
    }
    let source_arn = arn_of(&config.region, &config.account_id, &stream.delivery_stream_name);
    destination::check_fields(stream, &source_arn, path, issues);
    if let Some(s3) = block.s3_configuration() {
        let at = format!("{path}.{}.S3Configuration", kind.config_member());
        check_s3_destination(s3, &at, issues);
    }
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
}
