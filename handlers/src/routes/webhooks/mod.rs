//! Provider webhooks: verify the signature, record the event id once, hand the work over
//! (to Restate, with the event id as idempotency key), answer.

mod stripe;
mod stripe_event;
mod telnyx;

use crate::state::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(telnyx::telnyx))
        .routes(routes!(stripe::stripe_webhook))
}
