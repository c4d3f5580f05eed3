//! Billing: subscribe through Stripe Checkout, the Billing Portal, the subscription, and this
//! period's bill.

mod customer;
pub(crate) mod portal;
pub(crate) mod spending_cap;
pub(crate) mod subscribe;
mod subscription;
pub(crate) mod usage;

use crate::error::ApiError;
use crate::state::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(subscribe::subscribe))
        .routes(routes!(portal::portal))
        .routes(routes!(subscription::subscription))
        .routes(routes!(usage::billing_usage))
        .routes(routes!(spending_cap::set))
}

/// Stripe trouble as the user sees it: a refusal is our bug (logged, 500); unavailability is
/// a 503 to retry.
pub(crate) fn stripe_error(e: billing::StripeFailure) -> ApiError {
    if e.is_retryable() {
        tracing::warn!(error = %e, "Stripe unavailable");
        ApiError::Unavailable("the payment provider is unavailable; retry shortly".into())
    } else {
        ApiError::Internal(anyhow::anyhow!(e))
    }
}
