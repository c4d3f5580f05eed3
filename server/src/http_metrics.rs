//! Request rate, latency and errors by route, for `/metrics`:
//! `poindexter_http_requests_total` and `poindexter_http_request_duration_seconds`
//! `{route, method, status_class}`, and `poindexter_http_errors_total{route, kind}`.
//! The route is the matched template (`/v1/api-keys/{id}`), never the raw path.

use axum::response::Response;
use std::time::Duration;

/// What went wrong, in the error body's own code (`bad_request`, `not_found`, `internal`…).
/// A handler's error response carries it so the error rate can be split by kind without
/// reading the body.
#[derive(Clone, Copy, Debug)]
pub struct ErrorKind(pub &'static str);

/// Records one finished request.
pub fn observe(route: &str, method: &http::Method, res: &Response, elapsed: Duration) {
    let status = res.status().as_u16();
    let class = crate::metrics::status_class(status);
    let labels = [
        ("route", route.to_owned()),
        ("method", method_label(method).to_owned()),
        ("status_class", class.to_owned()),
    ];
    metrics::counter!("poindexter_http_requests_total", &labels).increment(1);
    metrics::histogram!("poindexter_http_request_duration_seconds", &labels)
        .record(elapsed.as_secs_f64());
    if status >= 400 {
        let kind = res
            .extensions()
            .get::<ErrorKind>()
            .map(|k| k.0)
            .unwrap_or_else(|| kind_of_status(status));
        metrics::counter!("poindexter_http_errors_total", "route" => route.to_owned(), "kind" => kind)
            .increment(1);
    }
}

/// Methods outside the usual set would each be a new series: they share one label.
fn method_label(m: &http::Method) -> &'static str {
    match *m {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// For errors no handler described (axum's own rejections, the body limit, a panic).
fn kind_of_status(status: u16) -> &'static str {
    match status {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        409 => "conflict",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "unprocessable",
        429 => "rate_limited",
        503 => "unavailable",
        500..=599 => "internal",
        _ => "other_client_error",
    }
}
