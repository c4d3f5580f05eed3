//! Anthropic emulator: `POST /anthropic/v1/messages` (JSON, or SSE `message_start` …
//! `message_delta` with the output usage … `message_stop`), `GET /anthropic/v1/models`.
//! Requires `x-api-key` and `anthropic-version`, as the real API does.

use crate::ai::control::{AiState, Verdict};
use crate::ai::reply::{self, Finish, OfferedTool, Reply};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

static SEQ: AtomicU64 = AtomicU64::new(1);

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"type": "error", "error": {"type": kind, "message": message}})),
    )
        .into_response()
}

fn failure(status: u16, retry_after_s: u64) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (kind, message) = match status {
        429 => (
            "rate_limit_error",
            "Number of requests has exceeded your rate limit (sandbox).",
        ),
        529 => ("overloaded_error", "Overloaded"),
        _ => ("api_error", "Internal server error (sandbox)."),
    };
    let mut res = error(code, kind, message);
    if status == 429 {
        res.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from(retry_after_s),
        );
    }
    res
}

fn guard(headers: &HeaderMap, body: &Bytes) -> Result<Value, Box<Response>> {
    let key_ok = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|k| !k.trim().is_empty());
    if !key_ok {
        return Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid x-api-key",
        )));
    }
    if headers.get("anthropic-version").is_none() {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "anthropic-version: header is required",
        )));
    }
    serde_json::from_slice(body).map_err(|_| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "request body is not valid JSON",
        ))
    })
}

pub async fn messages(
    State(state): State<Arc<AiState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = match guard(&headers, &body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let settings = match state.admit("anthropic", &req) {
        Verdict::Fail {
            status,
            retry_after_s,
        } => return failure(status, retry_after_s),
        Verdict::Serve(s) => s,
    };
    let (Some(model), Some(max)) = (
        req.get("model").and_then(Value::as_str),
        req.get("max_tokens").and_then(Value::as_u64),
    ) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "model and max_tokens: Field required",
        );
    };
    let messages = req.get("messages").cloned().unwrap_or(Value::Null);
    let system = req.get("system").cloned().unwrap_or(Value::Null);
    let prompt = reply::count_prompt(&[&system, &messages]);
    let last_has_result = messages
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .is_some_and(|blocks| {
            blocks
                .iter()
                .any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        });
    let tool = req
        .get("tools")
        .and_then(Value::as_array)
        .and_then(|t| t.first())
        .filter(|_| !last_has_result)
        .and_then(|t| {
            Some(OfferedTool {
                name: t.get("name")?.as_str()?,
                schema: t.get("input_schema"),
            })
        });
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let mut reply = reply::compose(&settings, prompt, Some(max), tool, seq);
    if let Some(t) = reply.tool.as_mut() {
        t.id = format!("toolu_sbx{seq}");
    }
    let id = format!("msg_sbx{seq}");
    if !req.get("stream").and_then(Value::as_bool).unwrap_or(false) {
        if settings.first_token_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(settings.first_token_ms)).await;
        }
        return reply::whole(&message(&id, model, &reply), &settings);
    }
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream; charset=utf-8")
        .body(reply::paced(
            events(&id, model, &reply),
            &settings,
            state.abandoned.clone(),
        ))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn stop_reason(f: &Finish) -> &'static str {
    match f {
        Finish::Stop => "end_turn",
        Finish::Length => "max_tokens",
        Finish::ToolUse => "tool_use",
    }
}

fn usage(r: &Reply, output: u64) -> Value {
    json!({"input_tokens": r.prompt_tokens - r.cached_tokens,
        "cache_creation_input_tokens": 0, "cache_read_input_tokens": r.cached_tokens,
        "output_tokens": output})
}

fn message(id: &str, model: &str, r: &Reply) -> Value {
    let content = match &r.tool {
        Some(t) => json!([{"type": "tool_use", "id": t.id, "name": t.name,
            "input": serde_json::from_str::<Value>(&t.arguments).unwrap_or_default()}]),
        None => json!([{"type": "text", "text": r.text()}]),
    };
    json!({"id": id, "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": stop_reason(&r.finish), "stop_sequence": null,
        "usage": usage(r, r.completion_tokens)})
}

fn events(id: &str, model: &str, r: &Reply) -> Vec<reply::Frame> {
    let mut frames = vec![reply::sse_event(
        "message_start",
        &json!({"type": "message_start", "message": {"id": id, "type": "message",
                "role": "assistant", "model": model, "content": [], "stop_reason": null,
                "stop_sequence": null, "usage": usage(r, 1)}}),
    )];
    let block = match &r.tool {
        Some(t) => json!({"type": "tool_use", "id": t.id, "name": t.name, "input": {}}),
        None => json!({"type": "text", "text": ""}),
    };
    frames.push(reply::sse_event(
        "content_block_start",
        &json!({"type": "content_block_start", "index": 0, "content_block": block}),
    ));
    frames.push(reply::sse_event("ping", &json!({"type": "ping"})));
    if let Some(t) = &r.tool {
        let (a, b) = t.arguments.split_at(t.arguments.len() / 2);
        for part in [a, b] {
            frames.push(reply::token(reply::sse_event(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": part}}),
            )));
        }
    }
    for piece in &r.pieces {
        frames.push(reply::token(reply::sse_event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": piece}}),
        )));
    }
    frames.push(reply::sse_event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 0}),
    ));
    frames.push(reply::sse_event(
        "message_delta",
        &json!({"type": "message_delta",
            "delta": {"stop_reason": stop_reason(&r.finish), "stop_sequence": null},
            "usage": {"output_tokens": r.completion_tokens}}),
    ));
    frames.push(reply::sse_event(
        "message_stop",
        &json!({"type": "message_stop"}),
    ));
    frames
}

pub const MODELS: &[(&str, &str)] = &[
    ("claude-opus-4-1", "Claude Opus 4.1"),
    ("claude-sonnet-4-5", "Claude Sonnet 4.5"),
    ("claude-haiku-4-5", "Claude Haiku 4.5"),
    ("claude-3-5-haiku-latest", "Claude Haiku 3.5"),
];

pub async fn models(State(state): State<Arc<AiState>>, headers: HeaderMap) -> Response {
    if headers.get("x-api-key").is_none() {
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid x-api-key",
        );
    }
    state.count();
    let data: Vec<Value> = MODELS
        .iter()
        .map(|(id, name)| {
            json!({"type": "model", "id": id, "display_name": name,
            "created_at": "2025-05-22T00:00:00Z"})
        })
        .collect();
    axum::Json(json!({"data": data, "has_more": false,
        "first_id": MODELS.first().map(|m| m.0), "last_id": MODELS.last().map(|m| m.0)}))
    .into_response()
}
