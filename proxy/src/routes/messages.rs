//! `POST /v1/messages`: the Anthropic Messages API, proxied as it is (stream or not).

use crate::catalog::{self, Provider};
use crate::errors::{Dialect, ProxyError};
use crate::relay::{Mode, Relay};
use crate::routes::{self, Caller, Ctx, Passed, Shared};
use crate::tally::Tally;
use crate::upstream::{AnthropicHeaders, Path};
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use std::sync::Arc;

pub async fn handle(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = body.map_err(routes::rejected);
    routes::serve(shared, Dialect::Anthropic, headers, body, work).await
}

/// Also called by `routes::direct`, for the requests it answers without the router.
pub(super) async fn work(
    shared: Arc<Shared>,
    ctx: Ctx,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ProxyError> {
    let head = routes::head(&body)?;
    let (provider, prices) = catalog::lookup(&head.model)
        .filter(|(p, _)| *p == Provider::Anthropic)
        .ok_or_else(|| ProxyError::UnknownModel(head.model.clone()))?;
    let stream = head.stream.unwrap_or(false);
    let metering = caller.request_meter(&shared, &ctx, &head.model, provider, prices, body.len());
    let anthropic = AnthropicHeaders {
        version: headers.get("anthropic-version").cloned(),
        beta: headers.get("anthropic-beta").cloned(),
    };
    let (res, metering) = routes::send(&shared, metering, Path::Messages, body, &anthropic).await?;
    let passed = Passed::of(&res);
    if stream && passed.ok() {
        let relay = Relay::new(shared.upstreams.chunks(res), provider, Mode::Raw, metering);
        return Ok(routes::event_stream(Body::from_stream(relay)));
    }
    let (bytes, metering) = routes::read_answer(&shared, res, metering).await?;
    let mut tally = Tally::default();
    if passed.ok() {
        tally.anthropic_body(&bytes);
    }
    metering.finish(&tally, passed.status);
    Ok(passed.respond(bytes))
}
