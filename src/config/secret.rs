//! A secret from the config file (a password, a secret key, a token): read and written like
//! the string it holds, never shown by `Debug`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A secret value of the configuration. It serializes and deserializes as the plain string
/// (the file's and the API's shapes do not change); `Debug` prints `<redacted>`, so a config
/// struct that derives `Debug` cannot leak it into a log line. [`Secret::expose`] reads it
/// where it is used.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

/// What a secret serializes as inside [`redacted`].
pub const REDACTED: &str = "<redacted>";

thread_local! {
    static REDACTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` (a serialization) with every [`Secret`] written as [`REDACTED`] instead of its
/// value: what the console shows of a definition.
pub fn redacted<T>(f: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            REDACTING.with(|r| r.set(self.0));
        }
    }
    let _reset = Reset(REDACTING.with(|r| r.replace(true)));
    f()
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if REDACTING.with(|r| r.get()) {
            serializer.serialize_str(REDACTED)
        } else {
            serializer.serialize_str(&self.0)
        }
    }
}

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it (a client, a signature check).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_reads_and_writes_as_its_string_and_never_shows_in_debug() {
        let secret: Secret = serde_json::from_str("\"hunter22\"").unwrap();
        assert_eq!(secret.expose(), "hunter22");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"hunter22\"");
        assert_eq!(serde_yaml_ng::to_string(&secret).unwrap(), "hunter22\n");
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(<redacted>)");
        let shown = redacted(|| serde_json::to_string(&secret).unwrap());
        assert_eq!(shown, "\"<redacted>\"");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"hunter22\"", "only inside");
    }

    /// Every secret of the file, each a value no other field holds.
    const CONFIG: &str = r#"
auth:
  mode: sigv4
  credentials: [{ access_key_id: AKIDEXAMPLE, secret_access_key: sigv4-s3cr3t }]
object_stores:
  minio: { type: s3, endpoint: "http://127.0.0.1:9000", access_key_id: minio, secret_access_key: store-s3cr3t, allow_http: true }
core: { type: jetstream, servers: ["nats://me:url-s3cr3t@a:4222"], token: token-s3cr3t, user: me, password: nats-s3cr3t }
delivery_streams:
  - DeliveryStreamName: search
    AmazonopensearchserviceDestinationConfiguration:
      IndexName: i
      ClusterEndpoint: "https://search:9200"
      S3Configuration: { BucketARN: arn:aws:s3:::b }
    hydrant: { basic_auth: { username: firehose, password: search-s3cr3t } }
  - DeliveryStreamName: warehouse
    RedshiftDestinationConfiguration:
      ClusterJDBCURL: "jdbc:postgresql://db:5432/d"
      CopyCommand: { DataTableName: t }
      Username: loader
      Password: warehouse-s3cr3t
      S3Configuration: { BucketARN: arn:aws:s3:::b }
  - DeliveryStreamName: http
    HttpEndpointDestinationConfiguration:
      EndpointConfiguration: { Url: "https://collector/in", AccessKey: http-s3cr3t }
      S3Configuration: { BucketARN: arn:aws:s3:::b }
"#;

    #[test]
    fn no_config_struct_shows_a_secret_in_debug() {
        let config = crate::config::parse(CONFIG, std::path::Path::new("/etc/hydrant")).unwrap();
        let crate::config::AuthConfig::Sigv4 { credentials } = &config.auth else {
            panic!("sigv4 expected")
        };
        let streams = &config.delivery_streams;
        let shown = [
            format!("{config:?}"),
            format!("{config:#?}"),
            format!("{:?}", credentials[0]),
            format!("{:?}", config.object_stores["minio"]),
            format!("{:?}", config.core),
            format!("{:?}", streams[0].hydrant.basic_auth),
            format!("{:?}", streams[1].redshift_destination_configuration),
            format!("{:?}", streams[2].http_endpoint_destination_configuration),
        ];
        for text in &shown {
            assert!(!text.contains("s3cr3t"), "a secret shows in {text}");
        }
        assert!(shown[2].contains("secret_access_key: <redacted>"), "{}", shown[2]);
        // The secrets are all there, for the code that uses them.
        let crate::config::ObjectStoreConfig::S3(store) = &config.object_stores["minio"] else {
            panic!("minio is an s3 store")
        };
        assert_eq!(store.secret_access_key.as_ref().map(Secret::expose), Some("store-s3cr3t"));
        assert_eq!(config.core.token.as_ref().map(Secret::expose), Some("token-s3cr3t"));
        let yaml = serde_yaml_ng::to_string(&config).unwrap();
        for secret in ["sigv4", "store", "token", "nats", "search", "warehouse", "http"] {
            assert!(yaml.contains(&format!("{secret}-s3cr3t")), "{secret} is written back");
        }
    }
}
