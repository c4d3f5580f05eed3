//! `POST /v1/chat/completions` (and its alias `/v1/ai/chat`): OpenAI models are proxied as
//! they are (the proxy asks for stream usage itself); Claude models are translated to the
//! Anthropic Messages API and back.

use crate::catalog::{self, Provider};
use crate::errors::{Dialect, ProxyError};
use crate::relay::{Mode, Relay};
use crate::routes::{self, Caller, Ctx, Given, Passed, Shared};
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
    let body = body.map_err(routes::rejected);
    routes::serve(shared, Dialect::OpenAi, headers, body, work).await
}

/// Also called by `routes::direct`, for the requests it answers without the router.
pub(super) async fn work(
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
    let wants_usage = match &head.stream_options {
        Given::Set(o) => o.include_usage.unwrap_or(false),
        Given::Absent | Given::Null => false,
    };
    let request_bytes = body.len();
    let metering =
        || caller.request_meter(&shared, &ctx, &head.model, provider, prices, request_bytes);
    match provider {
        Provider::OpenAi => {
            // Metering must not depend on the client remembering to ask for usage.
            let upstream_body = if stream && !wants_usage {
                with_include_usage(&body, matches!(head.stream_options, Given::Absent))?
            } else {
                body
            };
            let (res, metering) = routes::send(
                &shared,
                metering(),
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
                    Mode::HideUsage {
                        incomplete: Vec::new(),
                    }
                };
                let relay = Relay::new(shared.upstreams.chunks(res), provider, mode, metering);
                return Ok(routes::event_stream(Body::from_stream(relay)));
            }
            let (bytes, metering) = routes::read_answer(&shared, res, metering).await?;
            let mut tally = Tally::default();
            if passed.ok() {
                tally.openai_body(&bytes);
            }
            metering.finish(&tally, passed.status);
            Ok(passed.respond(bytes))
        }
        Provider::Anthropic => {
            let req: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|e| ProxyError::BadRequest(format!("Invalid JSON body: {e}")))?;
            let translated =
                translate::request::to_anthropic(&req, stream).map_err(ProxyError::BadRequest)?;
            let upstream_body = Bytes::from(translated.to_string());
            let (res, metering) = routes::send(
                &shared,
                metering(),
                Path::Messages,
                upstream_body,
                &AnthropicHeaders::default(),
            )
            .await?;
            let status = res.status().as_u16();
            if !res.status().is_success() {
                let (bytes, metering) = routes::read_answer(&shared, res, metering).await?;
                metering.finish(&Tally::default(), status);
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
                    metering,
                );
                return Ok(routes::event_stream(Body::from_stream(relay)));
            }
            let (bytes, metering) = routes::read_answer(&shared, res, metering).await?;
            let mut tally = Tally::default();
            tally.anthropic_body(&bytes);
            let msg: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let out = translate::response::to_openai(&msg, &tally.tokens, created);
            metering.finish(&tally, status);
            Ok(axum::Json(out).into_response())
        }
    }
}

/// The request with `stream_options.include_usage = true`. When the request has no
/// `stream_options` (`absent`, as read by `routes::head`), the member is written in after the
/// opening brace: a parse and re-serialisation of the whole request cost more than relaying
/// the stream that answers it.
fn with_include_usage(body: &Bytes, absent: bool) -> Result<Bytes, ProxyError> {
    const MEMBER: &[u8] = br#"{"stream_options":{"include_usage":true},"#;
    let open = body.iter().position(|b| !b.is_ascii_whitespace());
    // `routes::head` read an object with a `model`, so a member follows the brace.
    if let (true, Some(open)) = (absent, open.filter(|&i| body[i] == b'{')) {
        let mut out = Vec::with_capacity(body.len() + MEMBER.len());
        out.extend_from_slice(MEMBER);
        out.extend_from_slice(&body[open + 1..]);
        return Ok(Bytes::from(out));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the request left `stream_options` out, set it to null or to something, the
    /// upstream is asked for usage and every other member is kept.
    #[test]
    fn asks_for_stream_usage_whatever_the_request_said() {
        for body in [
            r#" {"model":"gpt-4o-mini","stream":true,"messages":[]}"#,
            r#"{"model":"gpt-4o-mini","stream":true,"stream_options":null,"messages":[]}"#,
            r#"{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":false},"messages":[]}"#,
        ] {
            let head = routes::head(body.as_bytes()).unwrap();
            let absent = matches!(head.stream_options, Given::Absent);
            let out = with_include_usage(&Bytes::from(body), absent).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v["stream_options"]["include_usage"], true, "{body}");
            assert_eq!(v["model"], "gpt-4o-mini");
            assert_eq!(v["messages"], serde_json::json!([]));
            assert_eq!(v.as_object().unwrap().len(), 4, "{body}");
        }
    }
}
