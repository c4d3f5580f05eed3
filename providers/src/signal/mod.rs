//! signal-cli-rest-api (`bbernhard/signal-cli-rest-api`): register a number (optionally with a
//! captcha or by voice), verify the code, send, receive, unregister, list contacts.

mod error;

pub use error::SignalError;

use crate::http::{self, HttpOptions, Repeat};
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

#[derive(Clone)]
pub struct SignalClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    opts: HttpOptions,
    base: String,
}

impl std::fmt::Debug for SignalClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalClient")
            .field("base", &self.inner.base)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Default)]
pub struct RegisterOptions {
    /// The token an operator copied from signalcaptchas.org (`signalcaptcha://...`).
    pub captcha: Option<String>,
    /// Ask for a voice call instead of an SMS.
    pub use_voice: bool,
}

/// A received data message, flattened from signal-cli's envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub source: String,
    pub source_name: Option<String>,
    /// Milliseconds since the epoch, as the sender stamped it.
    pub timestamp: i64,
    pub message: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Contact {
    #[serde(default)]
    pub number: String,
    #[serde(default)]
    pub uuid: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub profile_name: String,
}

#[derive(Deserialize)]
struct SendResponse {
    timestamp: serde_json::Value,
}

#[derive(Deserialize)]
struct Received {
    envelope: Envelope,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    #[serde(default)]
    source_number: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    source_name: Option<String>,
    #[serde(default)]
    timestamp: i64,
    #[serde(default)]
    data_message: Option<DataMessage>,
}

#[derive(Deserialize)]
struct DataMessage {
    #[serde(default)]
    message: Option<String>,
}

/// The six digits of a Signal verification SMS ("Your Signal code: 123-456 ..."), as signal-cli's
/// verify expects them; `None` when the text carries no such code.
pub fn verification_code(sms_text: &str) -> Option<String> {
    let lower = sms_text.to_ascii_lowercase();
    if !lower.contains("signal") {
        return None;
    }
    let bytes = sms_text.as_bytes();
    for start in 0..bytes.len() {
        let window: Vec<u8> = bytes[start..].iter().take(7).copied().collect();
        let digits = match window.as_slice() {
            [a, b, c, b'-', d, e, f] => [*a, *b, *c, *d, *e, *f],
            [a, b, c, d, e, f, ..] => [*a, *b, *c, *d, *e, *f],
            _ => continue,
        };
        let boundary_before = start == 0 || !bytes[start - 1].is_ascii_digit();
        if boundary_before && digits.iter().all(u8::is_ascii_digit) {
            let len = if window.get(3) == Some(&b'-') { 7 } else { 6 };
            let after = bytes.get(start + len);
            if after.is_none_or(|b| !b.is_ascii_digit()) {
                return Some(String::from_utf8_lossy(&digits).into_owned());
            }
        }
    }
    None
}

impl SignalClient {
    pub fn new(base: &str, opts: HttpOptions) -> Result<Self, SignalError> {
        Ok(Self {
            inner: Arc::new(Inner {
                http: opts.client()?,
                opts,
                base: base.trim_end_matches('/').to_owned(),
            }),
        })
    }

    /// From `SIGNAL_CLI_URL`.
    pub fn from_config(cfg: &config::Config, opts: HttpOptions) -> Result<Self, SignalError> {
        Self::new(&cfg.signal_cli_url, opts)
    }

    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&serde_json::Value>,
        repeat: Repeat,
    ) -> Result<Vec<u8>, SignalError> {
        let url = http::endpoint(&self.inner.base, segments).map_err(SignalError::Decode)?;
        http::with_retries(
            &self.inner.opts,
            "signal.api",
            || async {
                let mut req = self.inner.http.request(method.clone(), url.clone());
                if let Some(b) = body {
                    req = req.json(b);
                }
                let raw = http::execute(req).await?;
                if raw.is_success() {
                    Ok(raw.body)
                } else {
                    Err(SignalError::from_response(raw.status, &raw.body))
                }
            },
            |e: &SignalError| match repeat {
                Repeat::Safe => e.is_retryable(),
                Repeat::OnlyIfNotDelivered => e.not_delivered(),
            },
        )
        .await
    }

    /// Asks Signal to send a verification code to `number` (by SMS unless `use_voice`).
    /// `SignalError::CaptchaRequired` when Signal wants a captcha first.
    pub async fn register(&self, number: &str, opts: &RegisterOptions) -> Result<(), SignalError> {
        let mut body = json!({ "use_voice": opts.use_voice });
        if let Some(c) = &opts.captcha {
            body["captcha"] = json!(c);
        }
        // Safe to repeat: a second request while one is pending asks for a code again.
        self.call(
            Method::POST,
            &["v1", "register", number],
            Some(&body),
            Repeat::Safe,
        )
        .await
        .map(drop)
    }

    /// Completes registration with the six-digit code (dash optional) and, for a number with a
    /// registration lock, its PIN.
    pub async fn verify(
        &self,
        number: &str,
        code: &str,
        pin: Option<&str>,
    ) -> Result<(), SignalError> {
        let code: String = code.chars().filter(char::is_ascii_digit).collect();
        let body = pin.map(|p| json!({ "pin": p }));
        self.call(
            Method::POST,
            &["v1", "register", number, "verify", &code],
            body.as_ref(),
            Repeat::Safe,
        )
        .await
        .map(drop)
    }

    /// Sends a text message; returns Signal's timestamp of it (ms). Not repeated after a
    /// timeout (it may have been delivered).
    pub async fn send(
        &self,
        from: &str,
        recipients: &[&str],
        message: &str,
    ) -> Result<i64, SignalError> {
        let body = json!({ "number": from, "recipients": recipients, "message": message });
        let bytes = self
            .call(
                Method::POST,
                &["v2", "send"],
                Some(&body),
                Repeat::OnlyIfNotDelivered,
            )
            .await?;
        let resp: SendResponse =
            serde_json::from_slice(&bytes).map_err(|e| SignalError::Decode(e.to_string()))?;
        // signal-cli-rest-api returns the timestamp as a string.
        match resp.timestamp {
            serde_json::Value::String(s) => s.parse().map_err(|_| SignalError::Decode(s)),
            serde_json::Value::Number(n) => {
                n.as_i64().ok_or_else(|| SignalError::Decode(n.to_string()))
            }
            other => Err(SignalError::Decode(other.to_string())),
        }
    }

    /// Fetches (and thereby consumes) the messages waiting for `number`. Not repeated after a
    /// timeout: the messages may have been handed out already.
    pub async fn receive(&self, number: &str) -> Result<Vec<ReceivedMessage>, SignalError> {
        let bytes = self
            .call(
                Method::GET,
                &["v1", "receive", number],
                None,
                Repeat::OnlyIfNotDelivered,
            )
            .await?;
        let items: Vec<Received> =
            serde_json::from_slice(&bytes).map_err(|e| SignalError::Decode(e.to_string()))?;
        Ok(items
            .into_iter()
            .filter_map(|r| {
                let env = r.envelope;
                let message = env.data_message?.message?;
                Some(ReceivedMessage {
                    source: env.source_number.or(env.source).unwrap_or_default(),
                    source_name: env.source_name,
                    timestamp: env.timestamp,
                    message,
                })
            })
            .collect())
    }

    /// Unregisters the number from Signal (and deletes the account when `delete_account`).
    /// `SignalError::NotRegistered` when it was not registered.
    pub async fn unregister(&self, number: &str, delete_account: bool) -> Result<(), SignalError> {
        let body = json!({ "delete_account": delete_account, "delete_local_data": delete_account });
        self.call(
            Method::POST,
            &["v1", "unregister", number],
            Some(&body),
            Repeat::Safe,
        )
        .await
        .map(drop)
    }

    pub async fn list_contacts(&self, number: &str) -> Result<Vec<Contact>, SignalError> {
        let bytes = self
            .call(Method::GET, &["v1", "contacts", number], None, Repeat::Safe)
            .await?;
        serde_json::from_slice(&bytes).map_err(|e| SignalError::Decode(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::verification_code;

    #[test]
    fn finds_the_six_digits_of_a_signal_code() {
        assert_eq!(
            verification_code("Your Signal code: 123-456. Do not share this code").as_deref(),
            Some("123456")
        );
        assert_eq!(
            verification_code("SIGNAL: Your code is 654321").as_deref(),
            Some("654321")
        );
        assert_eq!(verification_code("Your Signal code: 1234-5678"), None);
        assert_eq!(verification_code("Meet at 123-456 Main St"), None);
    }
}
