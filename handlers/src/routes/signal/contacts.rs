//! `GET /v1/signal/contacts`: the people the identity's Signal account knows.

use crate::comms::{signal_error, ActiveIdentity};
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use utoipa::ToSchema;

#[derive(serde::Serialize, ToSchema)]
pub struct SignalContact {
    number: String,
    uuid: String,
    name: String,
    profile_name: String,
}

#[derive(serde::Serialize, ToSchema)]
pub struct SignalContacts {
    data: Vec<SignalContact>,
}

#[utoipa::path(get, path = "/v1/signal/contacts", tag = "signal", security(("bearer" = [])),
    responses((status = 200, body = SignalContacts), (status = 401), (status = 409),
        (status = 503)))]
pub async fn contacts(
    State(state): State<AppState>,
    caller: ActiveIdentity,
) -> ApiResult<Json<SignalContacts>> {
    let contacts = state
        .providers
        .signal
        .list_contacts(caller.signal_number()?)
        .await
        .map_err(signal_error)?;
    Ok(Json(SignalContacts {
        data: contacts
            .into_iter()
            .map(|c| SignalContact {
                number: c.number,
                uuid: c.uuid,
                name: c.name,
                profile_name: c.profile_name,
            })
            .collect(),
    }))
}
