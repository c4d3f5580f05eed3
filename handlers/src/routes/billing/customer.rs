//! One Stripe customer per user, created once even under concurrent requests: the user's row
//! is locked while the customer is created, and the creation's Idempotency-Key is derived from
//! the user id, so a retry after a lost response finds the same customer.

use super::stripe_error;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use uuid::Uuid;

pub async fn ensure(state: &AppState, user_id: Uuid) -> ApiResult<String> {
    if let Some(c) = db::stripe_customers::of_user(&state.pool, user_id).await? {
        return Ok(c);
    }
    let mut tx = state.pool.begin().await?;
    let (email, existing) = db::stripe_customers::lock(&mut tx, user_id)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("invalid or expired token".into()))?;
    if let Some(c) = existing {
        return Ok(c);
    }
    let customer = state
        .stripe
        .create_customer(
            &email,
            &user_id.to_string(),
            &format!("pdx-customer-{user_id}"),
        )
        .await
        .map_err(stripe_error)?;
    db::stripe_customers::set(&mut tx, user_id, &customer).await?;
    db::audit::record(
        &mut *tx,
        "user",
        Some(user_id),
        "billing.customer_created",
        serde_json::json!({ "customer": customer }),
    )
    .await?;
    tx.commit().await?;
    Ok(customer)
}
