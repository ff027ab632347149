//! What a delivery stream defined through the API may name, beyond what `hydrant validate`
//! checks for the config file. The operator owns the config file and the machine; an API
//! client owns neither, so its streams:
//!
//! - never make the server open a file of the client's choosing: a `LambdaArn` must be an
//!   entry of `functions:` (no `file://` URL, no path), and `hydrant.encryption` (key files)
//!   and `hydrant.schema.file` are refused;
//! - use only the object stores listed in `api_streams.object_stores` (default: `default`);
//! - deliver only to the hosts listed in `api_streams.hosts` (default: none): the host of an
//!   HTTP endpoint `Url`, a search `ClusterEndpoint`, or a warehouse `ClusterJDBCURL` (every
//!   host and `hostaddr` it names; never a Unix socket).
//!
//! [`check`] runs before any other check of an API stream: at CreateDeliveryStream, on the
//! merged configuration of an UpdateDestination, when `api-streams/` is re-opened at start and
//! at every reload (so narrowing `api_streams` is refused while a stream still needs more).
//! Nothing of a refused stream is resolved or opened, and the messages name the member, the
//! setting that decides, and never anything of the server's file system.

use super::processing_block;
use crate::config::{Config, DeliveryStreamConfig, Issue, ProcessorParameterName, ProcessorType};
use crate::destination::{self, Endpoint, Target};
use crate::wasm_host::{resolve_module, DefinedBy};

/// Every problem of `stream` as an API client's definition, with paths relative to the stream
/// (`hydrant.object_store`, `HttpEndpointDestinationConfiguration.EndpointConfiguration.Url`).
pub fn check(server: &Config, stream: &DeliveryStreamConfig) -> Vec<Issue> {
    let mut issues = Vec::new();
    check_files(server, stream, &mut issues);
    check_store(server, stream, &mut issues);
    check_hosts(server, stream, &mut issues);
    issues
}

/// Nothing that names a file on the server.
fn check_files(server: &Config, stream: &DeliveryStreamConfig, issues: &mut Vec<Issue>) {
    if stream.hydrant.encryption.is_some() {
        issues.push(Issue::new(
            "hydrant.encryption",
            "names key files on the server, so it can only be set in the config file; define \
             this stream there, or leave hydrant.encryption out (the server's storage.encryption \
             keys encrypt the log of an API stream: DeliveryStreamEncryptionConfigurationInput)",
        ));
    }
    if let Some(crate::codec::parquet::SchemaSource::File { .. }) = &stream.hydrant.schema {
        issues.push(Issue::new(
            "hydrant.schema.file",
            "names a file on the server, so it can only be set in the config file; give the \
             columns inline with hydrant.schema.columns",
        ));
    }
    let Some((block, Some(processing))) = processing_block(stream) else { return };
    for (i, processor) in processing.processors.iter().enumerate() {
        if processor.processor_type != ProcessorType::Lambda {
            continue;
        }
        for (j, parameter) in processor.parameters.iter().enumerate() {
            if parameter.parameter_name != ProcessorParameterName::LambdaArn {
                continue;
            }
            let resolved = resolve_module(
                &parameter.parameter_value,
                &server.functions,
                &server.base_dir,
                DefinedBy::Api,
            );
            if let Err(message) = resolved {
                issues.push(Issue::new(
                    format!(
                        "{block}.ProcessingConfiguration.Processors[{i}].Parameters[{j}].ParameterValue"
                    ),
                    message.to_string(),
                ));
            }
        }
    }
}

/// `hydrant.object_store` is one of `api_streams.object_stores`.
fn check_store(server: &Config, stream: &DeliveryStreamConfig, issues: &mut Vec<Issue>) {
    let store = &stream.hydrant.object_store;
    let allowed = &server.api_streams.object_stores;
    if !server.api_streams.allows_store(store) {
        issues.push(Issue::new(
            "hydrant.object_store",
            format!(
                "object store {store:?} is not open to streams created through the API; use {} \
                 or ask the operator to add it to api_streams.object_stores in the config file",
                if allowed.is_empty() { "none".to_owned() } else { allowed.join(", ") }
            ),
        ));
    }
}

/// Every host the destination connects to is in `api_streams.hosts`.
fn check_hosts(server: &Config, stream: &DeliveryStreamConfig, issues: &mut Vec<Issue>) {
    for Endpoint { member, target } in destination::endpoints(stream) {
        let message = match target {
            Target::Unix => "names a Unix socket; a stream created through the API connects over \
                             TCP only, to a host listed in api_streams.hosts"
                .to_owned(),
            Target::Tcp { host, port } if !server.api_streams.allows_host(&host, port) => {
                let entry = if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                };
                format!(
                    "host {host:?} (port {port}) is not open to streams created through the API; \
                     the operator can allow it in the config file with api_streams.hosts (e.g. \
                     hosts: [\"{entry}\"])"
                )
            }
            Target::Tcp { .. } => continue,
        };
        issues.push(Issue::new(member, message));
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;

    fn server(extra: &str) -> Config {
        let yaml = format!(
            "object_stores:\n  default: {{ type: local, root: /srv/b }}\n  other: {{ type: local, root: /srv/o }}\n\
             functions:\n  \"arn:aws:lambda:us-east-1:123456789012:function:redact\": t/redact.wasm\n{extra}"
        );
        crate::plan::parse(&yaml, Path::new("/etc/hydrant")).unwrap().into_config()
    }

    fn stream(value: serde_json::Value) -> DeliveryStreamConfig {
        serde_json::from_value(value).unwrap()
    }

    fn s3_with_lambda(arn: &str) -> DeliveryStreamConfig {
        stream(json!({
            "DeliveryStreamName": "s",
            "ExtendedS3DestinationConfiguration": {
                "BucketARN": "arn:aws:s3:::raw",
                "ProcessingConfiguration": {"Enabled": false, "Processors": [
                    {"Type": "AppendDelimiterToRecord"},
                    {"Type": "Lambda", "Parameters": [
                        {"ParameterName": "NumberOfRetries", "ParameterValue": "1"},
                        {"ParameterName": "LambdaArn", "ParameterValue": arn}]}]}
            }
        }))
    }

    fn http(url: &str) -> DeliveryStreamConfig {
        stream(json!({
            "DeliveryStreamName": "h",
            "HttpEndpointDestinationConfiguration": {
                "EndpointConfiguration": {"Url": url, "AccessKey": "k"},
                "S3Configuration": {"BucketARN": "arn:aws:s3:::raw"}
            }
        }))
    }

    fn warehouse(url: &str) -> DeliveryStreamConfig {
        stream(json!({
            "DeliveryStreamName": "w",
            "RedshiftDestinationConfiguration": {
                "ClusterJDBCURL": url, "CopyCommand": {"DataTableName": "t"},
                "Username": "u", "Password": "p",
                "S3Configuration": {"BucketARN": "arn:aws:s3:::raw"}
            }
        }))
    }

    fn search(endpoint: &str) -> DeliveryStreamConfig {
        stream(json!({
            "DeliveryStreamName": "o",
            "AmazonopensearchserviceDestinationConfiguration": {
                "ClusterEndpoint": endpoint, "IndexName": "i",
                "S3Configuration": {"BucketARN": "arn:aws:s3:::raw"}
            }
        }))
    }

    fn paths(issues: &[Issue]) -> Vec<&str> {
        issues.iter().map(|i| i.path.as_str()).collect()
    }

    #[test]
    fn a_lambda_arn_must_be_a_functions_entry_even_in_a_disabled_processor() {
        let server = server("");
        let ok = s3_with_lambda("arn:aws:lambda:us-east-1:123456789012:function:redact:live");
        assert_eq!(check(&server, &ok), vec![]);
        for arn in ["file:///proc/self/environ", "/etc/passwd", "../x.wasm", "t/redact.wasm"] {
            let issues = check(&server, &s3_with_lambda(arn));
            assert_eq!(
                paths(&issues),
                ["ExtendedS3DestinationConfiguration.ProcessingConfiguration.Processors[1].Parameters[1].ParameterValue"],
                "{arn}"
            );
            assert!(issues[0].message.contains("`functions:`"), "{}", issues[0].message);
            assert!(!issues[0].message.contains("/etc/hydrant"), "{}", issues[0].message);
        }
    }

    #[test]
    fn key_files_and_schema_files_are_refused() {
        let mut s = s3_with_lambda("arn:aws:lambda:us-east-1:123456789012:function:redact");
        s.hydrant.encryption = Some(
            serde_json::from_value(
                json!({"active_key": "k", "keys": [{"id": "k", "file": "/etc/shadow"}]}),
            )
            .unwrap(),
        );
        s.hydrant.schema = Some(serde_json::from_value(json!({"file": "/etc/passwd"})).unwrap());
        assert_eq!(paths(&check(&server(""), &s)), ["hydrant.encryption", "hydrant.schema.file"]);
    }

    #[test]
    fn only_the_listed_object_stores_may_be_used() {
        let mut s = s3_with_lambda("arn:aws:lambda:us-east-1:123456789012:function:redact");
        s.hydrant.object_store = "other".into();
        let issues = check(&server(""), &s);
        assert_eq!(paths(&issues), ["hydrant.object_store"]);
        assert!(issues[0].message.contains("api_streams.object_stores"), "{}", issues[0].message);
        let open = server("api_streams: { object_stores: [default, other] }");
        assert_eq!(check(&open, &s), vec![]);
    }

    #[test]
    fn no_remote_host_is_reachable_unless_listed() {
        let closed = server("");
        let url_field = "HttpEndpointDestinationConfiguration.EndpointConfiguration.Url";
        for url in ["http://127.0.0.1:8080/in", "https://hooks.example.com/in", "http://[::1]/"] {
            let issues = check(&closed, &http(url));
            assert_eq!(paths(&issues), [url_field], "{url}");
            assert!(issues[0].message.contains("api_streams.hosts"), "{}", issues[0].message);
        }
        let open = server("api_streams: { hosts: [\"*.example.com:443\", \"127.0.0.1\"] }");
        assert_eq!(check(&open, &http("https://hooks.example.com/in")), vec![]);
        assert_eq!(check(&open, &http("http://127.0.0.1:8080/in")), vec![]);
        // URL normalisation: the same address written another way is the same address.
        assert_eq!(check(&open, &http("http://0x7f.1:8080/in")), vec![]);
        assert_eq!(paths(&check(&open, &http("http://hooks.example.com/in"))), [url_field]);
        assert_eq!(paths(&check(&open, &http("http://127.0.0.2/in"))), [url_field]);
        assert_eq!(
            paths(&check(&closed, &search("https://search.internal:9200"))),
            ["AmazonopensearchserviceDestinationConfiguration.ClusterEndpoint"]
        );
    }

    #[test]
    fn every_host_and_hostaddr_of_a_warehouse_url_is_checked_and_unix_sockets_are_refused() {
        let open = server("api_streams: { hosts: [\"db.example.com:5432\"] }");
        let field = "RedshiftDestinationConfiguration.ClusterJDBCURL";
        assert_eq!(check(&open, &warehouse("jdbc:postgresql://db.example.com:5432/d")), vec![]);
        assert_eq!(
            paths(&check(&open, &warehouse("jdbc:postgresql://db.example.com:6543/d"))),
            [field]
        );
        assert_eq!(
            paths(&check(&open, &warehouse("postgres://db.example.com,10.0.0.9:5432/d"))),
            [field]
        );
        assert_eq!(
            paths(&check(&open, &warehouse("postgres://db.example.com:5432/d?hostaddr=10.0.0.9"))),
            [field]
        );
        let unix = check(&open, &warehouse("postgres://%2Fvar%2Frun%2Fpostgresql/d"));
        assert_eq!(paths(&unix), [field]);
        assert!(unix[0].message.contains("Unix socket"), "{}", unix[0].message);
        // The message never repeats the URL (it may hold a password).
        let secret = check(&server(""), &warehouse("postgres://u:hunter2@db.example.com/d"));
        assert!(!secret[0].message.contains("hunter2"), "{}", secret[0].message);
    }
}
