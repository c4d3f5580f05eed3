//! Billing: the Stripe client, Stripe's webhook signature scheme, the overage math and the
//! meter-event identifiers. Shared by the api, the workflows, the sandbox and `stripe-setup`.

pub mod catalog;
pub mod client;
pub mod meter;
pub mod overage;
pub mod setup;
pub mod signature;

pub use client::{StripeApi, StripeFailure};
pub use overage::{Overage, UsageTotals};
