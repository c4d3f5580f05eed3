//! `POST /v1/billing/portal`: a Stripe Billing Portal URL (payment method, invoices, plan).

use super::stripe_error;
use crate::auth::AccountOwner;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use utoipa::ToSchema;

#[derive(serde::Serialize, ToSchema)]
pub struct PortalUrl {
    url: String,
}

#[utoipa::path(post, path = "/v1/billing/portal", tag = "billing", security(("bearer" = [])),
    responses((status = 200, body = PortalUrl), (status = 401), (status = 403, description = "a connected instance's access token: account management is for the account holder"), (status = 409), (status = 503)))]
pub async fn portal(
    State(state): State<AppState>,
    AccountOwner(auth): AccountOwner,
) -> ApiResult<Json<PortalUrl>> {
    let back = format!("{}/dashboard", state.config.public_base_url);
    let url = portal_url(&state, auth.user_id, &back).await?;
    Ok(Json(PortalUrl { url }))
}

/// A Billing Portal session for the user that returns to `back`.
pub(crate) async fn portal_url(
    state: &AppState,
    user_id: uuid::Uuid,
    back: &str,
) -> ApiResult<String> {
    let customer = db::stripe_customers::of_user(&state.pool, user_id)
        .await?
        .ok_or_else(|| {
            ApiError::Conflict("you have no billing account yet; subscribe to a plan first".into())
        })?;
    let minute = chrono::Utc::now().timestamp() / 60;
    // Sessions for another return page are other requests to Stripe's idempotency.
    let to = hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(back)[..4]);
    let url = state
        .stripe
        .create_portal_session(
            &customer,
            back,
            &format!("pdx-portal-{user_id}-{minute}-{to}"),
        )
        .await
        .map_err(stripe_error)?;
    Ok(url)
}
