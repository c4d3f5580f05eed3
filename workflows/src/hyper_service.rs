//! Serves a raw hyper service (the Restate endpoint) on one port together with the ops routes
//! (`/healthz`, `/readyz`, `/metrics`). HTTP/1.1 and HTTP/2 prior knowledge are both accepted:
//! Restate speaks h2c, curl and Prometheus speak HTTP/1.1.

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;

const OPS_PATHS: &[&str] = &["/healthz", "/readyz", "/metrics"];

pub async fn serve<S, B>(
    listener: TcpListener,
    ops: Router,
    service: S,
    shutdown: impl std::future::Future<Output = ()>,
) where
    S: Service<http::Request<Incoming>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                // Restate's journal entries and our answers are small frames written one by
                // one: without TCP_NODELAY each waits ~40 ms for a delayed ACK (Nagle).
                let _ = stream.set_nodelay(true);
                let ops = ops.clone();
                let service = service.clone();
                let svc = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    let ops = ops.clone();
                    let service = service.clone();
                    async move {
                        if OPS_PATHS.contains(&req.uri().path()) {
                            ops.oneshot(req.map(Body::new)).await
                        } else {
                            let res = service.call(req).await?;
                            Ok(res.map(Body::new))
                        }
                    }
                });
                let conn = auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                    .into_owned();
                let conn = graceful.watch(conn);
                // Serving a connection, outside any workflow: not a handler's background task.
                #[allow(clippy::disallowed_methods)]
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("timed out waiting for connections to close");
    }
}
