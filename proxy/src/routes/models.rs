//! `GET /v1/models`: the models Poindexter serves, in OpenAI's list format, or in Anthropic's
//! when the caller sends `anthropic-version` (as the Anthropic SDK does).

use crate::catalog::{Provider, LISTED};
use crate::errors::{Dialect, ProxyError};
use crate::routes::{self, Caller, Ctx, Shared};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

pub async fn handle(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let dialect = if headers.contains_key("anthropic-version") {
        Dialect::Anthropic
    } else {
        Dialect::OpenAi
    };
    routes::serve(
        shared,
        dialect,
        headers,
        Ok(Bytes::new()),
        move |s, c, k, h, b| work(s, c, k, h, b, dialect),
    )
    .await
}

async fn work(
    _shared: Arc<Shared>,
    _ctx: Ctx,
    _caller: Caller,
    _headers: HeaderMap,
    _body: Bytes,
    dialect: Dialect,
) -> Result<Response, ProxyError> {
    const CREATED: i64 = 1_735_689_600; // 2025-01-01, a fixed date: these are aliases.
    let body = match dialect {
        Dialect::OpenAi => json!({
            "object": "list",
            "data": LISTED.iter().map(|(id, p, _)| json!({
                "id": id, "object": "model", "created": CREATED,
                "owned_by": match p { Provider::OpenAi => "openai", Provider::Anthropic => "anthropic" },
            })).collect::<Vec<_>>(),
        }),
        Dialect::Anthropic => {
            let claude: Vec<_> = LISTED
                .iter()
                .filter(|(_, p, _)| *p == Provider::Anthropic)
                .collect();
            json!({
                "data": claude.iter().map(|(id, _, name)| json!({
                    "type": "model", "id": id, "display_name": name,
                    "created_at": "2025-01-01T00:00:00Z",
                })).collect::<Vec<_>>(),
                "has_more": false,
                "first_id": claude.first().map(|m| m.0),
                "last_id": claude.last().map(|m| m.0),
            })
        }
    };
    Ok(axum::Json(body).into_response())
}
