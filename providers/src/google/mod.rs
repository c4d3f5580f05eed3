//! Google Workspace through one service account with domain-wide delegation: Admin SDK
//! Directory users (as the admin), Gmail and Calendar (as each Dex user).
//!
//! All APIs live under one base (`https://www.googleapis.com` in production:
//! `/admin/directory/v1`, `/gmail/v1`, `/calendar/v3`); the token URL is separate.

mod auth;
mod calendar;
mod directory;
mod error;
mod gmail;
mod mime;

pub use auth::{ServiceAccount, DIRECTORY_SCOPE, USER_SCOPES};
pub use calendar::{
    event_id_for, Event, EventAttendee, EventInput, EventPage, EventQuery, EventTime,
};
pub use directory::{ExternalId, NewUser, User, UserName, OWNER_ID_TYPE};
pub use error::GoogleError;
pub use gmail::{MailMessage, MessagePage, MessageQuery, MessageRef, OutgoingMail};

use crate::http::{self, HttpOptions, Repeat};
use auth::{TokenCache, TokenResponse};
use reqwest::Method;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

/// Where the client finds Google and who it acts as.
#[derive(Debug, Clone)]
pub struct GoogleSettings {
    pub api_base: String,
    pub token_url: String,
    /// The Workspace domain of the Dex addresses.
    pub domain: String,
    /// A super admin the service account impersonates for Directory calls.
    pub admin_email: String,
}

/// Client for Directory, Gmail and Calendar. Cheap to clone; clones share the token cache.
#[derive(Clone)]
pub struct GoogleClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GoogleClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleClient")
            .field("settings", &self.inner.settings)
            .field("service_account", &self.inner.account.client_email)
            .finish_non_exhaustive()
    }
}

struct Inner {
    http: reqwest::Client,
    opts: HttpOptions,
    settings: GoogleSettings,
    account: ServiceAccount,
    tokens: TokenCache,
}

impl GoogleClient {
    pub fn new(
        settings: GoogleSettings,
        account: ServiceAccount,
        opts: HttpOptions,
    ) -> Result<Self, GoogleError> {
        Ok(Self {
            inner: Arc::new(Inner {
                http: opts.client()?,
                opts,
                settings,
                account,
                tokens: TokenCache::default(),
            }),
        })
    }

    /// From the typed configuration (`GOOGLE_*`).
    pub fn from_config(cfg: &config::Google, opts: HttpOptions) -> Result<Self, GoogleError> {
        if cfg.service_account_json.is_empty() {
            return Err(GoogleError::Credentials(
                "GOOGLE_SERVICE_ACCOUNT_JSON is not set".into(),
            ));
        }
        if cfg.admin_email.is_empty() {
            return Err(GoogleError::Credentials(
                "GOOGLE_ADMIN_EMAIL is not set".into(),
            ));
        }
        let account = ServiceAccount::from_json(cfg.service_account_json.expose())?;
        let settings = GoogleSettings {
            api_base: cfg.api_base.clone(),
            token_url: cfg.token_url.clone(),
            domain: cfg.domain.clone(),
            admin_email: cfg.admin_email.clone(),
        };
        Self::new(settings, account, opts)
    }

    /// The deterministic Workspace address of a Dex identity: `dex-{short_id}@{domain}`.
    /// Provisioning derives it from the identity, so a retried creation finds the same user.
    pub fn workspace_address(&self, short_id: &str) -> String {
        format!(
            "dex-{}@{}",
            short_id.to_ascii_lowercase(),
            self.inner.settings.domain
        )
    }

    pub fn domain(&self) -> &str {
        &self.inner.settings.domain
    }

    async fn access_token(&self, sub: &str, scope: &'static str) -> Result<String, GoogleError> {
        if let Some(token) = self.inner.tokens.get(sub, scope) {
            return Ok(token);
        }
        let assertion = self
            .inner
            .account
            .assertion(&self.inner.settings.token_url, sub, scope)?;
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion.as_str()),
        ];
        let token_url = self.inner.settings.token_url.as_str();
        let resp = http::with_retries(
            &self.inner.opts,
            "google.token",
            || async {
                let raw = http::execute(self.inner.http.post(token_url).form(&form)).await?;
                if raw.is_success() {
                    Ok(raw.body)
                } else {
                    Err(GoogleError::from_token_endpoint(raw.status, &raw.body))
                }
            },
            GoogleError::is_retryable,
        )
        .await?;
        let token: TokenResponse = serde_json::from_slice(&resp)
            .map_err(|e| GoogleError::Decode(format!("token response: {e}")))?;
        self.inner.tokens.put(
            sub,
            scope,
            token.access_token.clone(),
            Duration::from_secs(token.expires_in),
        );
        Ok(token.access_token)
    }

    /// One API call as `sub`, retried as `repeat` allows; a refused (401) cached token is
    /// replaced once.
    async fn call(
        &self,
        principal: Principal<'_>,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        repeat: Repeat,
    ) -> Result<Vec<u8>, GoogleError> {
        let url = http::endpoint(&self.inner.settings.api_base, segments)
            .map_err(GoogleError::Credentials)?;
        let (sub, scope) = (principal.sub, principal.scope);
        let what = "google.api";
        for attempt in 0..2 {
            let result = http::with_retries(
                &self.inner.opts,
                what,
                || async {
                    let token = self.access_token(sub, scope).await?;
                    let mut req = self
                        .inner
                        .http
                        .request(method.clone(), url.clone())
                        .bearer_auth(token)
                        .query(query);
                    if let Some(b) = body {
                        req = req.json(b);
                    }
                    let raw = http::execute(req).await?;
                    if raw.is_success() {
                        Ok(raw.body)
                    } else {
                        Err(GoogleError::from_api(raw.status, &raw.body))
                    }
                },
                |e: &GoogleError| match repeat {
                    Repeat::Safe => e.is_retryable(),
                    Repeat::OnlyIfNotDelivered => e.not_delivered(),
                },
            )
            .await;
            match result {
                Err(GoogleError::Unauthorized(_)) if attempt == 0 => {
                    self.inner.tokens.evict(sub, scope);
                }
                other => return other,
            }
        }
        Err(GoogleError::Unauthorized(
            "access token refused twice".into(),
        ))
    }

    async fn call_json<T: DeserializeOwned>(
        &self,
        principal: Principal<'_>,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        repeat: Repeat,
    ) -> Result<T, GoogleError> {
        let bytes = self
            .call(principal, method, segments, query, body, repeat)
            .await?;
        serde_json::from_slice(&bytes).map_err(|e| GoogleError::Decode(e.to_string()))
    }

    fn as_admin(&self) -> Principal<'_> {
        Principal {
            sub: &self.inner.settings.admin_email,
            scope: DIRECTORY_SCOPE,
        }
    }
}

/// Who a call acts as: the impersonated user and the scope its token carries.
#[derive(Clone, Copy)]
struct Principal<'a> {
    sub: &'a str,
    scope: &'static str,
}

fn as_user(user: &str) -> Principal<'_> {
    Principal {
        sub: user,
        scope: USER_SCOPES,
    }
}
