//! `POST /v1/chat/completions` (and its alias `/v1/ai/chat`): OpenAI models are proxied as
//! they are (the proxy asks for stream usage itself); Claude models are translated to the
//! Anthropic Messages API and back.

use crate::catalog::{self, Provider};
use crate::errors::{Dialect, ProxyError};
use crate::relay::{Mode, Relay};
use crate::routes::{self, Caller, Ctx, Passed, Shared};
use crate::tally::Tally;
use crate::translate;
use crate::upstream::{AnthropicHeaders, Path};
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub async fn handle(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
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
    let (provider, prices) =
        catalog::lookup(&head.model).ok_or_else(|| ProxyError::UnknownModel(head.model.clone()))?;
    let stream = head.stream.unwrap_or(false);
    let wants_usage = head
        .stream_options
        .as_ref()
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    let request_bytes = body.len();
    let billing = || caller.billing(&shared, &ctx, &head.model, provider, prices, request_bytes);
    match provider {
        Provider::OpenAi => {
            // Metering must not depend on the client remembering to ask for usage.
            let upstream_body = if stream && !wants_usage {
                with_include_usage(&body)?
            } else {
                body
            };
            let (res, billing) = routes::send(
                &shared,
                billing(),
                Path::ChatCompletions,
                upstream_body,
                &AnthropicHeaders::default(),
            )
            .await?;
            let passed = Passed::of(&res);
            if stream && passed.ok() {
                let mode = if wants_usage {
                    Mode::Raw
                } else {
                    Mode::HideUsage
                };
                let relay = Relay::new(shared.upstreams.chunks(res), provider, mode, billing);
                return Ok(routes::event_stream(Body::from_stream(relay)));
            }
            let (bytes, billing) = routes::read_answer(&shared, res, billing).await?;
            let mut tally = Tally::default();
            if passed.ok() {
                tally.openai_body(&bytes);
            }
            billing.finish(&tally, passed.status);
            Ok(passed.respond(bytes))
        }
        Provider::Anthropic => {
            let req: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|e| ProxyError::BadRequest(format!("Invalid JSON body: {e}")))?;
            let translated =
                translate::request::to_anthropic(&req, stream).map_err(ProxyError::BadRequest)?;
            let upstream_body = Bytes::from(translated.to_string());
            let (res, billing) = routes::send(
                &shared,
                billing(),
                Path::Messages,
                upstream_body,
                &AnthropicHeaders::default(),
            )
            .await?;
            let status = res.status().as_u16();
            if !res.status().is_success() {
                let (bytes, billing) = routes::read_answer(&shared, res, billing).await?;
                billing.finish(&Tally::default(), status);
                // 529 (overloaded) is Anthropic's own; OpenAI clients know 503.
                let status = if status == 529 { 503 } else { status };
                return Err(ProxyError::Upstream {
                    status,
                    message: translate::response::error_message(&bytes),
                });
            }
            let created = ctx.created_at.timestamp();
            if stream {
                let t = translate::stream::ToOpenAi::new(head.model.clone(), created, wants_usage);
                let relay = Relay::new(
                    shared.upstreams.chunks(res),
                    provider,
                    Mode::Translate(Box::new(t)),
                    billing,
                );
                return Ok(routes::event_stream(Body::from_stream(relay)));
            }
            let (bytes, billing) = routes::read_answer(&shared, res, billing).await?;
            let mut tally = Tally::default();
            tally.anthropic_body(&bytes);
            let msg: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let out = translate::response::to_openai(&msg, &tally.tokens, created);
            billing.finish(&tally, status);
            Ok(axum::Json(out).into_response())
        }
    }
}

/// The request with `stream_options.include_usage = true`.
fn with_include_usage(body: &Bytes) -> Result<Bytes, ProxyError> {
    let mut v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ProxyError::BadRequest(format!("Invalid JSON body: {e}")))?;
    let Some(obj) = v.as_object_mut() else {
        return Err(ProxyError::BadRequest(
            "The request body must be a JSON object".into(),
        ));
    };
    let opts = obj
        .entry("stream_options")
        .or_insert_with(|| serde_json::json!({}));
    if !opts.is_object() {
        *opts = serde_json::json!({});
    }
    opts["include_usage"] = serde_json::Value::Bool(true);
    Ok(Bytes::from(v.to_string()))
}
