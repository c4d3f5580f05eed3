//! The api process (axum): accounts, API keys, identity, communication, billing, OAuth
//! connect, the user portal, admin and webhooks.

pub mod auth;
pub mod comms;
pub mod error;
pub mod extract;
pub mod oauth;
pub mod openapi;
pub mod ops_gauges;
pub mod orchestration;
pub mod portal;
pub mod restate_nodes;
pub mod routes;
pub mod state;

use crate::error::ApiError;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::{Json, Router};
use futures::FutureExt;
use server::health::Readiness;
use state::AppState;
use std::sync::Arc;
use std::time::Duration;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub struct App {
    pub router: Router,
    pub state: AppState,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl App {
    /// Stops background work and writes what is still buffered (key usage).
    pub async fn shutdown(self) {
        for task in &self.background {
            task.abort();
        }
        self.state.key_usage.flush(&self.state.pool).await;
    }
}

/// Builds the api against `config`; the caller binds the listener (tests use port 0).
pub async fn build(config: config::Config) -> anyhow::Result<App> {
    let pool = db::connect_lazy(&config.database_url)?;
    let restate = orchestration::Restate::new(
        &config.restate_ingress_urls,
        &config.restate_admin_urls,
        pool.clone(),
    );
    let providers = comms::Providers::from_config(&config)?;
    let stripe = billing::StripeApi::new(
        config.stripe.secret_key.expose(),
        &config.stripe.api_base,
        billing::client::TIMEOUT,
    )
    .map_err(|e| anyhow::anyhow!("STRIPE_API_BASE: {e}"))?;
    let state = AppState {
        restate,
        providers,
        stripe,
        jwt: auth::tokens::JwtKeys::new(
            config.secrets.jwt_secret.expose(),
            config.access_token_ttl,
            config.refresh_token_ttl,
        ),
        pool: pool.clone(),
        config: Arc::new(config),
        throttle: Default::default(),
        key_usage: Default::default(),
    };
    let background = vec![
        state
            .key_usage
            .spawn_flusher(pool.clone(), Duration::from_secs(5)),
        spawn_throttle_pruner(state.throttle.clone()),
    ];
    Ok(App {
        router: router(state.clone()),
        state,
        background,
    })
}

fn spawn_throttle_pruner(throttle: auth::throttle::LoginThrottle) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            throttle.prune();
        }
    })
}

pub fn router(state: AppState) -> Router {
    let (api, spec) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(routes::auth::routes())
        .merge(routes::api_keys::routes())
        .merge(routes::identity::routes())
        .merge(routes::admin::routes())
        .merge(routes::email::routes())
        .merge(routes::calendar::routes())
        .merge(routes::signal::routes())
        .merge(routes::sms::routes())
        .merge(routes::billing::routes())
        .merge(routes::usage::routes())
        .merge(routes::webhooks::routes())
        .merge(routes::oauth::client_routes())
        .merge(
            routes::oauth::browser_routes().layer(axum::middleware::from_fn_with_state(
                state.clone(),
                portal::browser::layer,
            )),
        )
        .split_for_parts();
    let spec = Arc::new(openapi::with_error_responses(spec));
    let pool = state.pool.clone();
    let readiness = Readiness::new()
        .check(
            "postgres",
            Arc::new(move || {
                let pool = pool.clone();
                async move { db::ping(&pool).await }.boxed()
            }),
        )
        .on_scrape(ops_gauges::on_scrape(
            state.pool.clone(),
            state.restate.clone(),
        ));
    api.route(
        "/openapi.json",
        get(move || async move { Json(spec.as_ref().clone()) }),
    )
    .merge(routes::portal::routes(state.clone()))
    .fallback(|| async { ApiError::NotFound("no such route".into()) })
    .with_state(state)
    .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
    .merge(server::health::router("api", readiness))
    .layer(axum::middleware::from_fn(server::request_id::layer))
}
