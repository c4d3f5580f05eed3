//! Usage of the current period (calendar month, UTC): totals, by model, recent requests, the
//! included tokens left; and the operator's UsageSync re-run.

mod admin_sync;
mod remaining;
mod summary;

use crate::state::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(summary::usage))
        .routes(routes!(remaining::remaining))
        .routes(routes!(admin_sync::rerun))
}

/// This period: the current calendar month (UTC) and its bounds.
pub(crate) fn this_period() -> (
    domain::Month,
    chrono::DateTime<chrono::Utc>,
    chrono::DateTime<chrono::Utc>,
) {
    let month = domain::Month::containing(chrono::Utc::now().date_naive());
    let (from, to) = db::usage::bounds(month);
    (month, from, to)
}
