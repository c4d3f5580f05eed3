//! `PUT /v1/billing/spending-cap` {cap_cents | null}: the monthly spending cap the proxy
//! enforces (402 once this month's AI cost reaches it). Every proxy learns of it at once.

use crate::auth::AccountOwner;
use crate::error::{ApiError, ApiResult};
use crate::extract::ValidJson;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use utoipa::ToSchema;

/// Caps above this are surely a typo (a million dollars a month).
pub const MAX_CAP_CENTS: i64 = 100_000_000;

#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpendingCap {
    /// Whole cents, 100 ($1) to 100,000,000; `null` removes the cap.
    cap_cents: Option<i64>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct SpendingCapView {
    cap_cents: Option<i64>,
}

/// Checks a cap in cents and turns it into microdollars.
pub fn parse_cap(cents: Option<i64>) -> ApiResult<Option<i64>> {
    match cents {
        None => Ok(None),
        Some(c) if (100..=MAX_CAP_CENTS).contains(&c) => Ok(Some(c * 10_000)),
        Some(_) => Err(ApiError::bad_field(
            "cap_cents",
            "the cap must be between $1 and $1,000,000 a month, or null for no cap",
        )),
    }
}

/// Applies a cap for the user; 409 without a subscription.
pub async fn apply(state: &AppState, user_id: uuid::Uuid, cap: Option<i64>) -> ApiResult<()> {
    if !db::subscriptions::set_spending_cap(&state.pool, user_id, cap).await? {
        return Err(ApiError::Conflict(
            "you have no subscription to cap; subscribe to a plan first".into(),
        ));
    }
    db::audit::record(
        &state.pool,
        "user",
        Some(user_id),
        "billing.spending_cap",
        serde_json::json!({"cap_microdollars": cap}),
    )
    .await?;
    Ok(())
}

#[utoipa::path(put, path = "/v1/billing/spending-cap", tag = "billing", request_body = SpendingCap,
    security(("bearer" = [])),
    responses((status = 200, body = SpendingCapView), (status = 400), (status = 401), (status = 403, description = "a connected instance's access token: account management is for the account holder"), (status = 409)))]
pub async fn set(
    State(state): State<AppState>,
    AccountOwner(auth): AccountOwner,
    ValidJson(req): ValidJson<SpendingCap>,
) -> ApiResult<Json<SpendingCapView>> {
    let cap = parse_cap(req.cap_cents)?;
    apply(&state, auth.user_id, cap).await?;
    Ok(Json(SpendingCapView {
        cap_cents: req.cap_cents,
    }))
}
