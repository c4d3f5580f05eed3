//! `DELETE /v1/me`: closes the account (GDPR deletion on request). The account owner only (an
//! API key or session, never a connected instance's token), confirmed with the password.
//!
//! Access ends before the answer: keys, grants, sessions and tokens are ended in this request's
//! transaction (the proxy drops them on the NOTIFY at commit). The rest (billing the usage so
//! far, cancelling the subscription, deprovisioning, erasing after the retention period) is the
//! CloseAccount workflow's, keyed by the user: it is handed over *before* the commit, and its
//! first step ends access again, so an api dying in between still closes the account and never
//! leaves one `closing` with no workflow to finish it.

use super::account::AccountView;
use crate::auth::{password, AccountOwner};
use crate::error::{ApiError, ApiResult};
use crate::extract::ValidJson;
use crate::state::AppState;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::Json;
use std::net::SocketAddr;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseAccountRequest {
    /// The account's password, to confirm.
    #[serde(default)]
    password: String,
}

#[derive(serde::Serialize, ToSchema)]
pub struct CloseAccountResponse {
    account: AccountView,
    message: String,
}

#[utoipa::path(delete, path = "/v1/me", tag = "auth", security(("bearer" = [])),
    request_body = CloseAccountRequest,
    responses(
        (status = 202, body = CloseAccountResponse, description = "closing: access has ended; the subscription is cancelled, the identity deprovisioned and the personal data erased after the retention period. Asked again, the same answer"),
        (status = 400, description = "malformed body"),
        (status = 401, description = "no valid credential"),
        (status = 403, description = "wrong or missing password, or a connected instance's access token: nothing changed"),
        (status = 429, description = "too many password attempts"),
        (status = 503, description = "the work could not be handed over: nothing changed, retry")))]
pub async fn close(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    AccountOwner(auth): AccountOwner,
    ValidJson(req): ValidJson<CloseAccountRequest>,
) -> ApiResult<(StatusCode, Json<CloseAccountResponse>)> {
    let user = db::users::find(&state.pool, auth.user_id)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("account no longer exists".into()))?;
    if req.password.is_empty() {
        return Err(ApiError::Forbidden(
            "closing the account needs its password: send {\"password\": \"…\"}; nothing was changed"
                .into(),
        ));
    }
    // A stolen key must not become a way to guess the password.
    state
        .throttle
        .check(&user.email, peer.ip())
        .map_err(|secs| ApiError::TooManyRequests {
            retry_after_secs: secs,
            message: format!("too many password attempts; retry in {secs} s"),
        })?;
    if !password::verify(req.password, Some(user.password_hash.clone())).await? {
        return Err(ApiError::Forbidden(
            "the password is wrong; nothing was changed".into(),
        ));
    }
    let account = close_account(&state, user.id, "api").await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(CloseAccountResponse {
            message: account.summary(),
            account,
        }),
    ))
}

/// Closes the account of a confirmed owner (the API and the portal's form): hands the work to
/// CloseAccount, then ends access and marks the account `closing` in one transaction. Asked
/// again, it changes nothing and answers the same state.
pub async fn close_account(state: &AppState, user_id: Uuid, via: &str) -> ApiResult<AccountView> {
    state.restate.close_account(user_id).await?;
    let retention = chrono::Duration::from_std(state.config.workflows.account_retention)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("ACCOUNT_RETENTION_SECS: {e}")))?;
    let mut tx = state.pool.begin().await?;
    let ended = db::account_closing::end_access(&mut tx, user_id, chrono::Utc::now() + retention)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("account no longer exists".into()))?;
    if ended.newly_closing {
        db::audit::record(
            &mut *tx,
            "user",
            Some(user_id),
            "account.closing_requested",
            serde_json::json!({ "via": via }),
        )
        .await?;
    }
    tx.commit().await?;
    tracing::info!(%user_id, via, first = ended.newly_closing, "account closing requested");
    Ok(AccountView::from(&ended.state))
}
