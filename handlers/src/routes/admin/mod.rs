//! Operator endpoints, behind `Authorization: Bearer $ADMIN_TOKEN`.

mod identities;
mod provision;
mod signal;
mod signal_receivers;
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
        .routes(routes!(signal_receivers::stale))
        .routes(routes!(signal_receivers::start_receiver))
        .routes(routes!(workflows::workflows))
}

/// A page size from `?limit=`: 1 to 200, default 50.
pub(crate) fn page_limit(limit: Option<i64>) -> Result<i64, crate::error::ApiError> {
    let limit = limit.unwrap_or(50);
    if (1..=200).contains(&limit) {
        Ok(limit)
    } else {
        Err(crate::error::ApiError::bad_field(
            "limit",
            "limit must be between 1 and 200",
        ))
    }
}
