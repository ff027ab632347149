//! The backend call: one `POST <endpoint>/_bulk` per attempt.

use std::time::Duration;

use async_trait::async_trait;

use super::config::SearchSettings;
use super::request_builder::{encode_bulk, BulkRequest};
use super::retry::response_outcome;
use crate::{Destination, DestinationError, Outcome, RetryPolicy};

/// How long connecting to the cluster may take (the whole request has its own timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Writes documents to an OpenSearch or Elasticsearch cluster through the `_bulk` API.
#[derive(Debug, Clone)]
pub struct SearchDestination {
    settings: SearchSettings,
    client: reqwest::Client,
    bulk_url: String,
}

impl SearchDestination {
    /// Prepares the HTTP client. Does not contact the cluster.
    pub fn new(settings: SearchSettings) -> Result<Self, DestinationError> {
        let client = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(settings.request_timeout))
            // Like Firehose: a redirect is a configuration problem to report, not to follow
            // (and following it would resend credentials elsewhere).
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hydrant/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                DestinationError::permanent(
                    format!("{}.InvalidConfiguration", settings.flavor.code_prefix()),
                    format!("cannot build the HTTP client: {e}"),
                )
            })?;
        let bulk_url = format!("{}/_bulk", settings.endpoint);
        Ok(Self { settings, client, bulk_url })
    }

    pub fn settings(&self) -> &SearchSettings {
        &self.settings
    }

    fn prefix(&self) -> &'static str {
        self.settings.flavor.code_prefix()
    }

    fn transport_error(&self, e: &reqwest::Error) -> DestinationError {
        let (code, what) = if e.is_timeout() {
            ("Timeout", format!("no answer within {:?}", self.settings.request_timeout))
        } else if e.is_connect() {
            ("ConnectionFailed", "cannot connect".to_string())
        } else {
            ("RequestFailed", "the request failed".to_string())
        };
        // `{:#}`-style chain: reqwest's Display alone hides the cause (e.g. "connection refused").
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            source = s.source();
        }
        DestinationError::transient(
            format!("{}.{code}", self.prefix()),
            format!("{what} ({}): {detail}", self.bulk_url),
        )
    }
}

#[async_trait]
impl Destination for SearchDestination {
    type Request = BulkRequest;

    fn kind(&self) -> &'static str {
        self.settings.flavor.kind()
    }

    /// Jittered exponential backoff from 500 ms up to 30 s per wait, for
    /// `RetryOptions.DurationInSeconds` in total (0: a single attempt).
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.2,
            max_duration: Some(self.settings.retry_duration),
            ..RetryPolicy::default()
        }
    }

    async fn deliver(
        &self,
        request: &BulkRequest,
    ) -> Result<Outcome<BulkRequest>, DestinationError> {
        let encoded = encode_bulk(request, self.settings.type_name.as_deref(), self.prefix());
        if encoded.sent.is_empty() {
            return Ok(Outcome::Delivered { rejected: encoded.rejected });
        }
        let mut http = self
            .client
            .post(&self.bulk_url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
            .body(encoded.body.clone());
        if let Some(auth) = &self.settings.basic_auth {
            http = http.basic_auth(&auth.username, Some(&auth.password));
        }
        let response = http.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| self.transport_error(&e))?;
        response_outcome(request, encoded, status, &body, self.prefix())
    }
}
