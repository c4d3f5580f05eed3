//! Gmail API `users.messages` (`/gmail/v1/users/{userId}/messages`): send (RFC 2822 in
//! base64url `raw`), list, get, trash, acting as the mailbox owner.

use super::{as_user, mime, GoogleClient, GoogleError};
use crate::http::Repeat;
use base64::Engine as _;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

/// A plain-text mail to send from a Dex mailbox.
#[derive(Debug, Clone, Default)]
pub struct OutgoingMail {
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub body: String,
}

/// `{"id", "threadId"}` as `messages.list` returns them.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MessageRef {
    pub id: String,
    #[serde(default)]
    pub thread_id: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagePage {
    #[serde(default)]
    pub messages: Vec<MessageRef>,
    #[serde(default)]
    pub next_page_token: Option<String>,
    #[serde(default)]
    pub result_size_estimate: u64,
}

/// Filters for `messages.list`.
#[derive(Debug, Clone, Default)]
pub struct MessageQuery {
    /// e.g. `["INBOX"]`.
    pub label_ids: Vec<String>,
    /// Gmail search syntax, e.g. `from:someone@example.com`.
    pub q: Option<String>,
    pub max_results: Option<u32>,
    pub page_token: Option<String>,
}

/// A message read with `format=full`, flattened to what Dex shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailMessage {
    pub id: String,
    pub thread_id: String,
    pub label_ids: Vec<String>,
    pub snippet: String,
    /// Milliseconds since the epoch at which Gmail received it.
    pub internal_date: i64,
    pub from: String,
    pub to: String,
    pub cc: String,
    pub subject: String,
    pub date: String,
    /// The first text/plain part, decoded.
    pub body: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMessage {
    id: String,
    #[serde(default)]
    thread_id: String,
    #[serde(default)]
    label_ids: Vec<String>,
    #[serde(default)]
    snippet: String,
    #[serde(default)]
    internal_date: Option<String>,
    #[serde(default)]
    payload: Option<Part>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Part {
    #[serde(default)]
    mime_type: String,
    #[serde(default)]
    headers: Vec<Header>,
    #[serde(default)]
    body: Option<PartBody>,
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Deserialize)]
struct Header {
    name: String,
    value: String,
}

#[derive(Deserialize)]
struct PartBody {
    #[serde(default)]
    data: Option<String>,
}

impl Part {
    fn header(&self, name: &str) -> String {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| mime::decode_header(&h.value))
            .unwrap_or_default()
    }

    /// The first `text/plain` body in the tree (Gmail's `data` is base64url).
    fn plain_text(&self) -> Option<String> {
        if self.mime_type.starts_with("text/plain") {
            let data = self.body.as_ref()?.data.as_deref()?;
            let bytes = decode_b64url(data)?;
            return Some(String::from_utf8_lossy(&bytes).into_owned());
        }
        self.parts.iter().find_map(Part::plain_text)
    }
}

fn decode_b64url(data: &str) -> Option<Vec<u8>> {
    let trimmed = data.trim_end_matches('=');
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .ok()
}

impl From<WireMessage> for MailMessage {
    fn from(m: WireMessage) -> Self {
        let payload = m.payload.unwrap_or_default();
        Self {
            internal_date: m
                .internal_date
                .and_then(|d| d.parse().ok())
                .unwrap_or_default(),
            from: payload.header("From"),
            to: payload.header("To"),
            cc: payload.header("Cc"),
            subject: payload.header("Subject"),
            date: payload.header("Date"),
            body: payload.plain_text().unwrap_or_default(),
            id: m.id,
            thread_id: m.thread_id,
            label_ids: m.label_ids,
            snippet: m.snippet,
        }
    }
}

fn messages(user: &str) -> [&str; 5] {
    ["gmail", "v1", "users", user, "messages"]
}

impl GoogleClient {
    /// Sends `mail` from `user`'s mailbox; returns the id of the sent copy. Gmail has no
    /// idempotency key, so a timeout is not repeated here (the mail may have gone out).
    pub async fn send_mail(
        &self,
        user: &str,
        mail: &OutgoingMail,
    ) -> Result<MessageRef, GoogleError> {
        let rfc2822 = mime::render(user, &mail.to, &mail.cc, &mail.subject, &mail.body);
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rfc2822.as_bytes());
        self.call_json(
            as_user(user),
            Method::POST,
            &[&messages(user)[..], &["send"]].concat(),
            &[],
            Some(&json!({ "raw": raw })),
            Repeat::OnlyIfNotDelivered,
        )
        .await
    }

    pub async fn list_messages(
        &self,
        user: &str,
        query: &MessageQuery,
    ) -> Result<MessagePage, GoogleError> {
        let mut params: Vec<(&str, String)> = query
            .label_ids
            .iter()
            .map(|l| ("labelIds", l.clone()))
            .collect();
        if let Some(q) = &query.q {
            params.push(("q", q.clone()));
        }
        if let Some(n) = query.max_results {
            params.push(("maxResults", n.to_string()));
        }
        if let Some(t) = &query.page_token {
            params.push(("pageToken", t.clone()));
        }
        self.call_json(
            as_user(user),
            Method::GET,
            &messages(user),
            &params,
            None,
            Repeat::Safe,
        )
        .await
    }

    /// `GoogleError::NotFound` for an id that is not in this mailbox.
    pub async fn get_message(&self, user: &str, id: &str) -> Result<MailMessage, GoogleError> {
        let wire: WireMessage = self
            .call_json(
                as_user(user),
                Method::GET,
                &[&messages(user)[..], &[id]].concat(),
                &[("format", "full".to_owned())],
                None,
                Repeat::Safe,
            )
            .await?;
        Ok(wire.into())
    }

    /// Moves the message to the trash (Gmail deletes it for good after 30 days).
    pub async fn trash_message(&self, user: &str, id: &str) -> Result<(), GoogleError> {
        self.call(
            as_user(user),
            Method::POST,
            &[&messages(user)[..], &[id, "trash"]].concat(),
            &[],
            None,
            Repeat::Safe,
        )
        .await
        .map(drop)
    }
}
