//! OpenAI chat completions ⇄ Anthropic messages, for OpenAI-format requests to Claude models:
//! the request (`request`), a whole answer (`response`) and a stream (`stream`).

pub mod request;
pub mod response;
pub mod stream;

/// Anthropic stop reasons as OpenAI finish reasons.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}
