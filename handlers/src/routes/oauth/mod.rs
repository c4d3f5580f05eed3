//! OAuth connect: metadata (RFC 8414), the authorization endpoint with its pages (sign up or
//! log in, plan, payment, live provisioning, consent), token and revocation endpoints.

mod authorize;
mod authorize_pages;
mod metadata;
mod revoke;
mod token;

use crate::state::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Pages a browser sees (they need the portal's cookies and headers).
pub fn browser_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(authorize::show, authorize::decide))
}

/// Endpoints Dex calls directly.
pub fn client_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(metadata::metadata))
        .routes(routes!(token::token))
        .routes(routes!(revoke::revoke))
}

pub use authorize::BACK_FROM_CHECKOUT;
pub use authorize_pages::{plan_cards, PlanCard};
