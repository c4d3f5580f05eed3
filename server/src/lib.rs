//! HTTP plumbing every component shares: JSON logs, request ids, Prometheus metrics,
//! `/healthz` + `/readyz` + `/metrics`, and graceful shutdown on SIGTERM / Ctrl-C.

pub mod health;
pub mod http_metrics;
pub mod metrics;
pub mod request_id;
pub mod shutdown;
pub mod telemetry;

use axum::serve::ListenerExt;
use axum::Router;
use tokio::net::TcpListener;

/// Serves `app` until `shutdown` resolves, then lets in-flight requests finish. Every
/// connection has TCP_NODELAY: a small answer written in two parts (head, then body) would
/// otherwise wait for the peer's delayed ACK, ~40 ms, under Nagle's algorithm.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
