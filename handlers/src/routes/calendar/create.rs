//! `POST /v1/calendar/events`: creates an event. With an `Idempotency-Key` header the event id
//! is derived from the identity and the key, so a retried request creates the event once and
//! answers with it.

use super::{EventRequest, EventView};
use crate::comms::{google_error, ActiveIdentity};
use crate::error::{ApiError, ApiResult};
use crate::extract::ValidJson;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use providers::google::event_id_for;
use providers::GoogleError;

#[utoipa::path(post, path = "/v1/calendar/events", tag = "calendar", security(("bearer" = [])),
    request_body = EventRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "makes a retry create the event once")),
    responses((status = 201, body = EventView), (status = 400), (status = 401), (status = 409),
        (status = 503)))]
pub async fn create(
    State(state): State<AppState>,
    caller: ActiveIdentity,
    headers: HeaderMap,
    ValidJson(req): ValidJson<EventRequest>,
) -> ApiResult<(StatusCode, Json<EventView>)> {
    let mut input = req.into_input()?;
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .filter(|k| !k.is_empty() && k.len() <= 255)
                .ok_or_else(|| {
                    ApiError::bad_field("Idempotency-Key", "1 to 255 visible ASCII characters")
                })?,
        ),
    };
    input.id = key.map(|k| event_id_for(&format!("{}:{k}", caller.identity.id)));
    let google = state.providers.google()?;
    let calendar = caller.mailbox()?;
    let event = match google.insert_event(calendar, &input).await {
        Ok(event) => event,
        // Our deterministic id exists: an earlier attempt of this request created it.
        Err(GoogleError::AlreadyExists(_)) if input.id.is_some() => {
            let id = input.id.clone().unwrap_or_default();
            google
                .update_event(calendar, &id, &input)
                .await
                .map_err(|e| google_error(e, "event"))?
        }
        Err(e) => return Err(google_error(e, "event")),
    };
    Ok((StatusCode::CREATED, Json(event.into())))
}
