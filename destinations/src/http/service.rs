//! The backend call: one POST per attempt, and the answer read (at most 1 MiB of it) and
//! judged by [`super::retry::check_response`].

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Client, Response, Url};

use super::config::HttpEndpointSettings;
use super::request_builder::{HttpDeliveryRequest, HttpRequestBuilder};
use super::retry::{
    check_response, codes, firehose_retry_policy, response_too_large, transport_error,
    MAX_RESPONSE_BYTES,
};
use crate::{Destination, DestinationError, Outcome, RetryPolicy};

/// Delivers batches to one HTTP endpoint the way Firehose does.
#[derive(Debug, Clone)]
pub struct HttpDestination {
    client: Client,
    url: Url,
    builder: HttpRequestBuilder,
    retry: RetryPolicy,
    response_timeout: Duration,
}

impl HttpDestination {
    /// A destination for `settings`, retrying by Firehose's policy for
    /// `settings.retry_duration`.
    pub fn new(settings: &HttpEndpointSettings) -> Result<Self, DestinationError> {
        let client = Client::builder()
            // Firehose follows no redirects: a 3xx is a failed attempt.
            .redirect(reqwest::redirect::Policy::none())
            // Send `X-Amz-Firehose-Request-Id`, not `x-amz-firehose-request-id`, for
            // receivers that look headers up case-sensitively.
            .http1_title_case_headers()
            .build()
            .map_err(|e| {
                DestinationError::permanent(
                    codes::INVALID_CONFIGURATION,
                    format!("cannot set up an HTTP client: {e}"),
                )
            })?;
        Ok(Self {
            client,
            url: settings.url.clone(),
            builder: HttpRequestBuilder::new(settings)?,
            retry: firehose_retry_policy(settings.retry_duration),
            response_timeout: settings.response_timeout,
        })
    }

    /// Replaces the retry policy (tests use short waits; the real one is Firehose's).
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The request builder, e.g. to measure what a batch puts on the wire.
    pub fn request_builder(&self) -> &HttpRequestBuilder {
        &self.builder
    }
}

#[async_trait]
impl Destination for HttpDestination {
    type Request = HttpDeliveryRequest;

    fn kind(&self) -> &'static str {
        "http_endpoint"
    }

    fn retry_policy(&self) -> RetryPolicy {
        self.retry.clone()
    }

    async fn deliver(
        &self,
        request: &HttpDeliveryRequest,
    ) -> Result<Outcome<HttpDeliveryRequest>, DestinationError> {
        let encoded = self.builder.build(request)?;
        let timeout = self.response_timeout;
        let response = self
            .client
            .post(self.url.clone())
            .headers(encoded.headers)
            .body(encoded.body)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| transport_error(&e, timeout))?;
        let status = response.status().as_u16();
        let body = read_capped(response, MAX_RESPONSE_BYTES).await;
        tracing::debug!(
            request_id = %request.request_id,
            records = request.records.len(),
            status,
            "http endpoint answered"
        );
        let body = match body {
            // A 413 is final whatever its body looks like.
            _ if status == 413 => body.ok().and_then(Result::ok).unwrap_or_default(),
            Ok(Ok(body)) => body,
            Ok(Err(size)) => return Err(response_too_large(status, size)),
            Err(e) => return Err(transport_error(&e, timeout)),
        };
        check_response(status, &body, &request.request_id)?;
        Ok(Outcome::delivered())
    }
}

/// Reads the body if it is at most `cap` bytes; otherwise stops and returns the size it
/// announced, if any.
async fn read_capped(
    mut response: Response,
    cap: usize,
) -> Result<Result<Vec<u8>, Option<u64>>, reqwest::Error> {
    let announced = response.content_length();
    if announced.is_some_and(|n| n > cap as u64) {
        return Ok(Err(announced));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > cap {
            return Ok(Err(None));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Ok(body))
}
