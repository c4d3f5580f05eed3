//! Operator endpoints, behind `Authorization: Bearer $ADMIN_TOKEN`.

mod identities;
mod provision;
mod signal;
mod usage;
mod users;
mod workflows;

use crate::state::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(users::list_users))
        .routes(routes!(usage::usage))
        .routes(routes!(provision::provision))
        .routes(routes!(identities::retry))
        .routes(routes!(identities::deprovision))
        .routes(routes!(signal::code))
        .routes(routes!(signal::captcha))
        .routes(routes!(workflows::workflows))
}
