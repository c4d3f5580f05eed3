//! signal-cli-rest-api emulator under `/signal`: register, verify, send, receive, unregister,
//! contacts, accounts. Registering a number texts "Your Signal code: 123-456" to it through the
//! sandbox's Telnyx, so a number the sandbox account owns gets its code as a signed
//! `message.received` webhook and the registration loop closes with no human. Errors are
//! 400 `{"error": "<signal-cli message>"}` as signal-cli-rest-api answers them; the messages
//! follow signal-cli's wording where known and are otherwise guessed.
//!
//! Like signal-cli, an account keeps what was sent to it until a receive hands it out (each
//! message once). Tests inject a message from the outside world with `deliver_inbound`
//! (`POST /_sandbox/signal/inbound`). Envelope timestamps are distinct per sandbox, as a
//! sender's client keeps them distinct, so (sender, timestamp) identifies a message.

use crate::{lock, Shared};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

/// Where the verification SMS comes from (a made-up short-code-like number).
pub(crate) const CODE_SENDER: &str = "+18335550142";

#[derive(Default)]
pub(crate) struct Signal {
    state: Mutex<State_>,
}

#[derive(Default)]
struct State_ {
    accounts: BTreeMap<String, Account>,
    captcha_required: bool,
    /// The last envelope timestamp handed out (each new one is later).
    last_timestamp: i64,
}

impl State_ {
    /// Now in ms, but always after the previous envelope's timestamp.
    fn next_timestamp(&mut self) -> i64 {
        let now = chrono::Utc::now().timestamp_millis();
        self.last_timestamp = now.max(self.last_timestamp + 1);
        self.last_timestamp
    }
}

fn envelope(from: &str, from_uuid: &str, to: &str, timestamp: i64, text: &str) -> Value {
    json!({
        "envelope": {
            "source": from,
            "sourceNumber": from,
            "sourceUuid": from_uuid,
            "sourceName": "",
            "sourceDevice": 1,
            "timestamp": timestamp,
            "serverReceivedTimestamp": timestamp,
            "serverDeliveredTimestamp": timestamp,
            "dataMessage": {
                "timestamp": timestamp,
                "message": text,
                "expiresInSeconds": 0,
                "viewOnce": false,
            },
        },
        "account": to,
    })
}

struct Account {
    uuid: String,
    registered: bool,
    /// The code of the registration in progress.
    pending_code: Option<String>,
    /// The code that completed the registration (a repeated verify with it succeeds).
    verified_code: Option<String>,
    inbox: VecDeque<Value>,
    /// Numbers this account has exchanged messages with.
    contacts: BTreeMap<String, String>,
}

fn fail(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}

fn is_e164(s: &str) -> bool {
    s.strip_prefix('+')
        .is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

pub(crate) fn router(sandbox: Shared) -> Router {
    Router::new()
        .route("/v1/about", get(about))
        .route("/v1/accounts", get(accounts))
        .route("/v1/register/{number}", post(register))
        .route("/v1/register/{number}/verify/{token}", post(verify))
        .route("/v1/unregister/{number}", post(unregister))
        .route("/v2/send", post(send))
        .route("/v1/receive/{number}", get(receive))
        .route("/v1/contacts/{number}", get(contacts))
        .with_state(sandbox)
}

impl Signal {
    pub fn reset(&self) {
        *lock(&self.state) = State_::default();
    }

    pub fn set_captcha_required(&self, required: bool) {
        lock(&self.state).captcha_required = required;
    }

    /// A message from someone outside the sandbox to the registered account `to`; it waits in
    /// the account's inbox until a receive. The envelope timestamp, or None when `to` is not a
    /// registered account.
    pub fn deliver_inbound(&self, from: &str, to: &str, text: &str) -> Option<i64> {
        let mut state = lock(&self.state);
        if !state.accounts.get(to).is_some_and(|a| a.registered) {
            return None;
        }
        let timestamp = state.next_timestamp();
        let account = state.accounts.get_mut(to)?;
        let from_uuid = account
            .contacts
            .get(from)
            .cloned()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        account
            .inbox
            .push_back(envelope(from, &from_uuid, to, timestamp, text));
        account.contacts.insert(from.to_owned(), from_uuid);
        Some(timestamp)
    }

    pub fn accounts_snapshot(&self) -> Vec<Value> {
        lock(&self.state)
            .accounts
            .iter()
            .map(|(number, a)| {
                json!({
                    "number": number,
                    "uuid": a.uuid,
                    "registered": a.registered,
                    "verification_pending": a.pending_code.is_some(),
                    "pending_messages": a.inbox.len(),
                })
            })
            .collect()
    }
}

async fn about() -> Response {
    Json(json!({
        "versions": ["v1", "v2"],
        "build": 2,
        "mode": "normal",
        "version": "sandbox",
        "capabilities": { "v2/send": ["quotes", "mentions"] },
    }))
    .into_response()
}

async fn accounts(State(sb): State<Shared>) -> Response {
    let state = lock(&sb.signal.state);
    let numbers: Vec<&String> = state
        .accounts
        .iter()
        .filter(|(_, a)| a.registered)
        .map(|(n, _)| n)
        .collect();
    Json(json!(numbers)).into_response()
}

#[derive(Deserialize, Default)]
struct RegisterRequest {
    #[serde(default)]
    captcha: Option<String>,
    #[serde(default)]
    use_voice: bool,
}

async fn register(
    State(sb): State<Shared>,
    Path(number): Path<String>,
    body: bytes::Bytes,
) -> Response {
    let req: RegisterRequest = if body.is_empty() {
        RegisterRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(_) => return fail("Couldn't process request - invalid request."),
        }
    };
    if !is_e164(&number) {
        return fail("Invalid account (phone number), make sure you include the country code.");
    }
    let code = {
        let mut state = lock(&sb.signal.state);
        if state.captcha_required && req.captcha.as_deref().is_none_or(str::is_empty) {
            return fail(
                "Captcha required for verification, use --captcha CAPTCHA\nTo get the token, go to https://signalcaptchas.org/registration/generate.html",
            );
        }
        let account = state
            .accounts
            .entry(number.clone())
            .or_insert_with(|| Account {
                uuid: uuid::Uuid::new_v4().to_string(),
                registered: false,
                pending_code: None,
                verified_code: None,
                inbox: VecDeque::new(),
                contacts: BTreeMap::new(),
            });
        // A repeated request while one is pending re-sends the same code.
        account
            .pending_code
            .get_or_insert_with(|| format!("{:06}", rand::random::<u32>() % 1_000_000))
            .clone()
    };
    // The sandbox cannot place voice calls: the code always comes by SMS.
    let _ = req.use_voice;
    let text = format!(
        "Your Signal code: {}-{}. Do not share this code\n\ndoDLxYFBFJ8",
        &code[..3],
        &code[3..]
    );
    sb.telnyx.deliver_inbound(CODE_SENDER, &number, &text);
    StatusCode::CREATED.into_response()
}

async fn verify(
    State(sb): State<Shared>,
    Path((number, token)): Path<(String, String)>,
) -> Response {
    let token: String = token.chars().filter(char::is_ascii_digit).collect();
    let mut state = lock(&sb.signal.state);
    let Some(account) = state.accounts.get_mut(&number) else {
        return fail("Verification failed! No registration in progress for this number.");
    };
    if account.pending_code.as_deref() == Some(token.as_str()) {
        account.registered = true;
        account.verified_code = account.pending_code.take();
        return StatusCode::CREATED.into_response();
    }
    if account.registered
        && account.pending_code.is_none()
        && account.verified_code.as_deref() == Some(token.as_str())
    {
        return StatusCode::CREATED.into_response();
    }
    fail("Verification failed! Invalid verification code")
}

async fn unregister(
    State(sb): State<Shared>,
    Path(number): Path<String>,
    body: bytes::Bytes,
) -> Response {
    // `{"delete_account", "delete_local_data"}`: either way the sandbox forgets the account.
    if !body.is_empty() && serde_json::from_slice::<Value>(&body).is_err() {
        return fail("Couldn't process request - invalid request.");
    }
    match lock(&sb.signal.state).accounts.remove(&number) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => fail(&format!("User {number} is not registered.")),
    }
}

#[derive(Deserialize)]
struct SendRequest {
    #[serde(default)]
    number: String,
    #[serde(default)]
    recipients: Vec<String>,
    #[serde(default)]
    message: String,
}

async fn send(State(sb): State<Shared>, body: bytes::Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<SendRequest>(&body) else {
        return fail("Couldn't process request - invalid request");
    };
    if req.recipients.is_empty() {
        return fail("Couldn't process request - please provide at least one recipient");
    }
    let mut state = lock(&sb.signal.state);
    let timestamp = state.next_timestamp();
    let sender_uuid = match state.accounts.get(&req.number) {
        Some(a) if a.registered => a.uuid.clone(),
        _ => return fail(&format!("User {} is not registered.", req.number)),
    };
    if let Some(unknown) = req
        .recipients
        .iter()
        .find(|r| !state.accounts.get(*r).is_some_and(|a| a.registered))
    {
        return fail(&format!(
            "Failed to send message: {unknown}: Unregistered user"
        ));
    }
    for recipient in &req.recipients {
        let envelope = envelope(
            &req.number,
            &sender_uuid,
            recipient,
            timestamp,
            &req.message,
        );
        let recipient_uuid = state
            .accounts
            .get(recipient)
            .map(|a| a.uuid.clone())
            .unwrap_or_default();
        if let Some(account) = state.accounts.get_mut(recipient) {
            account.inbox.push_back(envelope);
            account
                .contacts
                .insert(req.number.clone(), sender_uuid.clone());
        }
        if let Some(sender) = state.accounts.get_mut(&req.number) {
            sender.contacts.insert(recipient.clone(), recipient_uuid);
        }
    }
    (
        StatusCode::CREATED,
        Json(json!({ "timestamp": timestamp.to_string() })),
    )
        .into_response()
}

async fn receive(State(sb): State<Shared>, Path(number): Path<String>) -> Response {
    let mut state = lock(&sb.signal.state);
    match state.accounts.get_mut(&number) {
        Some(a) if a.registered => {
            let messages: Vec<Value> = a.inbox.drain(..).collect();
            Json(json!(messages)).into_response()
        }
        _ => fail(&format!("User {number} is not registered.")),
    }
}

async fn contacts(State(sb): State<Shared>, Path(number): Path<String>) -> Response {
    let state = lock(&sb.signal.state);
    match state.accounts.get(&number) {
        Some(a) if a.registered => {
            let list: Vec<Value> = a
                .contacts
                .iter()
                .map(|(n, uuid)| {
                    json!({
                        "number": n, "uuid": uuid, "name": "", "profile_name": "",
                        "username": "", "color": "", "blocked": false, "message_expiration": "0",
                    })
                })
                .collect();
            Json(json!(list)).into_response()
        }
        _ => fail(&format!("User {number} is not registered.")),
    }
}
