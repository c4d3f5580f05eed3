//! The identity's mailbox (Gmail, acting as the identity's Workspace address): send, list the
//! inbox, read one message, move one to the trash. Message ids come from the caller's own
//! mailbox, so an id from anyone else's is 404.

mod delete;
mod get;
mod inbox;
mod send;
mod view;

use crate::error::ApiError;
use crate::state::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};

pub use view::{MessageSummary, MessageView};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send::send))
        .routes(routes!(inbox::inbox))
        .routes(routes!(get::get, delete::delete))
}

/// A Gmail message id from a path: anything that could not be one is simply not found.
fn message_id(raw: &str) -> Result<&str, ApiError> {
    let plausible = !raw.is_empty()
        && raw.len() <= 256
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plausible {
        Ok(raw)
    } else {
        Err(ApiError::NotFound("no such message".into()))
    }
}
