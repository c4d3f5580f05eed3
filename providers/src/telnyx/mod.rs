//! Telnyx API v2: phone numbers (search, order, messaging settings, release), SMS, and the
//! Ed25519 signatures of the webhooks Telnyx sends.

mod error;
mod messaging;
mod numbers;
pub mod webhook;

pub use error::{TelnyxError, NUMBER_UNAVAILABLE_CODE};
pub use messaging::{MessagingProfile, Recipient, SentMessage};
pub use numbers::{
    AvailableNumber, Feature, NumberOrder, NumberSearch, OrderPhoneNumber, OrderedNumber,
    PhoneNumber,
};
pub use webhook::{
    verify_webhook, verify_webhook_request, InboundMessage, WebhookError, WebhookEvent,
};

use crate::http::{self, HttpOptions, Repeat};
use config::Secret;
use reqwest::Method;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// Client for the Telnyx REST API. Cheap to clone.
#[derive(Clone)]
pub struct TelnyxClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    opts: HttpOptions,
    api_base: String,
    api_key: Secret,
}

impl std::fmt::Debug for TelnyxClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelnyxClient")
            .field("api_base", &self.inner.api_base)
            .finish_non_exhaustive()
    }
}

/// `{"data": ...}`: every Telnyx v2 response wraps its payload.
#[derive(serde::Deserialize)]
struct Data<T> {
    data: T,
}

impl TelnyxClient {
    pub fn new(api_base: &str, api_key: Secret, opts: HttpOptions) -> Result<Self, TelnyxError> {
        Ok(Self {
            inner: Arc::new(Inner {
                http: opts.client()?,
                opts,
                api_base: api_base.trim_end_matches('/').to_owned(),
                api_key,
            }),
        })
    }

    /// From the typed configuration (`TELNYX_API_KEY`, `TELNYX_API_BASE`).
    pub fn from_config(cfg: &config::Telnyx, opts: HttpOptions) -> Result<Self, TelnyxError> {
        if cfg.api_key.is_empty() {
            return Err(TelnyxError::Unauthorized(
                "TELNYX_API_KEY is not set".into(),
            ));
        }
        Self::new(&cfg.api_base, cfg.api_key.clone(), opts)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        repeat: Repeat,
    ) -> Result<T, TelnyxError> {
        let url = http::endpoint(&self.inner.api_base, segments).map_err(TelnyxError::Decode)?;
        let bytes = http::with_retries(
            &self.inner.opts,
            "telnyx.api",
            || async {
                let mut req = self
                    .inner
                    .http
                    .request(method.clone(), url.clone())
                    .bearer_auth(self.inner.api_key.expose())
                    .query(query);
                if let Some(b) = body {
                    req = req.json(b);
                }
                let raw = http::execute(req).await?;
                if raw.is_success() {
                    Ok(raw.body)
                } else {
                    Err(TelnyxError::from_response(raw.status, &raw.body))
                }
            },
            |e: &TelnyxError| match repeat {
                Repeat::Safe => e.is_retryable(),
                Repeat::OnlyIfNotDelivered => e.not_delivered(),
            },
        )
        .await?;
        let wrapped: Data<T> =
            serde_json::from_slice(&bytes).map_err(|e| TelnyxError::Decode(e.to_string()))?;
        Ok(wrapped.data)
    }
}
