//! Requests the proxy has no route or method for, answered in the caller's format: the SDKs
//! show the error's message, where an empty 404 would leave the caller with none (say, an
//! OpenAI SDK calling `/v1/responses`). Like every AI answer they carry an `x-request-id`,
//! which is what a caller quotes when asking what went wrong.

use super::Ctx;
use crate::errors::{Dialect, ProxyError};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;

pub async fn not_found(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let res = ProxyError::UnknownRoute(shown(&method, &uri)).into_response(dialect(&headers));
    Ctx::new().decorate(res, None)
}

pub async fn method_not_allowed(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let res = ProxyError::MethodNotAllowed(shown(&method, &uri)).into_response(dialect(&headers));
    Ctx::new().decorate(res, None)
}

/// Anthropic's SDK sends `anthropic-version` and `x-api-key`; anything else gets OpenAI's format.
fn dialect(headers: &HeaderMap) -> Dialect {
    if headers.contains_key("anthropic-version") || headers.contains_key("x-api-key") {
        Dialect::Anthropic
    } else {
        Dialect::OpenAi
    }
}

/// `METHOD /path`, without the query and cut short: it is echoed back to the caller.
fn shown(method: &Method, uri: &Uri) -> String {
    let path: String = uri.path().chars().take(200).collect();
    format!("{method} {path}")
}
