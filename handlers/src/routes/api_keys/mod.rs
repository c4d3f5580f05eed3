//! API keys: create (the key is shown once), list, revoke, rotate.

pub(crate) mod create;
mod list;
mod revoke;
mod rotate;
mod view;

use crate::state::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};

pub use view::{ApiKeyView, NewApiKey};

/// Active keys a user may hold at once.
pub const MAX_ACTIVE_KEYS: usize = 25;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list::list, create::create))
        .routes(routes!(revoke::revoke))
        .routes(routes!(rotate::rotate))
}
