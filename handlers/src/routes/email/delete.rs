//! `DELETE /v1/email/messages/{id}`: moves the message to the trash (Gmail removes it for good
//! after 30 days); it leaves the inbox at once. Repeating it is harmless.

use super::message_id;
use crate::comms::{google_error, ActiveIdentity};
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;

#[utoipa::path(delete, path = "/v1/email/messages/{id}", tag = "email", security(("bearer" = [])),
    params(("id" = String, Path, description = "message id")),
    responses((status = 204, description = "moved to the trash"), (status = 401), (status = 404),
        (status = 409), (status = 503)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: ActiveIdentity,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = message_id(&id)?;
    state
        .providers
        .google()?
        .trash_message(caller.mailbox()?, id)
        .await
        .map_err(|e| google_error(e, "message"))?;
    Ok(StatusCode::NO_CONTENT)
}
