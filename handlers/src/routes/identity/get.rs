//! `GET /v1/identity`: email, phone, Signal state and overall status.

use super::{load, IdentityView};
use crate::auth::AuthUser;
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;

#[utoipa::path(get, path = "/v1/identity", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = IdentityView), (status = 401), (status = 404)))]
pub async fn identity(
    State(state): State<AppState>,
    auth: AuthUser,
) -> ApiResult<Json<IdentityView>> {
    Ok(Json(load(&state.pool, auth.user_id).await?.into()))
}
