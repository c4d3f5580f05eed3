//! One typed configuration, read from the environment. Each component states which values it
//! needs; a missing or malformed one is reported as a single error naming the variable.

mod dev_defaults;
mod dev_google;
mod env;

pub use dev_defaults::{apply_dev_defaults, DevDefault, DEV_TELNYX_SEED};
pub use dev_google::{
    dev_service_account_json, DEV_GOOGLE_PRIVATE_KEY_ID, DEV_GOOGLE_PUBLIC_KEY_PEM,
    DEV_GOOGLE_SERVICE_ACCOUNT_EMAIL,
};
pub use env::{ConfigError, Source};

use std::net::SocketAddr;
use std::time::Duration;

/// The process that is starting; decides which values are required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    Api,
    Proxy,
    Workflows,
    Sandbox,
    Migrate,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub api_addr: SocketAddr,
    pub proxy_addr: SocketAddr,
    pub workflows_addr: SocketAddr,
    pub sandbox_addr: SocketAddr,
    /// Every Restate node's ingress (`RESTATE_INGRESS_URL`, comma-separated); calls go to a
    /// live one.
    pub restate_ingress_urls: Vec<String>,
    /// Every Restate node's admin API (`RESTATE_ADMIN_URL`, comma-separated).
    pub restate_admin_urls: Vec<String>,
    pub public_base_url: String,
    pub secrets: Secrets,
    pub stripe: Stripe,
    pub google: Google,
    pub telnyx: Telnyx,
    pub signal_cli_url: String,
    pub upstream: Upstream,
    pub redis_url: Option<String>,
    pub sandbox: SandboxSettings,
    pub workflows: WorkflowSettings,
    /// Lifetime of portal/API access tokens.
    pub access_token_ttl: Duration,
    /// Lifetime of refresh tokens.
    pub refresh_token_ttl: Duration,
}

/// Secrets are kept out of `Debug` output so a logged config never leaks them.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone)]
pub struct Secrets {
    /// AES-256-GCM key for Workspace passwords and refresh tokens.
    pub encryption_key: [u8; 32],
    pub jwt_secret: Secret,
    pub admin_token: Secret,
}

#[derive(Debug, Clone)]
pub struct Stripe {
    pub secret_key: Secret,
    pub webhook_secret: Secret,
    pub api_base: String,
    pub price_basic: String,
    pub price_pro: String,
}

#[derive(Debug, Clone)]
pub struct Google {
    pub service_account_json: Secret,
    pub domain: String,
    pub admin_email: String,
    pub api_base: String,
    pub token_url: String,
}

#[derive(Debug, Clone)]
pub struct Telnyx {
    pub api_key: Secret,
    /// Ed25519 public key (32 bytes) that signs Telnyx webhooks.
    pub public_key: Option<[u8; 32]>,
    pub messaging_profile_id: String,
    pub api_base: String,
}

#[derive(Debug, Clone)]
pub struct Upstream {
    pub anthropic_api_key: Secret,
    pub anthropic_base_url: String,
    pub openai_api_key: Secret,
    pub openai_base_url: String,
}

/// Timing of the durable workflows (shortened in tests).
#[derive(Debug, Clone)]
pub struct WorkflowSettings {
    /// How long SignalRegistration waits for the SMS code before registering again.
    pub signal_code_timeout: Duration,
    /// Registration rounds before SignalRegistration reports `failed` and waits for an operator.
    pub signal_max_rounds: u32,
    /// Pause between rounds (doubled each round).
    pub signal_backoff: Duration,
    /// How long a deprovisioned Workspace user stays suspended before it is deleted.
    pub retention: Duration,
    /// Per-request timeout of provider calls made by workflow steps.
    pub provider_timeout: Duration,
    /// How often each registered number is received from while messages come in.
    pub signal_receive_interval: Duration,
    /// The longest pause between receives when a number is quiet (the interval doubles up to it).
    pub signal_receive_max_interval: Duration,
    /// How long received Signal messages are kept before they are erased.
    pub signal_message_retention: Duration,
}

#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// 32-byte Ed25519 seed the sandbox signs Telnyx webhooks with.
    pub telnyx_signing_key: Option<[u8; 32]>,
    /// Where the sandbox delivers webhooks (the api's base URL).
    pub webhook_base: String,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env(component: Component) -> Result<Self, ConfigError> {
        Self::load(component, &env::ProcessEnv)
    }

    /// Reads any source (tests pass a map).
    pub fn load(component: Component, src: &dyn Source) -> Result<Self, ConfigError> {
        let r = env::Reader::new(src);
        let need_secrets = matches!(component, Component::Api | Component::Workflows);
        // The workflows call the providers on every provisioning: without credentials they
        // could only fail later, so they refuse to start.
        let need_providers = component == Component::Workflows;
        let api_addr = r.addr("API_ADDR", "127.0.0.1:3000")?;
        let sandbox_addr = r.addr("SANDBOX_ADDR", "127.0.0.1:4010")?;
        let telnyx_public_key = r.optional_key32_base64("TELNYX_PUBLIC_KEY")?;
        let telnyx_signing_key = r.optional_key32_base64("SANDBOX_TELNYX_SIGNING_KEY")?;
        let admin_token = r.secret("ADMIN_TOKEN", component == Component::Api)?;
        if component == Component::Api && admin_token.expose().len() < 16 {
            return Err(ConfigError::malformed(
                "ADMIN_TOKEN",
                "must be at least 16 characters",
            ));
        }
        let jwt_secret = r.secret("JWT_SECRET", component == Component::Api)?;
        if component == Component::Api && jwt_secret.expose().len() < 32 {
            return Err(ConfigError::malformed(
                "JWT_SECRET",
                "must be at least 32 characters",
            ));
        }
        Ok(Self {
            database_url: r.string(
                "DATABASE_URL",
                Some("postgres://postgres@127.0.0.1:5432/poindexter"),
            )?,
            api_addr,
            proxy_addr: r.addr("PROXY_ADDR", "127.0.0.1:3001")?,
            workflows_addr: r.addr("WORKFLOWS_ADDR", "127.0.0.1:9080")?,
            sandbox_addr,
            restate_ingress_urls: r.url_list("RESTATE_INGRESS_URL", "http://127.0.0.1:8080")?,
            restate_admin_urls: r.url_list("RESTATE_ADMIN_URL", "http://127.0.0.1:9070")?,
            public_base_url: r.url("PUBLIC_BASE_URL", Some(&format!("http://{api_addr}")))?,
            secrets: Secrets {
                encryption_key: r.key32_hex("ENCRYPTION_KEY", need_secrets)?,
                jwt_secret,
                admin_token,
            },
            stripe: Stripe {
                secret_key: r.secret("STRIPE_SECRET_KEY", false)?,
                webhook_secret: r.secret("STRIPE_WEBHOOK_SECRET", false)?,
                api_base: r.url("STRIPE_API_BASE", Some("https://api.stripe.com"))?,
                price_basic: r.string("STRIPE_PRICE_BASIC", Some(""))?,
                price_pro: r.string("STRIPE_PRICE_PRO", Some(""))?,
            },
            google: Google {
                service_account_json: r.secret("GOOGLE_SERVICE_ACCOUNT_JSON", need_providers)?,
                domain: r.string("GOOGLE_DOMAIN", Some("poindexter.ai"))?,
                admin_email: if need_providers {
                    r.string("GOOGLE_ADMIN_EMAIL", None)?
                } else {
                    r.string("GOOGLE_ADMIN_EMAIL", Some(""))?
                },
                api_base: r.url("GOOGLE_API_BASE", Some("https://www.googleapis.com"))?,
                token_url: r.url(
                    "GOOGLE_TOKEN_URL",
                    Some("https://oauth2.googleapis.com/token"),
                )?,
            },
            telnyx: Telnyx {
                api_key: r.secret("TELNYX_API_KEY", need_providers)?,
                public_key: telnyx_public_key,
                messaging_profile_id: r.string("TELNYX_MESSAGING_PROFILE_ID", Some(""))?,
                api_base: r.url("TELNYX_API_BASE", Some("https://api.telnyx.com"))?,
            },
            signal_cli_url: r.url("SIGNAL_CLI_URL", Some("http://127.0.0.1:8081"))?,
            upstream: Upstream {
                anthropic_api_key: r.secret("ANTHROPIC_API_KEY", false)?,
                anthropic_base_url: r
                    .url("ANTHROPIC_BASE_URL", Some("https://api.anthropic.com"))?,
                openai_api_key: r.secret("OPENAI_API_KEY", false)?,
                openai_base_url: r.url("OPENAI_BASE_URL", Some("https://api.openai.com/v1"))?,
            },
            redis_url: r.optional_string("REDIS_URL")?,
            sandbox: SandboxSettings {
                telnyx_signing_key,
                webhook_base: r.url("SANDBOX_WEBHOOK_BASE", Some(&format!("http://{api_addr}")))?,
            },
            workflows: WorkflowSettings {
                signal_code_timeout: Duration::from_secs(r.u64("SIGNAL_CODE_TIMEOUT_SECS", 600)?),
                signal_max_rounds: r.u64("SIGNAL_MAX_ROUNDS", 3)?.clamp(1, 20) as u32,
                signal_backoff: Duration::from_millis(r.u64("SIGNAL_BACKOFF_MS", 30_000)?),
                retention: Duration::from_secs(
                    r.u64("DEPROVISION_RETENTION_SECS", 30 * 24 * 3600)?,
                ),
                provider_timeout: Duration::from_millis(r.u64("PROVIDER_TIMEOUT_MS", 30_000)?),
                signal_receive_interval: Duration::from_millis(
                    r.u64("SIGNAL_RECEIVE_INTERVAL_MS", 10_000)?.max(50),
                ),
                signal_receive_max_interval: Duration::from_millis(
                    r.u64("SIGNAL_RECEIVE_MAX_INTERVAL_MS", 300_000)?.max(50),
                ),
                signal_message_retention: Duration::from_secs(
                    r.u64("SIGNAL_MESSAGE_RETENTION_SECS", 30 * 24 * 3600)?,
                ),
            },
            access_token_ttl: Duration::from_secs(r.u64("ACCESS_TOKEN_TTL_SECS", 900)?),
            refresh_token_ttl: Duration::from_secs(
                r.u64("REFRESH_TOKEN_TTL_SECS", 30 * 24 * 3600)?,
            ),
        })
    }
}

#[cfg(test)]
mod tests;
