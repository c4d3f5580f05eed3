//! A whole Anthropic message as an OpenAI `chat.completion`, and Anthropic errors as OpenAI ones.

use crate::catalog::Tokens;
use serde_json::{json, Value};

pub fn usage(t: &Tokens) -> Value {
    json!({
        "prompt_tokens": t.input,
        "completion_tokens": t.output,
        "total_tokens": t.input + t.output,
        "prompt_tokens_details": {"cached_tokens": t.cache_read},
    })
}

pub fn to_openai(msg: &Value, tokens: &Tokens, created: i64) -> Value {
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in msg
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("tool_use") => calls.push(json!({
                "id": block.get("id").cloned().unwrap_or_default(),
                "type": "function",
                "function": {
                    "name": block.get("name").cloned().unwrap_or_default(),
                    "arguments": block.get("input").map(Value::to_string).unwrap_or_else(|| "{}".into()),
                },
            })),
            _ => {}
        }
    }
    let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) }, "refusal": null});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let stop = msg
        .get("stop_reason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    json!({
        "id": msg.get("id").and_then(Value::as_str).map(|id| format!("chatcmpl-{id}")),
        "object": "chat.completion",
        "created": created,
        "model": msg.get("model").cloned().unwrap_or_default(),
        "choices": [{"index": 0, "message": message, "logprobs": null,
            "finish_reason": super::finish_reason(stop)}],
        "usage": usage(tokens),
    })
}

/// The message of an Anthropic error body, if it is one.
pub fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default()
}
