//! A stream's definition as the console shows it: YAML, in the config file's shape, with
//! every secret of the configuration ([`crate::config::Secret`]) and the credential its
//! destination keeps in its block (the destination's descriptor names it: an HTTP endpoint's
//! `AccessKey`) written as `<redacted>`, and user:password in URLs masked, as
//! DescribeDeliveryStream masks them.

use serde_json::Value;

use crate::config::{redact_url_credentials_in, redacted, DeliveryStreamConfig, REDACTED};
use crate::destination::{descriptor, Kept, Secret};

/// `config` as YAML with its secrets hidden; the error says why it could not be written.
pub fn redacted_yaml(config: &DeliveryStreamConfig) -> Result<String, serde_json::Error> {
    let mut json = redacted(|| serde_json::to_value(config))?;
    let kind = config.destination().kind();
    if let Some(Secret { kept: Kept::InBlock(pointer), .. }) = descriptor(kind).secret {
        for member in kind.config_members() {
            if let Some(value) = json.pointer_mut(&format!("/{member}{pointer}")) {
                *value = Value::String(REDACTED.to_string());
            }
        }
    }
    redact_url_credentials_in(&mut json);
    // YAML of a JSON value cannot fail; keep the JSON if it somehow does.
    Ok(serde_yaml_ng::to_string(&json).unwrap_or_else(|_| json.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_url_passwords_never_show_in_a_definition() {
        let config = crate::config::parse(
            r#"
delivery_streams:
  - DeliveryStreamName: warehouse
    RedshiftDestinationConfiguration:
      ClusterJDBCURL: "jdbc:postgresql://loader:url-s3cr3t@db:5432/d"
      CopyCommand: { DataTableName: t }
      Username: loader
      Password: warehouse-s3cr3t
      S3Configuration: { BucketARN: arn:aws:s3:::b }
  - DeliveryStreamName: http
    HttpEndpointDestinationConfiguration:
      EndpointConfiguration: { Url: "https://collector/in", AccessKey: http-s3cr3t }
      S3Configuration: { BucketARN: arn:aws:s3:::b }
"#,
            std::path::Path::new("/etc/hydrant"),
        )
        .unwrap();
        for stream in &config.delivery_streams {
            let yaml = redacted_yaml(stream).unwrap();
            assert!(!yaml.contains("s3cr3t"), "a secret shows in\n{yaml}");
            assert!(yaml.contains("<redacted>"), "{yaml}");
            assert!(yaml.contains(&stream.delivery_stream_name), "{yaml}");
        }
        // Outside the console, the configuration still writes its secrets back.
        let plain = serde_json::to_string(&config.delivery_streams[0]).unwrap();
        assert!(plain.contains("warehouse-s3cr3t"));
    }
}
