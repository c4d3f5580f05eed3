//! `DELETE /v1/calendar/events/{id}`: removes the event; 404 once it is gone.

use super::event_id;
use crate::comms::{google_error, ActiveIdentity};
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;

#[utoipa::path(delete, path = "/v1/calendar/events/{id}", tag = "calendar", security(("bearer" = [])),
    params(("id" = String, Path, description = "event id")),
    responses((status = 204), (status = 401), (status = 404), (status = 409), (status = 503)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: ActiveIdentity,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = event_id(&id)?;
    state
        .providers
        .google()?
        .delete_event(caller.mailbox()?, id)
        .await
        .map_err(|e| google_error(e, "event"))?;
    Ok(StatusCode::NO_CONTENT)
}
