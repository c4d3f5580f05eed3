//! `/v2/messaging_profiles` and `POST /v2/messages`. A message to another number of the
//! account is delivered to it as an inbound SMS; messages to other numbers are accepted and go
//! nowhere. Delivery-status webhooks (`message.sent`, `message.finalized`) are not emulated.

use super::numbers::ensure_profile;
use super::{error, invalid, is_e164, not_found, Profile};
use crate::{lock, now_rfc3339, Shared};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

fn profile_json(p: &Profile) -> Value {
    json!({
        "record_type": "messaging_profile",
        "id": p.id,
        "name": p.name,
        "enabled": true,
        "webhook_url": p.webhook_url,
        "webhook_failover_url": p.webhook_failover_url,
        "webhook_api_version": "2",
        "whitelisted_destinations": ["US"],
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    })
}

#[derive(Deserialize)]
pub(super) struct ProfileUpdate {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    webhook_url: Option<String>,
    #[serde(default)]
    webhook_failover_url: Option<String>,
}

pub(super) async fn create_profile(State(sb): State<Shared>, body: bytes::Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<ProfileUpdate>(&body) else {
        return invalid("/", "The request body is not valid JSON.");
    };
    let Some(name) = req.name.filter(|n| !n.is_empty()) else {
        return invalid("/name", "name is required.");
    };
    let now = now_rfc3339();
    let id = uuid::Uuid::new_v4().to_string();
    let profile = Profile {
        id: id.clone(),
        name,
        webhook_url: req.webhook_url,
        webhook_failover_url: req.webhook_failover_url,
        created_at: now.clone(),
        updated_at: now,
    };
    let body = json!({ "data": profile_json(&profile) });
    lock(&sb.telnyx.state).profiles.insert(id, profile);
    (StatusCode::OK, Json(body)).into_response()
}

pub(super) async fn get_profile(State(sb): State<Shared>, Path(id): Path<String>) -> Response {
    match lock(&sb.telnyx.state).profiles.get(&id) {
        Some(p) => Json(json!({ "data": profile_json(p) })).into_response(),
        None => not_found(),
    }
}

pub(super) async fn update_profile(
    State(sb): State<Shared>,
    Path(id): Path<String>,
    body: bytes::Bytes,
) -> Response {
    let Ok(req) = serde_json::from_slice::<ProfileUpdate>(&body) else {
        return invalid("/", "The request body is not valid JSON.");
    };
    let now = now_rfc3339();
    let mut state = lock(&sb.telnyx.state);
    ensure_profile(&mut state.profiles, &id, &now);
    let Some(profile) = state.profiles.get_mut(&id) else {
        return not_found();
    };
    if let Some(url) = req.webhook_url {
        profile.webhook_url = Some(url).filter(|u| !u.is_empty());
    }
    if let Some(url) = req.webhook_failover_url {
        profile.webhook_failover_url = Some(url).filter(|u| !u.is_empty());
    }
    profile.updated_at = now;
    Json(json!({ "data": profile_json(profile) })).into_response()
}

#[derive(Deserialize)]
pub(super) struct SendRequest {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    messaging_profile_id: Option<String>,
    #[serde(default)]
    webhook_url: Option<String>,
}

pub(super) async fn send(State(sb): State<Shared>, body: bytes::Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<SendRequest>(&body) else {
        return invalid("/", "The request body is not valid JSON.");
    };
    if !is_e164(&req.to) {
        return invalid(
            "/to",
            "The 'to' address should be a phone number in +E.164 format.",
        );
    }
    let Some(text) = req.text.filter(|t| !t.is_empty()) else {
        return invalid("/text", "text is required for SMS messages.");
    };
    let profile_id = {
        let state = lock(&sb.telnyx.state);
        match state.numbers.values().find(|n| n.phone_number == req.from) {
            Some(n) => n.messaging_profile_id.clone().or(req.messaging_profile_id.clone()),
            // Guessed code; the title and detail follow Telnyx's wording for this case.
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "40305",
                    "Invalid 'from' address",
                    "The 'from' address should be a phone number in +E.164 format that is associated with a messaging profile.",
                )
            }
        }
    };
    if text.chars().count() > 1600 {
        return invalid("/text", "The message text exceeds 1600 characters.");
    }
    let delivered = sb.telnyx.deliver_inbound(&req.from, &req.to, &text);
    let now = now_rfc3339();
    let parts = text.chars().count().div_ceil(160).max(1);
    let message = json!({
        "record_type": "message",
        "direction": "outbound",
        "id": uuid::Uuid::new_v4().to_string(),
        "type": "SMS",
        "messaging_profile_id": profile_id,
        "organization_id": "sandbox",
        "from": { "phone_number": req.from, "carrier": "TELNYX LLC", "line_type": "VoIP" },
        "to": [{ "phone_number": req.to, "status": "queued",
                 "carrier": if delivered { "TELNYX LLC" } else { "SANDBOX WIRELESS" },
                 "line_type": if delivered { "VoIP" } else { "Wireless" } }],
        "cc": [],
        "text": text,
        "media": [],
        "webhook_url": req.webhook_url,
        "webhook_failover_url": null,
        "encoding": "GSM-7",
        "parts": parts,
        "tags": [],
        "cost": null,
        "received_at": now,
        "sent_at": null,
        "completed_at": null,
        "valid_until": null,
        "errors": [],
    });
    Json(json!({ "data": message })).into_response()
}
