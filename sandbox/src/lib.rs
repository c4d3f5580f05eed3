//! Local emulators of the external providers, speaking their real wire formats on loopback:
//! Google Workspace under `/google`, Telnyx under `/telnyx`, signal-cli-rest-api under
//! `/signal` (and the AI providers under `/openai`, `/anthropic`). `/_sandbox/*` controls
//! faults, latency, resets and lists every live resource.

// Checks in the emulators return the provider's error response as `Err(Response)`; one is
// built per refused request, so its size does not matter.
#![allow(clippy::result_large_err)]

mod control;
mod faults;
mod google;
mod resources;
mod signal;
mod telnyx;
mod webhooks;

mod ai;

pub mod stripe;

use axum::Router;
use config::Config;
use std::sync::{Arc, Mutex, MutexGuard};

/// Everything the emulators hold; shared by all routes.
pub(crate) struct Sandbox {
    pub google: google::Google,
    pub telnyx: telnyx::Telnyx,
    pub signal: signal::Signal,
    pub faults: faults::Faults,
    pub stripe: Arc<stripe::Stripe>,
    pub ai: Arc<ai::control::AiState>,
}

impl Sandbox {
    fn new(config: &Config) -> Self {
        let webhooks = webhooks::WebhookSender::new(config);
        Self {
            google: google::Google::new(config),
            telnyx: telnyx::Telnyx::new(config, webhooks),
            signal: signal::Signal::default(),
            faults: faults::Faults::default(),
            stripe: Arc::new(stripe::Stripe::new(config)),
            ai: Arc::default(),
        }
    }

    /// Forgets every resource, fault and latency setting, at every provider.
    fn reset(&self) {
        self.google.reset();
        self.telnyx.reset();
        self.signal.reset();
        self.faults.reset();
        self.stripe.reset();
        self.ai.reset();
    }
}

pub(crate) type Shared = Arc<Sandbox>;

pub fn build(config: &Config) -> Router {
    let sandbox: Shared = Arc::new(Sandbox::new(config));
    let providers = Router::new()
        .nest("/google", google::router(sandbox.clone()))
        .nest("/telnyx", telnyx::router(sandbox.clone()))
        .nest("/signal", signal::router(sandbox.clone()))
        .nest("/stripe", sandbox.stripe.router());
    // The AI emulators (src/ai/) are merged here, before the fault layer below, so that
    // faults and latency reach `/openai` and `/anthropic` as well.
    providers
        .merge(ai::router(sandbox.ai.clone()))
        .merge(control::router(sandbox.clone()))
        .merge(server::health::router(
            "sandbox",
            server::health::Readiness::new(),
        ))
        // Outermost, so faults and latency apply to every provider prefix, whoever mounts it.
        .layer(axum::middleware::from_fn_with_state(sandbox, faults::layer))
        .layer(axum::middleware::from_fn(server::request_id::layer))
}

/// Locks a mutex, recovering the data if a panicking handler poisoned it (the sandbox keeps
/// serving; its state is plain data that stays consistent between statements).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// RFC 3339 UTC with milliseconds, as Google and Telnyx print times.
pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
