//! The identity's primary calendar (Google Calendar, acting as the identity): list, create,
//! replace, delete events. Event ids come from the caller's own calendar, so an id from anyone
//! else's is 404.

mod create;
mod delete;
mod input;
mod list;
mod update;
mod view;

use crate::error::ApiError;
use crate::state::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};

pub use input::EventRequest;
pub use view::EventView;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list::list, create::create))
        .routes(routes!(update::update, delete::delete))
}

/// A Calendar event id from a path: anything that could not be one is simply not found.
fn event_id(raw: &str) -> Result<&str, ApiError> {
    let plausible = !raw.is_empty()
        && raw.len() <= 1024
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plausible {
        Ok(raw)
    } else {
        Err(ApiError::NotFound("no such event".into()))
    }
}

/// An RFC 3339 instant from `field`, or a 400 naming it.
fn instant(field: &str, raw: &str) -> Result<chrono::DateTime<chrono::FixedOffset>, ApiError> {
    chrono::DateTime::parse_from_rfc3339(raw.trim()).map_err(|_| {
        ApiError::bad_field(
            field,
            format!("`{raw}` is not an RFC 3339 time, e.g. 2026-11-22T15:00:00Z"),
        )
    })
}
