//! SMS received on the identity's number (stored by the Telnyx webhook; Signal codes excluded).

mod list;

use crate::state::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list::list))
}
