//! `GET /v1/identity/email`, `/phone`, `/signal`: one channel each, for Dex's configuration.

use super::{load, SignalView};
use crate::auth::AuthUser;
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use utoipa::ToSchema;

#[derive(serde::Serialize, ToSchema)]
pub struct EmailChannel {
    address: Option<String>,
    status: db::status::IdentityStatus,
}

#[derive(serde::Serialize, ToSchema)]
pub struct PhoneChannel {
    number: Option<String>,
    sms: bool,
    status: db::status::IdentityStatus,
}

#[derive(serde::Serialize, ToSchema)]
pub struct SignalChannel {
    number: Option<String>,
    #[serde(flatten)]
    signal: SignalView,
    /// The last successful receive from signal-cli for this number (keep-alive): the
    /// number's receiver does one every few seconds to minutes.
    last_received_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[utoipa::path(get, path = "/v1/identity/email", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = EmailChannel), (status = 401), (status = 404)))]
pub async fn email(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<EmailChannel>> {
    let i = load(&state.pool, auth.user_id).await?;
    Ok(Json(EmailChannel {
        address: i.email,
        status: i.status,
    }))
}

#[utoipa::path(get, path = "/v1/identity/phone", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = PhoneChannel), (status = 401), (status = 404)))]
pub async fn phone(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<PhoneChannel>> {
    let i = load(&state.pool, auth.user_id).await?;
    Ok(Json(PhoneChannel {
        sms: i.phone_number.is_some() && i.status == db::status::IdentityStatus::Active,
        number: i.phone_number,
        status: i.status,
    }))
}

#[utoipa::path(get, path = "/v1/identity/signal", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = SignalChannel), (status = 401), (status = 404)))]
pub async fn signal(
    State(state): State<AppState>,
    auth: AuthUser,
) -> ApiResult<Json<SignalChannel>> {
    let i = load(&state.pool, auth.user_id).await?;
    let number = i.phone_number.clone();
    let last_received_at = match &number {
        Some(n) => db::signal_messages::receiver(&state.pool, n)
            .await?
            .filter(|r| r.identity_id == Some(i.id))
            .and_then(|r| r.last_received_at),
        None => None,
    };
    let view: super::IdentityView = i.into();
    Ok(Json(SignalChannel {
        number,
        signal: view.signal,
        last_received_at,
    }))
}
