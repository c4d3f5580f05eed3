//! `GET /v1/billing/usage[?month=YYYY-MM]`: a month's bill so far: plan, tokens, overage by
//! kind and its price, and how much overage Stripe has been told about.

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::ValidQuery;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use domain::{Month, Plan};
use utoipa::{IntoParams, ToSchema};

#[derive(serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MonthQuery {
    /// `YYYY-MM`; defaults to the current month (UTC).
    month: Option<String>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct BillingUsage {
    pub month: String,
    pub plan: Option<String>,
    pub included_tokens: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub overage_input_tokens: i64,
    pub overage_output_tokens: i64,
    pub overage_cost_microdollars: i64,
    pub base_price_microdollars: i64,
    pub total_microdollars: i64,
    /// Cumulative overage already reported to Stripe.
    pub reported_input_tokens: i64,
    pub reported_output_tokens: i64,
    /// True once the month's final sync has run.
    pub closed: bool,
}

pub(crate) fn parse_month(raw: Option<&str>) -> ApiResult<(Month, bool)> {
    let this = Month::containing(chrono::Utc::now().date_naive());
    let month = match raw {
        None => this,
        Some(m) => Month::parse(m).map_err(|e| ApiError::bad_field("month", e.0))?,
    };
    Ok((month, month < this))
}

#[utoipa::path(get, path = "/v1/billing/usage", tag = "billing", params(MonthQuery),
    security(("bearer" = [])), responses((status = 200, body = BillingUsage), (status = 400), (status = 401)))]
pub async fn billing_usage(
    State(state): State<AppState>,
    auth: AuthUser,
    ValidQuery(q): ValidQuery<MonthQuery>,
) -> ApiResult<Json<BillingUsage>> {
    let (month, over) = parse_month(q.month.as_deref())?;
    Ok(Json(bill(&state, auth.user_id, month, over).await?))
}

/// A month's bill so far (the portal's dashboard shows the same figures).
pub(crate) async fn bill(
    state: &AppState,
    user_id: uuid::Uuid,
    month: Month,
    over: bool,
) -> ApiResult<BillingUsage> {
    let monthly = db::usage::monthly(&state.pool, user_id, month)
        .await?
        .unwrap_or_default();
    let current = db::subscriptions::current(&state.pool, user_id)
        .await?
        .and_then(|s| Plan::parse(&s.plan).ok());
    let recorded = monthly.plan.as_deref().and_then(|p| Plan::parse(p).ok());
    let plan = billing::overage::plan_for_month(recorded, current, over);
    let served = db::usage::served(&state.pool, user_id, month).await?;
    let served = served.into_iter().map(|(i, o)| billing::overage::Served {
        input_tokens: i,
        output_tokens: o,
    });
    let (totals, included, cost, base) = match plan {
        Some(p) => {
            let t = billing::overage::compute(p, served);
            (
                t,
                p.included_tokens(),
                t.overage.cost_microdollars(p),
                p.monthly_price_microdollars(),
            )
        }
        // Without a plan nothing is included and nothing is billed as overage.
        None => (
            billing::overage::compute_with_allowance(None, served),
            0,
            0,
            0,
        ),
    };
    Ok(BillingUsage {
        month: month.to_string(),
        plan: plan.map(|p| p.as_str().to_owned()),
        included_tokens: included,
        input_tokens: totals.input_tokens,
        output_tokens: totals.output_tokens,
        overage_input_tokens: totals.overage.input_tokens,
        overage_output_tokens: totals.overage.output_tokens,
        overage_cost_microdollars: cost,
        base_price_microdollars: base,
        total_microdollars: base + cost,
        reported_input_tokens: monthly.reported_input_tokens,
        reported_output_tokens: monthly.reported_output_tokens,
        closed: monthly.closed,
    })
}
