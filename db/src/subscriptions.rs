//! The `subscriptions` table, mirrored from Stripe. A state is applied only if it is at least
//! as recent (by the Stripe event's `created`) as the one already stored, so events delivered
//! out of order end in Stripe's latest state, not in arrival order.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Subscription {
    pub id: Uuid,
    pub user_id: Uuid,
    pub stripe_subscription_id: String,
    pub stripe_customer_id: String,
    pub plan: String,
    pub status: String,
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    pub spending_cap_microdollars: Option<i64>,
    pub stripe_state_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, user_id, stripe_subscription_id, stripe_customer_id, plan, status, \
    current_period_start, current_period_end, cancel_at_period_end, spending_cap_microdollars, \
    stripe_state_at, updated_at";

/// What one Stripe event says about a subscription. `None` leaves a field as stored.
#[derive(Debug, Clone)]
pub struct SubscriptionState {
    pub stripe_subscription_id: String,
    pub stripe_customer_id: String,
    pub user_id: Uuid,
    pub plan: Option<domain::Plan>,
    pub status: Option<String>,
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: Option<bool>,
    pub at: DateTime<Utc>,
}

/// The outcome of applying a state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Stored; `previous` is the status before (None for a new row).
    Changed {
        previous: Option<String>,
        current: String,
        plan: String,
    },
    /// Older than what is stored: nothing changed.
    Stale,
    /// Not enough to create the row (an invoice event before any subscription event).
    Unknown,
}

pub async fn apply(conn: &mut PgConnection, s: &SubscriptionState) -> Result<Applied, sqlx::Error> {
    let stored: Option<(String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT status, plan, stripe_state_at FROM subscriptions
         WHERE stripe_subscription_id = $1 FOR UPDATE",
    )
    .bind(&s.stripe_subscription_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((status, plan, at)) = stored else {
        let (Some(plan), Some(status)) = (s.plan, s.status.as_deref()) else {
            return Ok(Applied::Unknown);
        };
        let inserted = sqlx::query(
            "INSERT INTO subscriptions (id, user_id, stripe_subscription_id, stripe_customer_id,
                 plan, status, current_period_start, current_period_end, cancel_at_period_end,
                 stripe_state_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (stripe_subscription_id) DO NOTHING",
        )
        .bind(Uuid::now_v7())
        .bind(s.user_id)
        .bind(&s.stripe_subscription_id)
        .bind(&s.stripe_customer_id)
        .bind(plan.as_str())
        .bind(status)
        .bind(s.current_period_start)
        .bind(s.current_period_end)
        .bind(s.cancel_at_period_end.unwrap_or(false))
        .bind(s.at)
        .execute(&mut *conn)
        .await?;
        if inserted.rows_affected() == 0 {
            // A concurrent delivery created it first: apply on top of that row.
            return Box::pin(apply(conn, s)).await;
        }
        return Ok(Applied::Changed {
            previous: None,
            current: status.to_owned(),
            plan: plan.as_str().to_owned(),
        });
    };
    if s.at < at {
        return Ok(Applied::Stale);
    }
    let new_status = s.status.clone().unwrap_or_else(|| status.clone());
    let new_plan = s.plan.map(|p| p.as_str().to_owned()).unwrap_or(plan);
    sqlx::query(
        "UPDATE subscriptions SET status = $2, plan = $3,
             current_period_start = COALESCE($4, current_period_start),
             current_period_end = COALESCE($5, current_period_end),
             cancel_at_period_end = COALESCE($6, cancel_at_period_end),
             stripe_state_at = $7, updated_at = now()
         WHERE stripe_subscription_id = $1",
    )
    .bind(&s.stripe_subscription_id)
    .bind(&new_status)
    .bind(&new_plan)
    .bind(s.current_period_start)
    .bind(s.current_period_end)
    .bind(s.cancel_at_period_end)
    .bind(s.at)
    .execute(&mut *conn)
    .await?;
    // The identity shows the plan it is on; a live identity follows a plan change.
    sqlx::query(
        "UPDATE identities SET plan = $2, updated_at = now()
         WHERE user_id = (SELECT user_id FROM subscriptions WHERE stripe_subscription_id = $1)
           AND status <> 'deleted' AND plan IS DISTINCT FROM $2",
    )
    .bind(&s.stripe_subscription_id)
    .bind(&new_plan)
    .execute(&mut *conn)
    .await?;
    Ok(Applied::Changed {
        previous: Some(status),
        current: new_status,
        plan: new_plan,
    })
}

/// The user's most recent subscription (by Stripe state), whatever its status.
pub async fn current(pool: &PgPool, user_id: Uuid) -> Result<Option<Subscription>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM subscriptions WHERE user_id = $1
         ORDER BY (status IN ('active', 'trialing', 'past_due', 'unpaid')) DESC,
                  stripe_state_at DESC LIMIT 1"
    ))
    .bind(user_id)
    .fetch_optional(pool)
    .await
}

pub async fn by_stripe_id(pool: &PgPool, id: &str) -> Result<Option<Subscription>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM subscriptions WHERE stripe_subscription_id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Stripe statuses in which the subscription is paid up and the service runs.
pub fn is_live(status: &str) -> bool {
    matches!(status, "active" | "trialing")
}

/// Statuses in which payment is overdue and the identity is suspended.
pub fn is_delinquent(status: &str) -> bool {
    matches!(status, "past_due" | "unpaid")
}

/// Sets (or with `None` removes) the monthly spending cap on the user's live subscription;
/// false if there is none. The table's trigger tells every proxy at once.
pub async fn set_spending_cap(
    pool: &PgPool,
    user_id: Uuid,
    cap_microdollars: Option<i64>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE subscriptions SET spending_cap_microdollars = $2, updated_at = now()
         WHERE user_id = $1 AND status IN ('active', 'trialing', 'past_due', 'unpaid')",
    )
    .bind(user_id)
    .bind(cap_microdollars)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}
