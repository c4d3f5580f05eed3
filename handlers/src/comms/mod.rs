//! What Dex's communication endpoints share: the provider clients, the caller's active
//! identity, and how provider failures become API errors.

mod active;
mod provider_error;

pub use active::ActiveIdentity;
pub use provider_error::{google_error, signal_error};

use crate::error::{ApiError, ApiResult};
use providers::{GoogleClient, HttpOptions, SignalClient};
use std::time::Duration;

/// The clients the api calls on a user's behalf (as that user's identity).
#[derive(Clone, Debug)]
pub struct Providers {
    /// None when Google is not configured (`GOOGLE_SERVICE_ACCOUNT_JSON`, `GOOGLE_ADMIN_EMAIL`).
    pub google: Option<GoogleClient>,
    pub signal: SignalClient,
}

/// A request from Dex waits for at most one provider call with a retry or two: fail fast and
/// let the caller retry on 503 rather than hold the connection.
fn http_options() -> HttpOptions {
    HttpOptions {
        timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(3),
        max_retries: 2,
        min_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
    }
}

impl Providers {
    pub fn from_config(config: &config::Config) -> anyhow::Result<Self> {
        let g = &config.google;
        let google = if g.service_account_json.is_empty() || g.admin_email.is_empty() {
            tracing::warn!(
                "GOOGLE_SERVICE_ACCOUNT_JSON or GOOGLE_ADMIN_EMAIL is unset: email and calendar answer 503"
            );
            None
        } else {
            // Set but malformed: refuse to start rather than fail every request.
            Some(GoogleClient::from_config(g, http_options())?)
        };
        let signal = SignalClient::from_config(config, http_options())?;
        Ok(Self { google, signal })
    }

    pub fn google(&self) -> ApiResult<&GoogleClient> {
        self.google.as_ref().ok_or_else(|| {
            ApiError::Unavailable("email and calendar are not configured on this server".into())
        })
    }
}

/// Remembers that a message went out (the portal counts them and lists them under Activity),
/// with how many recipients and which credential sent it, never who or what. A failure to
/// record is logged and does not fail a send that already happened.
pub async fn record_sent(
    state: &crate::state::AppState,
    caller: &ActiveIdentity,
    action: &str,
    recipients: usize,
) {
    let via = match caller.auth.credential {
        crate::auth::Credential::Session => serde_json::json!("session"),
        crate::auth::Credential::ApiKey { key_id } => serde_json::json!({"api_key": key_id}),
        crate::auth::Credential::OAuth { grant_id } => serde_json::json!({"grant": grant_id}),
    };
    if let Err(e) = db::audit::record(
        &state.pool,
        "dex",
        Some(caller.auth.user_id),
        action,
        serde_json::json!({"recipients": recipients, "via": via}),
    )
    .await
    {
        tracing::warn!(error = %e, action, "could not record a sent message");
    }
}
