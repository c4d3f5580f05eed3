//! `PUT /v1/calendar/events/{id}`: replaces the event's fields (same body as a create).

use super::{event_id, EventRequest, EventView};
use crate::comms::{google_error, ActiveIdentity};
use crate::error::ApiResult;
use crate::extract::ValidJson;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::Json;

#[utoipa::path(put, path = "/v1/calendar/events/{id}", tag = "calendar", security(("bearer" = [])),
    params(("id" = String, Path, description = "event id")),
    request_body = EventRequest,
    responses((status = 200, body = EventView), (status = 400), (status = 401), (status = 404),
        (status = 409), (status = 503)))]
pub async fn update(
    State(state): State<AppState>,
    caller: ActiveIdentity,
    Path(id): Path<String>,
    ValidJson(req): ValidJson<EventRequest>,
) -> ApiResult<Json<EventView>> {
    let id = event_id(&id)?;
    let input = req.into_input()?;
    let event = state
        .providers
        .google()?
        .update_event(caller.mailbox()?, id, &input)
        .await
        .map_err(|e| google_error(e, "event"))?;
    Ok(Json(event.into()))
}
