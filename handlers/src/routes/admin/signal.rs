//! An operator hands a Signal registration the SMS code or a captcha token by hand.

use crate::auth::AdminAuth;
use crate::error::{ApiError, ApiResult};
use crate::extract::ValidJson;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;
use utoipa::ToSchema;
use workflows::contract::{self, Invocation};

#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    /// Six digits, dash optional (`123-456`).
    code: String,
}

#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptchaBody {
    /// The `signalcaptcha://…` token.
    token: String,
}

/// The workflow refusing the hand-over is the operator's business (409, with its reason);
/// Restate being unreachable is not (503).
fn refused_as_conflict(e: crate::orchestration::OrchestrationError) -> ApiError {
    match e.refusal() {
        Some(why) => ApiError::Conflict(why),
        None => e.into(),
    }
}

fn e164(raw: &str) -> ApiResult<String> {
    domain::PhoneNumber::parse(raw)
        .map(|p| p.as_str().to_owned())
        .map_err(|e| ApiError::bad_field("phone", e.0))
}

/// Hands a value to the number's SignalRegistration (`invocation`) and audits it.
async fn hand_in(
    state: &AppState,
    identity: &db::identities::Identity,
    phone: &str,
    invocation: Invocation,
    action: &str,
) -> ApiResult<StatusCode> {
    state
        .restate
        .call(&invocation, None)
        .await
        .map_err(refused_as_conflict)?;
    db::audit::record(
        &state.pool,
        "admin",
        Some(identity.user_id),
        action,
        json!({ "phone": phone }),
    )
    .await?;
    Ok(StatusCode::ACCEPTED)
}

async fn pending(state: &AppState, phone: &str) -> ApiResult<db::identities::Identity> {
    let identity = db::identities::find_by_phone(&state.pool, phone)
        .await?
        .ok_or_else(|| ApiError::NotFound("no identity has this number".into()))?;
    if !identity.signal_status.in_progress() {
        return Err(ApiError::Conflict(format!(
            "Signal registration is {}, not waiting",
            identity.signal_status
        )));
    }
    Ok(identity)
}

#[utoipa::path(post, path = "/v1/admin/signal/{phone}/code", tag = "admin", security(("admin" = [])),
    params(("phone" = String, Path)), request_body = CodeBody,
    responses((status = 202), (status = 400), (status = 403), (status = 404), (status = 409)))]
pub async fn code(
    State(state): State<AppState>,
    _admin: AdminAuth,
    Path(phone): Path<String>,
    ValidJson(body): ValidJson<CodeBody>,
) -> ApiResult<StatusCode> {
    let phone = e164(&phone)?;
    let digits: String = body.code.chars().filter(char::is_ascii_digit).collect();
    if digits.len() != 6
        || body
            .code
            .chars()
            .any(|c| !c.is_ascii_digit() && c != '-' && c != ' ')
    {
        return Err(ApiError::bad_field(
            "code",
            "code must be six digits, e.g. 123-456",
        ));
    }
    let identity = pending(&state, &phone).await?;
    let handed = hand_in(
        &state,
        &identity,
        &phone,
        contract::submit_signal_code(&phone, &digits),
        "signal.code_submitted",
    )
    .await?;
    // The number's receiver waits for the registration, then receives on its own timer.
    let receiver = contract::start_receiver(&phone);
    if let Err(e) = state.restate.send(&receiver, None).await {
        tracing::warn!(error = %e, "starting the Signal receiver failed");
    }
    Ok(handed)
}

#[utoipa::path(post, path = "/v1/admin/signal/{phone}/captcha", tag = "admin", security(("admin" = [])),
    params(("phone" = String, Path)), request_body = CaptchaBody,
    responses((status = 202), (status = 400), (status = 403), (status = 404), (status = 409)))]
pub async fn captcha(
    State(state): State<AppState>,
    _admin: AdminAuth,
    Path(phone): Path<String>,
    ValidJson(body): ValidJson<CaptchaBody>,
) -> ApiResult<StatusCode> {
    let phone = e164(&phone)?;
    let token = body.token.trim();
    if token.is_empty() || token.len() > 4096 {
        return Err(ApiError::bad_field(
            "token",
            "token must be 1 to 4096 characters",
        ));
    }
    let identity = pending(&state, &phone).await?;
    if identity.signal_status != "captcha_required" {
        return Err(ApiError::Conflict(
            "this registration is not waiting for a captcha".into(),
        ));
    }
    hand_in(
        &state,
        &identity,
        &phone,
        contract::submit_captcha(&phone, token),
        "signal.captcha_submitted",
    )
    .await
}
