//! Verification of Telnyx webhooks: an Ed25519 signature (base64, header
//! `telnyx-signature-ed25519`) over `"{timestamp}|{raw body}"` (timestamp from
//! `telnyx-timestamp`, Unix seconds), accepted within five minutes of now. Pure: the caller
//! supplies the clock and records the returned event id to ignore replays.

use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::Deserialize;

pub const SIGNATURE_HEADER: &str = "telnyx-signature-ed25519";
pub const TIMESTAMP_HEADER: &str = "telnyx-timestamp";
/// How far the timestamp may be from now, either way.
pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    #[error("the signature header is not base64 Ed25519")]
    MalformedSignature,
    #[error("the timestamp header is not a Unix time")]
    MalformedTimestamp,
    #[error("the timestamp is more than five minutes from now")]
    StaleTimestamp,
    #[error("the signature does not match the body")]
    BadSignature,
    #[error("the configured public key is not a valid Ed25519 key")]
    BadPublicKey,
    #[error("the body is not a Telnyx event: {0}")]
    MalformedBody(String),
}

/// `{"data": {"id", "event_type", "occurred_at", "payload"}}`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct WebhookEvent {
    /// Unique per event; the api records it to ignore a redelivery.
    pub id: String,
    pub event_type: String,
    #[serde(default)]
    pub occurred_at: Option<String>,
    #[serde(default)]
    pub payload: serde_json::Value,
}

#[derive(Deserialize)]
struct Envelope {
    data: WebhookEvent,
}

/// The useful part of a `message.received` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    pub message_id: String,
    pub from: String,
    /// Our number that received it.
    pub to: String,
    pub text: String,
}

impl WebhookEvent {
    /// The inbound SMS, when this is a `message.received` event.
    pub fn inbound_message(&self) -> Option<InboundMessage> {
        if self.event_type != "message.received" {
            return None;
        }
        let p = &self.payload;
        Some(InboundMessage {
            message_id: p["id"].as_str()?.to_owned(),
            from: p["from"]["phone_number"].as_str()?.to_owned(),
            to: p["to"][0]["phone_number"].as_str()?.to_owned(),
            text: p["text"].as_str().unwrap_or_default().to_owned(),
        })
    }
}

/// Checks the signature and the timestamp, then parses the event.
/// `now_unix` is the current time in Unix seconds.
pub fn verify_webhook(
    public_key: &[u8; 32],
    signature_b64: &str,
    timestamp: &str,
    body: &[u8],
    now_unix: i64,
) -> Result<WebhookEvent, WebhookError> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| WebhookError::MalformedTimestamp)?;
    // abs_diff: a timestamp far from now must be stale, not an overflow panic.
    if now_unix.abs_diff(ts) > TOLERANCE_SECS as u64 {
        return Err(WebhookError::StaleTimestamp);
    }
    let sig_bytes = base64::engine::general_purpose::STANDARD
        .decode(signature_b64.trim())
        .map_err(|_| WebhookError::MalformedSignature)?;
    let signature =
        Signature::from_slice(&sig_bytes).map_err(|_| WebhookError::MalformedSignature)?;
    let key = VerifyingKey::from_bytes(public_key).map_err(|_| WebhookError::BadPublicKey)?;
    let mut signed = Vec::with_capacity(timestamp.len() + 1 + body.len());
    signed.extend_from_slice(timestamp.trim().as_bytes());
    signed.push(b'|');
    signed.extend_from_slice(body);
    key.verify_strict(&signed, &signature)
        .map_err(|_| WebhookError::BadSignature)?;
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| WebhookError::MalformedBody(e.to_string()))?;
    Ok(envelope.data)
}

/// [`verify_webhook`] reading the two headers from the request (absent ones are an error).
pub fn verify_webhook_request(
    public_key: &[u8; 32],
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    now_unix: i64,
) -> Result<WebhookEvent, WebhookError> {
    let header = |name: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(WebhookError::MissingHeader(name))
    };
    verify_webhook(
        public_key,
        header(SIGNATURE_HEADER)?,
        header(TIMESTAMP_HEADER)?,
        body,
        now_unix,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_at_the_ends_of_i64_is_stale() {
        let key = [7u8; 32];
        for ts in [i64::MIN, i64::MAX] {
            let r = verify_webhook(&key, "AAAA", &ts.to_string(), b"{}", 1_000);
            assert!(
                matches!(r, Err(WebhookError::StaleTimestamp)),
                "{ts}: {r:?}"
            );
        }
    }
}
