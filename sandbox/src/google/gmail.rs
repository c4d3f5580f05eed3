//! Gmail API `users.messages`: send, list, get (full, metadata, minimal, raw), trash, delete.
//! A sent message is stored in the sender's mailbox (`SENT`) and a copy goes to the inbox
//! (`INBOX`, `UNREAD`) of every recipient who is a user of the sandbox; a recipient address
//! in the sandbox domain that does not exist bounces back to the sender.

use super::{error, mail};
use crate::{lock, Shared};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const READ: [&str; 3] = [
    "https://mail.google.com/",
    "https://www.googleapis.com/auth/gmail.modify",
    "https://www.googleapis.com/auth/gmail.readonly",
];
const MODIFY: [&str; 2] = [
    "https://mail.google.com/",
    "https://www.googleapis.com/auth/gmail.modify",
];
const SEND: [&str; 4] = [
    "https://mail.google.com/",
    "https://www.googleapis.com/auth/gmail.modify",
    "https://www.googleapis.com/auth/gmail.compose",
    "https://www.googleapis.com/auth/gmail.send",
];

#[derive(Clone)]
pub(crate) struct Stored {
    id: String,
    thread_id: String,
    labels: BTreeSet<String>,
    raw: Vec<u8>,
    internal_date: i64,
}

fn new_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl Stored {
    fn new(raw: Vec<u8>, labels: &[&str]) -> Self {
        let id = new_id();
        Self {
            thread_id: id.clone(),
            id,
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            raw,
            internal_date: chrono::Utc::now().timestamp_millis(),
        }
    }

    fn to_json(&self, format: &str, wanted_headers: &[String]) -> Value {
        let parsed = mail::parse(&self.raw);
        let snippet: String = parsed
            .body
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(100)
            .collect();
        let mut v = json!({
            "id": self.id,
            "threadId": self.thread_id,
            "labelIds": self.labels,
            "snippet": snippet,
            "historyId": self.internal_date.to_string(),
            "internalDate": self.internal_date.to_string(),
            "sizeEstimate": self.raw.len(),
        });
        let b64 = base64::engine::general_purpose::URL_SAFE;
        match format {
            "minimal" => {}
            "raw" => v["raw"] = json!(b64.encode(&self.raw)),
            _ => {
                let headers: Vec<Value> = parsed
                    .headers
                    .iter()
                    .filter(|(n, _)| {
                        format != "metadata"
                            || wanted_headers.is_empty()
                            || wanted_headers.iter().any(|w| w.eq_ignore_ascii_case(n))
                    })
                    .map(|(n, val)| json!({ "name": n, "value": val }))
                    .collect();
                let mime_type = parsed
                    .header("Content-Type")
                    .and_then(|c| c.split(';').next())
                    .unwrap_or("text/plain")
                    .trim()
                    .to_owned();
                let mut payload = json!({
                    "partId": "",
                    "mimeType": mime_type,
                    "filename": "",
                    "headers": headers,
                });
                if format != "metadata" {
                    payload["body"] = json!({
                        "size": parsed.body.len(),
                        "data": b64.encode(parsed.body.as_bytes()),
                    });
                }
                v["payload"] = payload;
            }
        }
        v
    }

    fn matches(&self, query: &str) -> bool {
        let parsed = mail::parse(&self.raw);
        query.split_whitespace().all(|term| {
            let (key, value) = term.split_once(':').unwrap_or(("", term));
            let value = value.to_ascii_lowercase();
            let header = |h: &str| parsed.header(h).unwrap_or("").to_ascii_lowercase();
            match key {
                "from" => header("From").contains(&value),
                "to" => header("To").contains(&value) || header("Cc").contains(&value),
                "subject" => mail::decode_words(&header("Subject")).contains(&value),
                "in" | "label" => self.labels.contains(&value.to_ascii_uppercase()),
                "is" => match value.as_str() {
                    "unread" => self.labels.contains("UNREAD"),
                    "read" => !self.labels.contains("UNREAD"),
                    _ => false,
                },
                _ => {
                    let all = format!("{} {}", header("Subject"), parsed.body.to_ascii_lowercase());
                    all.contains(&term.to_ascii_lowercase())
                }
            }
        })
    }
}

fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "notFound",
        "Requested entity was not found.",
    )
}

/// Replaces (or adds) the From header with the mailbox address, as Gmail does for an address
/// the user may not send as, and drops Bcc from the copies recipients get.
fn rewrite_headers(raw: &[u8], from: &str, drop_bcc: bool) -> Vec<u8> {
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((text.as_str(), ""));
    let mut lines: Vec<String> = Vec::new();
    let mut skipping = false;
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if !skipping {
                lines.push(line.to_owned());
            }
            continue;
        }
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        skipping = name == "from" || (drop_bcc && name == "bcc");
        if !skipping {
            lines.push(line.to_owned());
        }
    }
    lines.insert(0, format!("From: {from}"));
    if !lines
        .iter()
        .any(|l| l.to_ascii_lowercase().starts_with("date:"))
    {
        lines.push(format!("Date: {}", chrono::Utc::now().to_rfc2822()));
    }
    format!(
        "{}\r\n\r\n{}",
        lines.join("\r\n"),
        body.replace('\n', "\r\n")
    )
    .into_bytes()
}

fn bounce(to: &str, missing: &str) -> Vec<u8> {
    format!(
        "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\r\nTo: {to}\r\nSubject: Delivery Status Notification (Failure)\r\nDate: {}\r\nContent-Type: text/plain; charset=\"UTF-8\"\r\n\r\nAddress not found\r\n\r\nYour message wasn't delivered to {missing} because the address couldn't be found, or is unable to receive mail.\r\n",
        chrono::Utc::now().to_rfc2822()
    )
    .into_bytes()
}

pub(super) async fn send(
    State(sb): State<Shared>,
    headers: HeaderMap,
    Path(user): Path<String>,
    body: bytes::Bytes,
) -> Response {
    let owner = match sb
        .google
        .authorize(&headers, &SEND)
        .and_then(|g| sb.google.owner_of(&g, &user))
    {
        Ok(o) => o,
        Err(r) => return r,
    };
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalidArgument",
            "Invalid JSON payload received.",
        );
    };
    let Some(raw_b64) = v["raw"].as_str() else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalidArgument",
            "'raw' RFC822 payload message string or uploading message via /upload/* URL required",
        );
    };
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw_b64.trim_end_matches('='))
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(raw_b64));
    let Ok(raw) = decoded else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalidArgument",
            "Invalid value for ByteString",
        );
    };
    let recipients = mail::parse(&raw).recipients();
    if recipients.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalidArgument",
            "Recipient address required",
        );
    }
    let sent = Stored::new(rewrite_headers(&raw, &owner, false), &["SENT"]);
    let delivered_raw = rewrite_headers(&raw, &owner, true);
    let mut state = lock(&sb.google.state);
    for recipient in &recipients {
        let active = state.users.get(recipient).is_some_and(|u| !u.suspended);
        if active {
            let copy = Stored::new(delivered_raw.clone(), &["INBOX", "UNREAD"]);
            state
                .mailboxes
                .entry(recipient.clone())
                .or_default()
                .push(copy);
        } else if recipient.ends_with(&format!("@{}", sb.google.domain)) {
            let notice = Stored::new(bounce(&owner, recipient), &["INBOX", "UNREAD"]);
            state
                .mailboxes
                .entry(owner.clone())
                .or_default()
                .push(notice);
        }
        // Other domains: the mail leaves the sandbox and is not seen again.
    }
    let reply = json!({ "id": sent.id, "threadId": sent.thread_id, "labelIds": sent.labels });
    state.mailboxes.entry(owner).or_default().push(sent);
    Json(reply).into_response()
}

pub(super) async fn list(
    State(sb): State<Shared>,
    headers: HeaderMap,
    Path(user): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let owner = match sb
        .google
        .authorize(&headers, &READ)
        .and_then(|g| sb.google.owner_of(&g, &user))
    {
        Ok(o) => o,
        Err(r) => return r,
    };
    let param = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let labels: Vec<String> = q
        .iter()
        .filter(|(n, _)| n == "labelIds")
        .map(|(_, v)| v.clone())
        .collect();
    let include_spam_trash =
        param("includeSpamTrash") == Some("true") || labels.iter().any(|l| l == "TRASH");
    let max: usize = param("maxResults")
        .and_then(|m| m.parse().ok())
        .unwrap_or(100)
        .clamp(1, 500);
    let offset: usize = param("pageToken").and_then(|t| t.parse().ok()).unwrap_or(0);
    let state = lock(&sb.google.state);
    let mut matching: Vec<&Stored> = state
        .mailboxes
        .get(&owner)
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    matching.retain(|m| {
        labels.iter().all(|l| m.labels.contains(l))
            && (include_spam_trash || !(m.labels.contains("TRASH") || m.labels.contains("SPAM")))
            && param("q").is_none_or(|query| m.matches(query))
    });
    matching.reverse();
    let total = matching.len();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(max)
        .map(|m| json!({ "id": m.id, "threadId": m.thread_id }))
        .collect();
    let mut v = json!({ "resultSizeEstimate": total });
    if !page.is_empty() {
        v["messages"] = json!(page);
    }
    if offset + max < total {
        v["nextPageToken"] = json!((offset + max).to_string());
    }
    Json(v).into_response()
}

pub(super) async fn get(
    State(sb): State<Shared>,
    headers: HeaderMap,
    Path((user, id)): Path<(String, String)>,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let owner = match sb
        .google
        .authorize(&headers, &READ)
        .and_then(|g| sb.google.owner_of(&g, &user))
    {
        Ok(o) => o,
        Err(r) => return r,
    };
    let format = q
        .iter()
        .find(|(n, _)| n == "format")
        .map_or("full", |(_, v)| v.as_str());
    let wanted: Vec<String> = q
        .iter()
        .filter(|(n, _)| n == "metadataHeaders")
        .map(|(_, v)| v.clone())
        .collect();
    let state = lock(&sb.google.state);
    match state
        .mailboxes
        .get(&owner)
        .and_then(|m| m.iter().find(|s| s.id == id))
    {
        Some(m) => Json(m.to_json(format, &wanted)).into_response(),
        None => not_found(),
    }
}

pub(super) async fn trash(
    State(sb): State<Shared>,
    headers: HeaderMap,
    Path((user, id)): Path<(String, String)>,
) -> Response {
    let owner = match sb
        .google
        .authorize(&headers, &MODIFY)
        .and_then(|g| sb.google.owner_of(&g, &user))
    {
        Ok(o) => o,
        Err(r) => return r,
    };
    let mut state = lock(&sb.google.state);
    match state
        .mailboxes
        .get_mut(&owner)
        .and_then(|m| m.iter_mut().find(|s| s.id == id))
    {
        Some(m) => {
            m.labels.insert("TRASH".into());
            m.labels.remove("INBOX");
            m.labels.remove("UNREAD");
            Json(m.to_json("minimal", &[])).into_response()
        }
        None => not_found(),
    }
}

/// Permanent deletion needs the full `https://mail.google.com/` scope.
pub(super) async fn delete(
    State(sb): State<Shared>,
    headers: HeaderMap,
    Path((user, id)): Path<(String, String)>,
) -> Response {
    let owner = match sb
        .google
        .authorize(&headers, &["https://mail.google.com/"])
        .and_then(|g| sb.google.owner_of(&g, &user))
    {
        Ok(o) => o,
        Err(r) => return r,
    };
    let mut state = lock(&sb.google.state);
    let Some(mailbox) = state.mailboxes.get_mut(&owner) else {
        return not_found();
    };
    let before = mailbox.len();
    mailbox.retain(|s| s.id != id);
    if mailbox.len() == before {
        return not_found();
    }
    StatusCode::NO_CONTENT.into_response()
}
