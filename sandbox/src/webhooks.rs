//! Delivery of the webhooks the sandbox sends, signed as the real provider signs them.
//! Telnyx: Ed25519 over `"{timestamp}|{body}"`, base64 in `telnyx-signature-ed25519`, Unix
//! seconds in `telnyx-timestamp`; a failed delivery is tried again, three attempts in all.

use base64::Engine as _;
use config::Config;
use ed25519_dalek::{Signer, SigningKey};
use std::time::Duration;

#[derive(Clone)]
pub(crate) struct WebhookSender {
    http: reqwest::Client,
    telnyx_key: SigningKey,
    /// `SANDBOX_WEBHOOK_BASE`: where webhooks go when no URL is configured at the provider.
    pub base: String,
}

impl WebhookSender {
    pub fn new(config: &Config) -> Self {
        let seed = config.sandbox.telnyx_signing_key.unwrap_or_else(|| {
            tracing::warn!(
                "SANDBOX_TELNYX_SIGNING_KEY is unset; signing Telnyx webhooks with the dev key"
            );
            config::DEV_TELNYX_SEED
        });
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            telnyx_key: SigningKey::from_bytes(&seed),
            base: config.sandbox.webhook_base.trim_end_matches('/').to_owned(),
        }
    }

    /// Signs `event` and POSTs it to `url` in the background.
    pub fn send_telnyx(&self, url: String, event: serde_json::Value) {
        let body = event.to_string();
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let signature = self
            .telnyx_key
            .sign(format!("{timestamp}|{body}").as_bytes());
        let signature = base64::engine::general_purpose::STANDARD.encode(signature.to_bytes());
        let http = self.http.clone();
        tokio::spawn(async move {
            for attempt in 1..=3u64 {
                let sent = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("user-agent", "telnyx-webhooks")
                    .header("telnyx-signature-ed25519", &signature)
                    .header("telnyx-timestamp", &timestamp)
                    .body(body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => return,
                    Ok(r) => tracing::warn!(
                        status = r.status().as_u16(),
                        attempt,
                        "telnyx webhook refused"
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e.without_url(), attempt, "telnyx webhook not delivered")
                    }
                }
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
        });
    }
}
