//! Calendar API v3 events on a user's primary calendar: list (time window, order by start,
//! paging), insert (client-chosen ids honoured: 409 when taken), get, update, delete (a
//! deleted event stays as `cancelled`; deleting it again is 410).

use super::{error, Google};
use crate::{lock, now_rfc3339, Shared};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;

const SCOPES: [&str; 2] = [
    "https://www.googleapis.com/auth/calendar",
    "https://www.googleapis.com/auth/calendar.events",
];
const READ_SCOPES: [&str; 4] = [
    "https://www.googleapis.com/auth/calendar",
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/calendar.readonly",
    "https://www.googleapis.com/auth/calendar.events.readonly",
];

/// The fields a client may write.
const WRITABLE: [&str; 9] = [
    "summary",
    "description",
    "location",
    "start",
    "end",
    "attendees",
    "reminders",
    "recurrence",
    "transparency",
];

fn instant(t: &Value) -> Option<DateTime<Utc>> {
    if let Some(dt) = t["dateTime"].as_str() {
        return DateTime::parse_from_rfc3339(dt)
            .ok()
            .map(|d| d.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(t["date"].as_str()?, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc())
}

fn valid_id(id: &str) -> bool {
    (5..=1024).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b))
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "notFound", "Not Found")
}

fn deleted() -> Response {
    error(StatusCode::GONE, "deleted", "Resource has been deleted")
}

fn bad(reason: &str, message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, reason, message)
}

/// Checks start/end of a written event; the error names what is wrong.
fn check_times(v: &Value) -> Result<(), Response> {
    let Some(start) = instant(&v["start"]) else {
        return Err(bad("required", "Missing start time."));
    };
    let Some(end) = instant(&v["end"]) else {
        return Err(bad("required", "Missing end time."));
    };
    if end < start {
        return Err(bad("timeRangeEmpty", "The specified time range is empty."));
    }
    Ok(())
}

impl Google {
    fn calendar_owner(
        &self,
        headers: &HeaderMap,
        calendar: &str,
        scopes: &[&str],
    ) -> Result<String, Response> {
        let grant = self.authorize(headers, scopes)?;
        self.owner_of(&grant, calendar).map_err(|_| not_found())
    }
}

pub(super) async fn list(
    State(sb): State<Shared>,
    headers: HeaderMap,
    Path(calendar): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let owner = match sb.google.calendar_owner(&headers, &calendar, &READ_SCOPES) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let parse = |k: &str| {
        q.get(k)
            .map(|v| DateTime::parse_from_rfc3339(v).map(|d| d.with_timezone(&Utc)))
    };
    let (time_min, time_max) = match (parse("timeMin").transpose(), parse("timeMax").transpose()) {
        (Ok(a), Ok(b)) => (a, b),
        _ => return bad("badRequest", "Bad Request"),
    };
    let show_deleted = q.get("showDeleted").is_some_and(|v| v == "true");
    let max: usize = q
        .get("maxResults")
        .and_then(|m| m.parse().ok())
        .unwrap_or(250)
        .clamp(1, 2500);
    let offset: usize = q.get("pageToken").and_then(|t| t.parse().ok()).unwrap_or(0);
    let state = lock(&sb.google.state);
    let mut items: Vec<&Value> = state
        .calendars
        .get(&owner)
        .map(|c| c.values().collect())
        .unwrap_or_default();
    items.retain(|e| {
        let start = instant(&e["start"]);
        let end = instant(&e["end"]);
        (show_deleted || e["status"] != "cancelled")
            && time_min.is_none_or(|min| end.is_some_and(|end| end > min))
            && time_max.is_none_or(|max| start.is_some_and(|start| start < max))
    });
    items.sort_by_key(|e| instant(&e["start"]));
    let total = items.len();
    let page: Vec<&Value> = items.into_iter().skip(offset).take(max).collect();
    let mut v = json!({
        "kind": "calendar#events",
        "summary": owner,
        "timeZone": "UTC",
        "updated": now_rfc3339(),
        "accessRole": "owner",
        "items": page,
    });
    if offset + max < total {
        v["nextPageToken"] = json!((offset + max).to_string());
    }
    Json(v).into_response()
}

pub(super) async fn insert(
    State(sb): State<Shared>,
    headers: HeaderMap,
    Path(calendar): Path<String>,
    body: bytes::Bytes,
) -> Response {
    let owner = match sb.google.calendar_owner(&headers, &calendar, &SCOPES) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let Ok(input) = serde_json::from_slice::<Value>(&body) else {
        return bad("parseError", "Parse Error");
    };
    if let Err(r) = check_times(&input) {
        return r;
    }
    let id = match input["id"].as_str() {
        Some(id) if !valid_id(id) => return bad("invalid", "Invalid resource id value."),
        Some(id) => id.to_owned(),
        None => format!("{:026x}", rand::random::<u128>() >> 24),
    };
    let mut state = lock(&sb.google.state);
    let events = state.calendars.entry(owner.clone()).or_default();
    if events.contains_key(&id) {
        return error(
            StatusCode::CONFLICT,
            "duplicate",
            "The requested identifier already exists.",
        );
    }
    let now = now_rfc3339();
    let mut event = json!({
        "kind": "calendar#event",
        "etag": format!("\"{}\"", chrono::Utc::now().timestamp_millis()),
        "id": id,
        "status": "confirmed",
        "htmlLink": format!("https://www.google.com/calendar/event?eid={id}"),
        "created": now,
        "updated": now,
        "creator": { "email": owner, "self": true },
        "organizer": { "email": owner, "self": true },
        "iCalUID": format!("{id}@google.com"),
        "sequence": 0,
        "eventType": "default",
        "reminders": { "useDefault": true },
    });
    for field in WRITABLE {
        if !input[field].is_null() {
            event[field] = input[field].clone();
        }
    }
    events.insert(id, event.clone());
    Json(event).into_response()
}

pub(super) async fn get(
    State(sb): State<Shared>,
    headers: HeaderMap,
    Path((calendar, id)): Path<(String, String)>,
) -> Response {
    let owner = match sb.google.calendar_owner(&headers, &calendar, &READ_SCOPES) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let state = lock(&sb.google.state);
    match state.calendars.get(&owner).and_then(|c| c.get(&id)) {
        Some(e) => Json(e).into_response(),
        None => not_found(),
    }
}

/// `events.update`: the writable fields are replaced by the body's.
pub(super) async fn update(
    State(sb): State<Shared>,
    headers: HeaderMap,
    Path((calendar, id)): Path<(String, String)>,
    body: bytes::Bytes,
) -> Response {
    let owner = match sb.google.calendar_owner(&headers, &calendar, &SCOPES) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let Ok(input) = serde_json::from_slice::<Value>(&body) else {
        return bad("parseError", "Parse Error");
    };
    if let Err(r) = check_times(&input) {
        return r;
    }
    let mut state = lock(&sb.google.state);
    let Some(event) = state.calendars.get_mut(&owner).and_then(|c| c.get_mut(&id)) else {
        return not_found();
    };
    if event["status"] == "cancelled" {
        return deleted();
    }
    for field in WRITABLE {
        match input.get(field) {
            Some(v) => event[field] = v.clone(),
            None => {
                if let Some(obj) = event.as_object_mut() {
                    obj.remove(field);
                }
            }
        }
    }
    event["updated"] = json!(now_rfc3339());
    event["sequence"] = json!(event["sequence"].as_i64().unwrap_or(0) + 1);
    Json(event.clone()).into_response()
}

pub(super) async fn delete(
    State(sb): State<Shared>,
    headers: HeaderMap,
    Path((calendar, id)): Path<(String, String)>,
) -> Response {
    let owner = match sb.google.calendar_owner(&headers, &calendar, &SCOPES) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let mut state = lock(&sb.google.state);
    let Some(event) = state.calendars.get_mut(&owner).and_then(|c| c.get_mut(&id)) else {
        return not_found();
    };
    if event["status"] == "cancelled" {
        return deleted();
    }
    event["status"] = json!("cancelled");
    event["updated"] = json!(now_rfc3339());
    StatusCode::NO_CONTENT.into_response()
}
