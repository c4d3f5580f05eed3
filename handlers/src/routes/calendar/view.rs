//! How an event is shown to Dex.

use providers::google::{Event, EventTime};
use utoipa::ToSchema;

#[derive(serde::Serialize, ToSchema)]
pub struct EventView {
    pub id: String,
    /// confirmed, tentative or cancelled
    pub status: String,
    pub summary: String,
    pub description: Option<String>,
    pub location: Option<String>,
    /// RFC 3339 (or a date, yyyy-mm-dd, for an all-day event made elsewhere).
    pub start: Option<String>,
    pub end: Option<String>,
    pub attendees: Vec<String>,
    pub html_link: Option<String>,
    pub created: Option<String>,
    pub updated: Option<String>,
}

fn when(t: EventTime) -> Option<String> {
    t.date_time.or(t.date)
}

impl From<Event> for EventView {
    fn from(e: Event) -> Self {
        Self {
            id: e.id,
            status: e.status,
            summary: e.summary,
            description: e.description,
            location: e.location,
            start: when(e.start),
            end: when(e.end),
            attendees: e.attendees.into_iter().map(|a| a.email).collect(),
            html_link: e.html_link,
            created: e.created,
            updated: e.updated,
        }
    }
}
