//! The caller's identity: addresses, Signal state, and provisioning progress.

mod channels;
mod get;
mod status;
mod view;

use crate::state::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};

pub use view::{load, IdentityView, SignalView};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get::identity))
        .routes(routes!(status::status))
        .routes(routes!(channels::email))
        .routes(routes!(channels::phone))
        .routes(routes!(channels::signal))
}
