//! The routes that carry nearly all traffic, `POST /v1/chat/completions` (and its alias
//! `/v1/ai/chat`) and `POST /v1/messages`, answered straight from hyper; every other request
//! goes through the axum router. For a choice among three paths the router cost ~15
//! allocations and ~8k instructions a request (cloning itself and the header map, boxing the
//! body, recording the matched path in the request's extensions), a tenth of a proxied
//! request (`docs/performance.md`). Both ways end in the same handlers (`chat::work`, `messages::work`) and read
//! the body under the same limit, so the answers are the same.

use crate::errors::{Dialect, ProxyError};
use crate::routes::{self, chat, messages, Shared};
use axum::body::{Body, Bytes};
use axum::response::Response;
use axum::Router;
use futures::future::{Either, FutureExt};
use http::{Method, Request};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use tower::ServiceExt;

/// What a serving thread answers requests with.
#[derive(Clone)]
pub struct Lanes {
    pub router: Router,
    pub shared: Arc<Shared>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Route {
    Chat,
    Messages,
}

fn route(method: &Method, path: &str) -> Option<Route> {
    if method != Method::POST {
        return None;
    }
    match path {
        "/v1/chat/completions" | "/v1/ai/chat" => Some(Route::Chat),
        "/v1/messages" => Some(Route::Messages),
        _ => None,
    }
}

impl crate::per_core::Answer for Lanes {
    fn call(
        &self,
        req: Request<Incoming>,
    ) -> impl Future<Output = Result<Response, Infallible>> + Send + use<> {
        match route(req.method(), req.uri().path()) {
            Some(route) => Either::Left(answer(self.shared.clone(), route, req).map(Ok)),
            None => Either::Right(self.router.clone().oneshot(req.map(Body::new))),
        }
    }
}

async fn answer(shared: Arc<Shared>, route: Route, req: Request<Incoming>) -> Response {
    let (parts, body) = req.into_parts();
    let body = read_body(body).await;
    let headers = parts.headers;
    match route {
        Route::Chat => routes::serve(shared, Dialect::OpenAi, headers, body, chat::work).await,
        Route::Messages => {
            routes::serve(shared, Dialect::Anthropic, headers, body, messages::work).await
        }
    }
}

/// The whole body, up to `MAX_REQUEST_BYTES` (as the router's `DefaultBodyLimit`).
async fn read_body(body: Incoming) -> Result<Bytes, ProxyError> {
    match Limited::new(body, crate::MAX_REQUEST_BYTES).collect().await {
        Ok(all) => Ok(all.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(ProxyError::TooLarge),
        Err(e) => Err(ProxyError::BadRequest(format!(
            "Failed to buffer the request body: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only POSTs to the exact paths go around the router: anything else (another method, a
    /// trailing slash, another route) gets the router's own answer, 405 and 404 included.
    #[test]
    fn takes_only_posts_to_the_busy_paths() {
        let post = Method::POST;
        assert_eq!(route(&post, "/v1/chat/completions"), Some(Route::Chat));
        assert_eq!(route(&post, "/v1/ai/chat"), Some(Route::Chat));
        assert_eq!(route(&post, "/v1/messages"), Some(Route::Messages));
        for path in [
            "/v1/chat/completions/",
            "/v1/embeddings",
            "/v1/models",
            "/healthz",
            "/",
        ] {
            assert_eq!(route(&post, path), None, "{path}");
        }
        for method in [Method::GET, Method::PUT, Method::HEAD, Method::OPTIONS] {
            assert_eq!(route(&method, "/v1/chat/completions"), None, "{method}");
        }
    }
}
