//! The Restate services: durable, journaled workflows served to restate-server over HTTP.

mod close_account;
pub mod contract;
mod deprovision_identity;
mod deps;
mod hyper_service;
mod identity_lifecycle;
mod metrics;
mod progress;
mod provision_identity;
mod saga;
mod signal_receiver;
mod signal_registration;
mod step;
mod usage_scheduler;
mod usage_sync;
mod usage_sync_schedule;

pub use close_account::{CloseAccount, CloseOutcome, CloseRequest};
pub use deprovision_identity::DeprovisionIdentity;
pub use identity_lifecycle::IdentityLifecycle;
pub use progress::ProgressWriter;
pub use provision_identity::{ProvisionIdentity, Step};
pub use signal_receiver::SignalReceiver;
pub use signal_registration::SignalRegistration;
pub use usage_scheduler::{EnsurePartitions, PartitionReport, UsageScheduler};
pub use usage_sync::{SyncReport, UsageSync};

use axum::Router;
use config::Config;
use futures::FutureExt;
use restate_sdk::prelude::*;
use server::health::Readiness;
use std::sync::Arc;

/// The Restate endpoint with every service bound, and the ops routes to serve beside it.
pub fn build(config: &Config) -> anyhow::Result<(Endpoint, Router)> {
    crate::metrics::register();
    let pool = db::connect_lazy(&config.database_url)?;
    let deps = deps::Deps::new(config, pool.clone())?;
    let stripe = billing::StripeApi::new(
        config.stripe.secret_key.expose(),
        &config.stripe.api_base,
        config.workflows.provider_timeout,
    )
    .map_err(|e| anyhow::anyhow!("STRIPE_API_BASE / STRIPE_SECRET_KEY: {e}"))?;
    let endpoint = Endpoint::builder()
        .bind(UsageScheduler::new(pool.clone()))
        .bind(UsageSync::new(pool.clone(), stripe.clone()))
        .bind(CloseAccount::new(deps.clone(), stripe))
        .bind(ProvisionIdentity::new(deps.clone()))
        .bind(SignalRegistration::new(deps.clone()))
        .bind(DeprovisionIdentity::new(deps.clone()))
        .bind(SignalReceiver::new(deps.clone()))
        .bind(IdentityLifecycle::new(deps))
        .build();
    let readiness = Readiness::new().check(
        "postgres",
        Arc::new(move || {
            let pool = pool.clone();
            async move { db::ping(&pool).await }.boxed()
        }),
    );
    Ok((endpoint, server::health::router("workflows", readiness)))
}

/// Serves the endpoint until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    endpoint: Endpoint,
    ops: Router,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let service = restate_sdk::hyper::HyperEndpoint::new(endpoint);
    hyper_service::serve(listener, ops, service, shutdown).await;
}
