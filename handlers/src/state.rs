//! Shared state handed to every handler.

use crate::auth::key_usage::KeyUsage;
use crate::auth::throttle::LoginThrottle;
use crate::auth::tokens::JwtKeys;
use config::Config;
use sqlx::PgPool;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub jwt: JwtKeys,
    pub throttle: LoginThrottle,
    pub key_usage: KeyUsage,
    pub restate: crate::orchestration::Restate,
    /// Google and signal-cli clients for Dex's email, calendar and Signal endpoints.
    pub providers: crate::comms::Providers,
    pub stripe: billing::StripeApi,
}
