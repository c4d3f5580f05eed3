//! `GET /v1/api-keys`: the caller's active keys (never the keys themselves).

use super::ApiKeyView;
use crate::auth::AuthUser;
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use utoipa::ToSchema;

#[derive(serde::Serialize, ToSchema)]
pub struct ApiKeyList {
    data: Vec<ApiKeyView>,
}

#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys", security(("bearer" = [])),
    responses((status = 200, body = ApiKeyList), (status = 401)))]
pub async fn list(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<ApiKeyList>> {
    // Uses not yet flushed would show a stale last_used_at: flush first, it is cheap.
    state.key_usage.flush(&state.pool).await;
    let keys = db::api_keys::list_active(&state.pool, auth.user_id).await?;
    Ok(Json(ApiKeyList {
        data: keys.into_iter().map(Into::into).collect(),
    }))
}
