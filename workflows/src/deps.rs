//! What the workflows need from the outside world: the database and the provider clients.

use config::Config;
use providers::{GoogleClient, HttpOptions, SignalClient, TelnyxClient};
use sqlx::PgPool;
use std::sync::Arc;

pub struct Deps {
    pub pool: PgPool,
    /// Provisioning progress, written off the steps' path.
    pub progress: crate::progress::ProgressWriter,
    pub google: GoogleClient,
    pub telnyx: TelnyxClient,
    pub signal: SignalClient,
    pub secrets: domain::SecretBox,
    pub config: Config,
}

pub type SharedDeps = Arc<Deps>;

impl Deps {
    pub fn new(config: &Config, pool: PgPool) -> anyhow::Result<SharedDeps> {
        let opts = HttpOptions {
            timeout: config.workflows.provider_timeout,
            ..HttpOptions::default()
        };
        Ok(Arc::new(Self {
            progress: crate::progress::ProgressWriter::new(pool.clone()),
            pool,
            google: GoogleClient::from_config(&config.google, opts.clone())?,
            telnyx: TelnyxClient::from_config(&config.telnyx, opts.clone())?,
            signal: SignalClient::from_config(config, opts)?,
            secrets: domain::SecretBox::new(config.secrets.encryption_key),
            config: config.clone(),
        }))
    }
}
