//! `GET /v1/email/messages/{id}`: one message of the identity's mailbox, with its body.

use super::{message_id, MessageView};
use crate::comms::{google_error, ActiveIdentity};
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::Json;

#[utoipa::path(get, path = "/v1/email/messages/{id}", tag = "email", security(("bearer" = [])),
    params(("id" = String, Path, description = "message id from the inbox or a send")),
    responses((status = 200, body = MessageView), (status = 401), (status = 404), (status = 409),
        (status = 503)))]
pub async fn get(
    State(state): State<AppState>,
    caller: ActiveIdentity,
    Path(id): Path<String>,
) -> ApiResult<Json<MessageView>> {
    let id = message_id(&id)?;
    let message = state
        .providers
        .google()?
        .get_message(caller.mailbox()?, id)
        .await
        .map_err(|e| google_error(e, "message"))?;
    Ok(Json(message.into()))
}
