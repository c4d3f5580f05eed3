//! Messaging: send an SMS (`POST /v2/messages`) and set a messaging profile's webhook URL.

use super::{TelnyxClient, TelnyxError};
use crate::http::Repeat;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Clone, Deserialize)]
pub struct SentMessage {
    pub id: String,
    #[serde(default)]
    pub to: Vec<Recipient>,
    #[serde(default)]
    pub parts: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Recipient {
    pub phone_number: String,
    #[serde(default)]
    pub status: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MessagingProfile {
    pub id: String,
    #[serde(default)]
    pub webhook_url: Option<String>,
}

impl TelnyxClient {
    /// Sends an SMS from one of the account's numbers. Telnyx has no idempotency key for
    /// messages, so a timeout is not repeated here (it may have gone out).
    pub async fn send_sms(
        &self,
        from: &str,
        to: &str,
        text: &str,
    ) -> Result<SentMessage, TelnyxError> {
        self.call(
            Method::POST,
            &["v2", "messages"],
            &[],
            Some(&json!({ "from": from, "to": to, "text": text })),
            Repeat::OnlyIfNotDelivered,
        )
        .await
    }

    /// Points the profile's inbound/status webhooks at `webhook_url` (e.g. the api's
    /// `/webhooks/telnyx`).
    pub async fn set_profile_webhook(
        &self,
        profile_id: &str,
        webhook_url: &str,
    ) -> Result<MessagingProfile, TelnyxError> {
        self.call(
            Method::PATCH,
            &["v2", "messaging_profiles", profile_id],
            &[],
            Some(&json!({ "webhook_url": webhook_url, "webhook_api_version": "2" })),
            Repeat::Safe,
        )
        .await
    }
}
