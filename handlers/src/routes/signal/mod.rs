//! Signal on the identity's number (signal-cli-rest-api): send, fetch received messages, list
//! contacts. Needs the identity active and Signal registered on its number (409 otherwise).

mod contacts;
mod messages;
mod send;

use crate::state::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send::send))
        .routes(routes!(messages::messages))
        .routes(routes!(contacts::contacts))
}
