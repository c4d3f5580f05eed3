//! Calendar API v3 events on a user's primary calendar
//! (`/calendar/v3/calendars/{calendarId}/events`): list, insert, update, delete.

use super::{as_user, GoogleClient, GoogleError};
use crate::http::Repeat;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A start or end: `dateTime` (RFC 3339) for timed events, `date` (yyyy-mm-dd) for all-day.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EventTime {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EventAttendee {
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<String>,
}

/// The writable fields of an event. `id`, when given, makes an insert idempotent: Calendar
/// answers 409 for an id that exists (see [`event_id_for`]).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EventInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    pub start: EventTime,
    pub end: EventTime,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attendees: Vec<EventAttendee>,
}

/// An `Event` resource (the fields Dex uses).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub start: EventTime,
    #[serde(default)]
    pub end: EventTime,
    #[serde(default)]
    pub attendees: Vec<EventAttendee>,
    #[serde(default)]
    pub html_link: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub updated: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventPage {
    #[serde(default)]
    pub items: Vec<Event>,
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// Filters for `events.list`; times are RFC 3339.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub time_min: Option<String>,
    pub time_max: Option<String>,
    pub max_results: Option<u32>,
    pub page_token: Option<String>,
}

/// A valid Calendar event id (base32hex characters `0-9a-v`, 5–1024 long) derived from a
/// caller's idempotency key, so the same request creates the same event once.
pub fn event_id_for(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn events(user: &str) -> [&str; 5] {
    ["calendar", "v3", "calendars", user, "events"]
}

impl GoogleClient {
    /// Events on `user`'s primary calendar, expanded into single instances and ordered by start.
    pub async fn list_events(
        &self,
        user: &str,
        query: &EventQuery,
    ) -> Result<EventPage, GoogleError> {
        let mut params: Vec<(&str, String)> = vec![
            ("singleEvents", "true".into()),
            ("orderBy", "startTime".into()),
        ];
        if let Some(t) = &query.time_min {
            params.push(("timeMin", t.clone()));
        }
        if let Some(t) = &query.time_max {
            params.push(("timeMax", t.clone()));
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
            &events(user),
            &params,
            None,
            Repeat::Safe,
        )
        .await
    }

    /// Inserts an event. With `input.id` set the call is repeated safely and a 409 comes back as
    /// `GoogleError::AlreadyExists`; without it a timeout is not repeated (it could duplicate).
    pub async fn insert_event(&self, user: &str, input: &EventInput) -> Result<Event, GoogleError> {
        let body = serde_json::to_value(input).map_err(|e| GoogleError::Decode(e.to_string()))?;
        let repeat = if input.id.is_some() {
            Repeat::Safe
        } else {
            Repeat::OnlyIfNotDelivered
        };
        self.call_json(
            as_user(user),
            Method::POST,
            &events(user),
            &[],
            Some(&body),
            repeat,
        )
        .await
    }

    /// Replaces the event's writable fields (`events.update`).
    pub async fn update_event(
        &self,
        user: &str,
        event_id: &str,
        input: &EventInput,
    ) -> Result<Event, GoogleError> {
        let mut body =
            serde_json::to_value(input).map_err(|e| GoogleError::Decode(e.to_string()))?;
        if let Some(obj) = body.as_object_mut() {
            obj.remove("id");
        }
        self.call_json(
            as_user(user),
            Method::PUT,
            &[&events(user)[..], &[event_id]].concat(),
            &[],
            Some(&body),
            Repeat::Safe,
        )
        .await
    }

    /// `GoogleError::NotFound` when there is no such event (or it was deleted already: 410).
    pub async fn delete_event(&self, user: &str, event_id: &str) -> Result<(), GoogleError> {
        self.call(
            as_user(user),
            Method::DELETE,
            &[&events(user)[..], &[event_id]].concat(),
            &[],
            None,
            Repeat::Safe,
        )
        .await
        .map(drop)
    }
}
