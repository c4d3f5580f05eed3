//! Sandbox Stripe, mounted at `/stripe`: customers, Checkout Sessions (with a hosted checkout
//! page where a person pays with a test card), Billing Portal sessions, subscriptions,
//! products, prices, meters and meter events, in Stripe's form-encoded requests, JSON shapes,
//! errors and Bearer auth. Webhooks are signed with the `Stripe-Signature` v1 scheme and
//! POSTed to `{SANDBOX_WEBHOOK_BASE}/webhooks/stripe`. Control routes under
//! `/stripe/_sandbox/` fire payment failures, plan changes and cancellations,
//! hold/replay/reorder deliveries, and inject faults (refusals, outages, slow answers).

mod api;
mod control;
mod form;
mod objects;
mod state;
mod webhooks;

use axum::Router;
use std::sync::Arc;

pub use state::Stripe;

impl Stripe {
    /// The routes below `/stripe`.
    pub fn router(self: &Arc<Self>) -> Router {
        api::routes()
            .merge(control::routes())
            .with_state(self.clone())
    }
}

/// A Stripe sandbox configured from `config`, and its routes.
pub fn build(config: &config::Config) -> (Arc<Stripe>, Router) {
    let stripe = Arc::new(Stripe::new(config));
    let router = stripe.router();
    (stripe, router)
}
