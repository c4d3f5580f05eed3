//! The body of a create or replace, checked and turned into Calendar's event fields.

use super::instant;
use crate::error::{ApiError, ApiResult};
use providers::google::{EventAttendee, EventInput, EventTime};
use utoipa::ToSchema;

const MAX_SUMMARY_CHARS: usize = 1024;
const MAX_DESCRIPTION_CHARS: usize = 8192;
const MAX_LOCATION_CHARS: usize = 1024;
const MAX_ATTENDEES: usize = 50;

#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventRequest {
    /// Title, 1 to 1024 characters.
    summary: String,
    /// At most 8192 characters.
    description: Option<String>,
    /// At most 1024 characters.
    location: Option<String>,
    /// RFC 3339, e.g. `2026-11-22T15:00:00Z`.
    start: String,
    /// RFC 3339, after `start`.
    end: String,
    /// Email addresses to invite (at most 50).
    #[serde(default)]
    attendees: Vec<String>,
}

fn at_most(field: &str, value: &str, max: usize) -> ApiResult<()> {
    if value.chars().count() > max {
        return Err(ApiError::bad_field(
            field,
            format!("at most {max} characters"),
        ));
    }
    Ok(())
}

impl EventRequest {
    /// The Calendar fields, or a 400 naming the first bad field.
    pub fn into_input(self) -> ApiResult<EventInput> {
        if self.summary.trim().is_empty() {
            return Err(ApiError::bad_field("summary", "must not be empty"));
        }
        at_most("summary", &self.summary, MAX_SUMMARY_CHARS)?;
        if let Some(d) = &self.description {
            at_most("description", d, MAX_DESCRIPTION_CHARS)?;
        }
        if let Some(l) = &self.location {
            at_most("location", l, MAX_LOCATION_CHARS)?;
        }
        let start = instant("start", &self.start)?;
        let end = instant("end", &self.end)?;
        if end <= start {
            return Err(ApiError::bad_field("end", "must be after start"));
        }
        if self.attendees.len() > MAX_ATTENDEES {
            return Err(ApiError::bad_field(
                "attendees",
                format!("at most {MAX_ATTENDEES}"),
            ));
        }
        let attendees = self
            .attendees
            .iter()
            .map(|a| {
                domain::Email::parse(a)
                    .map(|e| EventAttendee {
                        email: e.as_str().to_owned(),
                        response_status: None,
                    })
                    .map_err(|e| ApiError::bad_field("attendees", e.0))
            })
            .collect::<ApiResult<Vec<_>>>()?;
        let time = |t: chrono::DateTime<chrono::FixedOffset>| EventTime {
            date_time: Some(t.to_rfc3339()),
            date: None,
            time_zone: None,
        };
        Ok(EventInput {
            id: None,
            summary: self.summary,
            description: self.description,
            location: self.location,
            start: time(start),
            end: time(end),
            attendees,
        })
    }
}
