//! HTTP plumbing every component shares: JSON logs, request ids, Prometheus metrics,
//! `/healthz` + `/readyz` + `/metrics`, and graceful shutdown on SIGTERM / Ctrl-C.

pub mod health;
pub mod hyper_service;
pub mod metrics;
pub mod per_core;
pub mod request_id;
pub mod shutdown;
pub mod telemetry;

use axum::Router;
use tokio::net::TcpListener;

/// Serves `app` until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
