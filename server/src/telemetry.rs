//! JSON logs on stderr. Log lines carry the request id through the request span; secrets,
//! prompts and message bodies are never passed to the logger in the first place.

use tracing_subscriber::{fmt, prelude::*, EnvFilter};

pub fn init(component: &'static str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,hyper=warn,h2=warn,tower_http=warn"));
    let json = fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true)
        .with_writer(std::io::stderr);
    // A second init (tests start several apps in one process) is harmless.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(json)
        .try_init();
    tracing::debug!(component, "logging initialised");
}
