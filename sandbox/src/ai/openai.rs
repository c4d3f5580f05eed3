//! OpenAI emulator: `POST /openai/v1/chat/completions` (JSON or SSE `chat.completion.chunk`s,
//! usage in a last chunk with empty `choices` when `stream_options.include_usage` is set),
//! `POST /openai/v1/embeddings` (float or base64), `GET /openai/v1/models`.

use crate::ai::control::{AiState, Verdict};
use crate::ai::reply::{self, Finish, OfferedTool, Reply};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

static SEQ: AtomicU64 = AtomicU64::new(1);

fn error(status: StatusCode, kind: &str, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(
            json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
        ),
    )
        .into_response()
}

fn authorised(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|k| !k.trim().is_empty())
}

fn failure(status: u16, retry_after_s: u64) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = match status {
        429 => error(
            code,
            "requests",
            "rate_limit_exceeded",
            "Rate limit reached (sandbox).",
        ),
        _ => error(
            code,
            "server_error",
            "server_error",
            "The server had an error (sandbox).",
        ),
    };
    if status == 429 {
        res.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from(retry_after_s),
        );
    }
    res
}

fn guard(headers: &HeaderMap, body: &Bytes) -> Result<Value, Box<Response>> {
    if !authorised(headers) {
        return Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            "Incorrect API key provided.",
        )));
    }
    serde_json::from_slice(body).map_err(|_| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_json",
            "We could not parse the JSON body of your request.",
        ))
    })
}

pub async fn chat(State(state): State<Arc<AiState>>, headers: HeaderMap, body: Bytes) -> Response {
    let req = match guard(&headers, &body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let settings = match state.admit("openai", &req) {
        Verdict::Fail {
            status,
            retry_after_s,
        } => return failure(status, retry_after_s),
        Verdict::Serve(s) => s,
    };
    let Some(model) = req.get("model").and_then(Value::as_str) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "missing_required_parameter",
            "you must provide a model parameter",
        );
    };
    let messages = req.get("messages").cloned().unwrap_or(Value::Null);
    let prompt = reply::count_prompt(&[&messages]);
    let max = req
        .get("max_completion_tokens")
        .or_else(|| req.get("max_tokens"))
        .and_then(Value::as_u64);
    // A tool is called when tools are offered and the last message is not a tool result.
    let last_is_tool = messages
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m.get("role"))
        .and_then(Value::as_str)
        == Some("tool");
    let tool = req
        .get("tools")
        .and_then(Value::as_array)
        .and_then(|t| t.first())
        .filter(|_| !last_is_tool)
        .and_then(|t| t.get("function"))
        .and_then(|f| {
            Some(OfferedTool {
                name: f.get("name")?.as_str()?,
                schema: f.get("parameters"),
            })
        });
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let reply = reply::compose(&settings, prompt, max, tool, seq);
    let id = format!("chatcmpl-sbx{seq}");
    let stream = req.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if !stream {
        if settings.first_token_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(settings.first_token_ms)).await;
        }
        return reply::whole(&completion(&id, model, &reply), &settings);
    }
    let include_usage = req
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let frames = chunks(&id, model, &reply, include_usage);
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream; charset=utf-8")
        .body(reply::paced(frames, &settings, state.abandoned.clone()))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn finish_reason(f: &Finish) -> &'static str {
    match f {
        Finish::Stop => "stop",
        Finish::Length => "length",
        Finish::ToolUse => "tool_calls",
    }
}

fn usage(r: &Reply) -> Value {
    json!({
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens,
        "total_tokens": r.prompt_tokens + r.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": r.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
    })
}

fn completion(id: &str, model: &str, r: &Reply) -> Value {
    let mut message = json!({"role": "assistant", "content": null, "refusal": null});
    if let Some(t) = &r.tool {
        message["tool_calls"] = json!([{"id": t.id, "type": "function",
            "function": {"name": t.name, "arguments": t.arguments}}]);
    } else {
        message["content"] = Value::String(r.text());
    }
    json!({
        "id": id, "object": "chat.completion", "created": reply::unix_now(), "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": null,
            "finish_reason": finish_reason(&r.finish)}],
        "usage": usage(r),
        "service_tier": "default",
        "system_fingerprint": "fp_sandbox"
    })
}

fn chunks(id: &str, model: &str, r: &Reply, include_usage: bool) -> Vec<reply::Frame> {
    let created = reply::unix_now();
    let chunk = |delta: Value, finish: Value| {
        let mut c = json!({"id": id, "object": "chat.completion.chunk", "created": created,
            "model": model, "system_fingerprint": "fp_sandbox",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        if include_usage {
            c["usage"] = Value::Null;
        }
        reply::sse_data(&c)
    };
    let mut frames = vec![chunk(
        json!({"role": "assistant", "content": "", "refusal": null}),
        Value::Null,
    )];
    if let Some(t) = &r.tool {
        frames.push(reply::token(chunk(
            json!({"tool_calls": [{"index": 0, "id": t.id, "type": "function",
                "function": {"name": t.name, "arguments": ""}}]}),
            Value::Null,
        )));
        let (a, b) = t.arguments.split_at(t.arguments.len() / 2);
        for part in [a, b] {
            frames.push(reply::token(chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}),
                Value::Null,
            )));
        }
    }
    for piece in &r.pieces {
        frames.push(reply::token(chunk(json!({"content": piece}), Value::Null)));
    }
    frames.push(chunk(
        json!({}),
        Value::String(finish_reason(&r.finish).into()),
    ));
    if include_usage {
        frames.push(reply::sse_data(
            &json!({"id": id, "object": "chat.completion.chunk",
            "created": created, "model": model, "system_fingerprint": "fp_sandbox",
            "choices": [], "usage": usage(r)}),
        ));
    }
    frames.push(reply::Frame {
        bytes: Bytes::from_static(b"data: [DONE]\n\n"),
        token: false,
    });
    frames
}

pub async fn embeddings(
    State(state): State<Arc<AiState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = match guard(&headers, &body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    if let Verdict::Fail {
        status,
        retry_after_s,
    } = state.admit("openai", &req)
    {
        return failure(status, retry_after_s);
    }
    let model = req.get("model").and_then(Value::as_str).unwrap_or("");
    let inputs: Vec<String> = match req.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect(),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_input",
                "'input' is required",
            )
        }
    };
    let dims = req
        .get("dimensions")
        .and_then(Value::as_u64)
        .unwrap_or(if model.ends_with("large") { 3072 } else { 1536 }) as usize;
    let base64 = req.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let mut tokens = 0u64;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| {
            tokens += text.split_whitespace().count().max(1) as u64;
            let vector = vector(text, dims);
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    axum::Json(json!({"object": "list", "data": data, "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}))
    .into_response()
}

/// A deterministic unit-ish vector derived from the text.
fn vector(text: &str, dims: usize) -> Vec<f32> {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    (0..dims)
        .map(|i| {
            h = h
                .wrapping_mul(6364136223846793005)
                .wrapping_add(i as u64 | 1);
            ((h >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .map(|x| x / (dims as f32).sqrt())
        .collect()
}

pub const MODELS: &[&str] = &[
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "o3-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
];

pub async fn models(State(state): State<Arc<AiState>>, headers: HeaderMap) -> Response {
    if !authorised(&headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            "Incorrect API key provided.",
        );
    }
    state.count();
    let data: Vec<Value> = MODELS
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 1_715_367_049, "owned_by": "system"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}
