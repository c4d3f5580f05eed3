//! Emulators of the OpenAI and Anthropic HTTP APIs (`/openai/v1/...`, `/anthropic/v1/...`) with
//! their real JSON and SSE wire formats, usage in the final events, and AI-specific knobs set
//! through `GET|PUT|DELETE /_sandbox/ai` (see `control`).

mod anthropic;
pub(crate) mod control;
mod openai;
mod reply;

use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

/// Routes of both emulators and their control endpoint, ready to merge into the sandbox.
pub fn router(state: Arc<control::AiState>) -> Router {
    Router::new()
        .route("/openai/v1/chat/completions", post(openai::chat))
        .route("/openai/v1/embeddings", post(openai::embeddings))
        .route("/openai/v1/models", get(openai::models))
        .route("/anthropic/v1/messages", post(anthropic::messages))
        .route("/anthropic/v1/models", get(anthropic::models))
        .route(
            "/_sandbox/ai",
            get(control::show).put(control::set).delete(control::reset),
        )
        // As the real APIs, accept large prompts (axum's default limit is 2 MB).
        .layer(axum::extract::DefaultBodyLimit::max(32 * 1024 * 1024))
        .with_state(state)
}
