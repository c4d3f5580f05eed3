//! `POST /v1/billing/subscribe` {plan}: a Stripe Checkout URL for the plan (card or Link).

use super::{customer, stripe_error};
use crate::auth::AccountOwner;
use crate::error::{ApiError, ApiResult};
use crate::extract::ValidJson;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use billing::meter::Kind;
use domain::Plan;
use utoipa::ToSchema;

#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Subscribe {
    /// `basic` or `pro`.
    plan: String,
}

#[derive(serde::Serialize, ToSchema)]
pub struct CheckoutUrl {
    /// Open it to pay; the subscription starts when Stripe confirms the payment.
    checkout_url: String,
}

#[utoipa::path(post, path = "/v1/billing/subscribe", tag = "billing", request_body = Subscribe,
    security(("bearer" = [])),
    responses((status = 200, body = CheckoutUrl), (status = 400), (status = 401), (status = 403, description = "a connected instance's access token: account management is for the account holder"), (status = 409),
              (status = 503)))]
pub async fn subscribe(
    State(state): State<AppState>,
    AccountOwner(auth): AccountOwner,
    ValidJson(req): ValidJson<Subscribe>,
) -> ApiResult<Json<CheckoutUrl>> {
    let plan = Plan::parse(&req.plan).map_err(|e| ApiError::bad_field("plan", e.0))?;
    let base = &state.config.public_base_url;
    let back = ReturnUrls {
        success: &format!("{base}/dashboard?checkout=success"),
        cancel: &format!("{base}/dashboard?checkout=cancelled"),
    };
    let checkout_url = start_checkout(&state, auth.user_id, plan, &back).await?;
    Ok(Json(CheckoutUrl { checkout_url }))
}

/// Where Checkout sends the person back to.
pub struct ReturnUrls<'a> {
    pub success: &'a str,
    pub cancel: &'a str,
}

impl ReturnUrls<'_> {
    /// Part of the idempotency key: a session made for other return URLs is not reused.
    fn fingerprint(&self) -> String {
        use sha2::Digest;
        let h = sha2::Sha256::digest(format!("{}\n{}", self.success, self.cancel));
        hex::encode(&h[..8])
    }
}

/// A Checkout Session for `plan` (refused with 409 if a subscription is already live or
/// owes money); returns its URL.
pub async fn start_checkout(
    state: &AppState,
    user_id: uuid::Uuid,
    plan: Plan,
    back: &ReturnUrls<'_>,
) -> ApiResult<String> {
    if let Some(sub) = db::subscriptions::current(&state.pool, user_id).await? {
        if db::subscriptions::is_live(&sub.status) || db::subscriptions::is_delinquent(&sub.status)
        {
            return Err(ApiError::Conflict(format!(
                "you already have a {} subscription ({}); change plan in the billing portal",
                sub.plan, sub.status
            )));
        }
    }
    let base_price = match plan {
        Plan::Basic => &state.config.stripe.price_basic,
        Plan::Pro => &state.config.stripe.price_pro,
    };
    if base_price.is_empty() {
        tracing::error!(
            plan = plan.as_str(),
            "no Stripe price configured (STRIPE_PRICE_*)"
        );
        return Err(ApiError::Unavailable(
            "billing is not configured yet; try again later".into(),
        ));
    }
    let customer = customer::ensure(state, user_id).await?;
    let keys: Vec<String> = Kind::ALL
        .iter()
        .map(|k| billing::catalog::overage_lookup_key(plan, *k))
        .collect();
    let metered: Vec<String> = state
        .stripe
        .prices_by_lookup_keys(&keys)
        .await
        .map_err(stripe_error)?
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    if metered.len() != keys.len() {
        tracing::warn!(
            plan = plan.as_str(),
            "overage prices missing; run `poindexter stripe-setup`"
        );
    }
    let user = user_id.to_string();
    // Repeated clicks within five minutes reuse one session; a later one gets a fresh session.
    let bucket = chrono::Utc::now().timestamp() / 300;
    let checkout = state
        .stripe
        .create_checkout_session(billing::client::CheckoutRequest {
            customer: &customer,
            base_price,
            metered_prices: &metered,
            success_url: back.success,
            cancel_url: back.cancel,
            user_id: &user,
            plan,
            billing_cycle_anchor: next_month_start(),
            idempotency_key: &format!(
                "pdx-checkout-{user}-{}-{bucket}-{}",
                plan.as_str(),
                back.fingerprint()
            ),
        })
        .await
        .map_err(stripe_error)?;
    Ok(checkout.url)
}
/// 00:00 UTC on the first of next month: usage is counted per calendar month, so Stripe's
/// billing periods start there too.
fn next_month_start() -> i64 {
    let next = domain::Month::containing(chrono::Utc::now().date_naive()).next();
    db::usage::bounds(next).0.timestamp()
}
