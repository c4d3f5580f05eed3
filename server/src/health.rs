//! `/healthz` (the process is alive), `/readyz` (its dependencies answer), `/metrics`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::future::BoxFuture;
use std::sync::Arc;

/// Named dependency checks, each answering whether that dependency is reachable now.
pub type Check = Arc<dyn Fn() -> BoxFuture<'static, bool> + Send + Sync>;

/// Brings gauges up to date just before `/metrics` renders (e.g. counts read from Postgres).
pub type ScrapeHook = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(&'static str, Check)>,
    on_scrape: Vec<ScrapeHook>,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn check(mut self, name: &'static str, check: Check) -> Self {
        self.checks.push((name, check));
        self
    }

    /// Runs `hook` before each `/metrics` answer (at most 2 s; a slow one is left behind):
    /// nothing is read while nobody scrapes.
    pub fn on_scrape(mut self, hook: ScrapeHook) -> Self {
        self.on_scrape.push(hook);
        self
    }
}

pub fn router(component: &'static str, readiness: Readiness) -> Router {
    // Install the recorder before any request is counted.
    crate::metrics::handle();
    Router::new()
        .route(
            "/healthz",
            get(move || async move {
                Json(serde_json::json!({"status": "ok", "component": component}))
            }),
        )
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .with_state(Arc::new(readiness))
}

async fn ready(State(r): State<Arc<Readiness>>) -> Response {
    let mut all = true;
    let mut deps = serde_json::Map::new();
    for (name, check) in &r.checks {
        let ok = tokio::time::timeout(std::time::Duration::from_secs(2), check())
            .await
            .unwrap_or(false);
        all &= ok;
        deps.insert(
            (*name).into(),
            (if ok { "ok" } else { "unreachable" }).into(),
        );
    }
    let status = if all {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({ "status": if all { "ready" } else { "not_ready" }, "dependencies": deps });
    (status, Json(body)).into_response()
}

async fn metrics(State(r): State<Arc<Readiness>>) -> Response {
    for hook in &r.on_scrape {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), hook()).await;
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(),
    )
        .into_response()
}
