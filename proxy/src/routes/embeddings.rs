//! `POST /v1/embeddings`: OpenAI embeddings, proxied as they are and metered as input tokens.

use crate::catalog::{self, Provider};
use crate::errors::{Dialect, ProxyError};
use crate::routes::{self, Caller, Ctx, Passed, Shared};
use crate::tally::Tally;
use crate::upstream::{AnthropicHeaders, Path};
use axum::body::Bytes;
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
    routes::serve(shared, Dialect::OpenAi, headers, body, work).await
}

async fn work(
    shared: Arc<Shared>,
    ctx: Ctx,
    caller: Caller,
    _headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ProxyError> {
    let head = routes::head(&body)?;
    let (provider, prices) = catalog::lookup(&head.model)
        .filter(|(p, _)| *p == Provider::OpenAi)
        .ok_or_else(|| ProxyError::UnknownModel(head.model.clone()))?;
    let metering = caller.request_meter(&shared, &ctx, &head.model, provider, prices, body.len());
    let (res, metering) = routes::send(
        &shared,
        metering,
        Path::Embeddings,
        body,
        &AnthropicHeaders::default(),
    )
    .await?;
    let passed = Passed::of(&res);
    let (bytes, metering) = routes::read_answer(&shared, res, metering).await?;
    let mut tally = Tally::default();
    if passed.ok() {
        tally.openai_body(&bytes);
        // Embeddings produce no output tokens; say so rather than estimate some.
        tally.output_seen = true;
    }
    metering.finish(&tally, passed.status);
    Ok(passed.respond(bytes))
}
