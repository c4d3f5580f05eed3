//! The streaming AI proxy: a separate process on the hot path of every AI request. It
//! authenticates the key from memory, rate-limits, enforces the plan, streams the upstream
//! answer through as it arrives, counts tokens from the stream, and meters every request
//! through a batched writer that survives a database outage.

pub mod catalog;
mod conn_pool;
mod errors;
#[cfg(feature = "fuzzing")]
pub mod fuzz_api;
mod hot_metrics;
mod json_scan;
mod keys;
pub mod options;
mod per_core;
mod ratelimit;
mod relay;
mod request_meter;
mod routes;
mod sse;
mod tally;
mod translate;
mod upstream;
mod usage;

pub use options::{Options, Target};
pub use usage::UsageEvent;

use axum::routing::{get, post};
use axum::Router;
use config::Config;
use futures::FutureExt;
use server::health::Readiness;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The largest request body accepted (axum's default of 2 MB is too small for AI requests).
pub const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;

/// A built proxy: its router, and the background tasks `shutdown` stops and flushes.
pub struct App {
    pub router: Router,
    /// For the routes served without the router (`routes::direct`).
    shared: Arc<routes::Shared>,
    writer: usage::Writer,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    limits: per_core::Limits,
}

impl App {
    /// Serves the proxy on `addr` with one single-threaded runtime per core
    /// (`per_core`) until `shutdown` resolves, then lets in-flight requests finish
    /// within the shutdown grace and cuts the rest (each still metered).
    pub async fn serve(
        &self,
        addr: std::net::SocketAddr,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        let threads = per_core::threads();
        let listener = per_core::bind(addr)?;
        tracing::info!(%addr, threads, "proxy listening");
        let (stop, stopped) = watch::channel(false);
        let lanes = routes::direct::Lanes {
            router: self.router.clone(),
            shared: self.shared.clone(),
        };
        let limits = self.limits;
        let mut serving = tokio::task::spawn_blocking(move || {
            per_core::serve(listener, threads, lanes, stopped, limits)
        });
        tokio::select! {
            ended = &mut serving => return ended.map_err(std::io::Error::other)?,
            () = shutdown => {}
        }
        let _ = stop.send(true);
        serving.await.map_err(std::io::Error::other)?
    }

    /// Stops the key listener and writes every queued usage event (to Postgres, or to the
    /// spill file if it is down). Call after the server stopped taking requests.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        // These tasks only read; one may be waiting on an unreachable database.
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
        self.writer.shutdown().await;
    }
}

/// Builds the proxy from the process configuration.
pub async fn build(config: &Config) -> anyhow::Result<App> {
    build_with(Options::from_config(config)).await
}

/// Builds the proxy from explicit options (tests and benchmarks use this).
pub async fn build_with(options: Options) -> anyhow::Result<App> {
    let pool = db::connect_lazy(&options.database_url)?;
    let store = Arc::new(keys::KeyStore::default());
    if !keys::listen::full_reload(&pool, &store).await {
        tracing::warn!("starting without API keys; retrying in the background");
    }
    let limiter = match &options.redis_url {
        Some(url) => {
            match ratelimit::Limiter::redis(url, options.rate_per_minute, options.rate_burst).await
            {
                Ok(l) => l,
                Err(e) => anyhow::bail!("cannot reach Redis at REDIS_URL for rate limits: {e}"),
            }
        }
        None => ratelimit::Limiter::local(options.rate_per_minute, options.rate_burst),
    };
    let upstreams = upstream::Upstreams::new(
        options.openai.clone(),
        options.anthropic.clone(),
        options.max_attempts,
        options.upstream_timeouts,
        options.upstream_ca_file.as_deref(),
    )?;
    let (meter, writer) = usage::Writer::start(
        &options.database_url,
        options.spill_path.clone(),
        options.batch_max,
        options.batch_wait,
    )?;
    let shared = Arc::new(routes::Shared {
        keys: store.clone(),
        pool: pool.clone(),
        limiter,
        upstreams,
        meter,
    });
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = vec![tokio::spawn(keys::listen::run(
        pool.clone(),
        store.clone(),
        options.key_refresh,
        options.usage_refresh,
        stop_rx.clone(),
    ))];
    tasks.push(tokio::spawn(housekeeping(shared.clone(), stop_rx)));

    let ready_pool = pool.clone();
    let ready_store = store.clone();
    let readiness = Readiness::new()
        .check(
            "postgres",
            Arc::new(move || {
                let pool = ready_pool.clone();
                async move { db::ping(&pool).await }.boxed()
            }),
        )
        .check(
            "api_keys",
            Arc::new(move || {
                let loaded = ready_store.is_loaded();
                async move { loaded }.boxed()
            }),
        );
    // `App::serve` answers POSTs to the first three without the router (`routes::direct`); they
    // stay here for their 405s and for whoever serves the router itself.
    let ai = Router::new()
        .route("/v1/chat/completions", post(routes::chat::handle))
        .route("/v1/ai/chat", post(routes::chat::handle))
        .route("/v1/messages", post(routes::messages::handle))
        .route("/v1/embeddings", post(routes::embeddings::handle))
        .route("/v1/models", get(routes::models::handle))
        .method_not_allowed_fallback(routes::unknown::method_not_allowed)
        .fallback(routes::unknown::not_found)
        // Long contexts and inline images are large; Anthropic accepts up to 32 MB.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(shared.clone());
    // The AI routes set their own x-request-id (see routes::Ctx); the shared middleware
    // serves the ops routes.
    let router = server::health::router("proxy", readiness)
        .layer(axum::middleware::from_fn(server::request_id::layer))
        .merge(ai);
    Ok(App {
        router,
        shared,
        writer,
        stop,
        tasks,
        limits: per_core::Limits {
            grace: options.shutdown_grace,
            idle: options.client_idle_timeout,
        },
    })
}

async fn housekeeping(shared: Arc<routes::Shared>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tick.tick() => shared.limiter.housekeeping(),
            _ = stop.changed() => return,
        }
    }
}
