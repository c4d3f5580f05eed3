//! Usage: `usage_events` read per user and month, `usage_monthly` (aggregates and the
//! cumulative overage Stripe has accepted) and `usage_reports` (each meter event sent).

use chrono::{DateTime, NaiveTime, Utc};
use domain::Month;
use sqlx::PgPool;
use uuid::Uuid;

/// [start, end) of a month in UTC.
pub fn bounds(month: Month) -> (DateTime<Utc>, DateTime<Utc>) {
    let at = |m: Month| m.first_day().and_time(NaiveTime::MIN).and_utc();
    (at(month), at(month.next()))
}

/// (input, output) tokens of every request of the month, in serving order.
pub async fn served(
    pool: &PgPool,
    user_id: Uuid,
    month: Month,
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    let (from, to) = bounds(month);
    sqlx::query_as(
        "SELECT input_tokens, output_tokens FROM usage_events
         WHERE user_id = $1 AND created_at >= $2 AND created_at < $3
         ORDER BY created_at, request_id",
    )
    .bind(user_id)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await
}

#[derive(Debug, Clone, Default, sqlx::FromRow, serde::Serialize)]
pub struct Totals {
    pub requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_microdollars: i64,
}

pub async fn totals(pool: &PgPool, user_id: Uuid, month: Month) -> Result<Totals, sqlx::Error> {
    let (from, to) = bounds(month);
    sqlx::query_as(
        "SELECT count(*) AS requests, COALESCE(sum(input_tokens), 0)::bigint AS input_tokens,
                COALESCE(sum(output_tokens), 0)::bigint AS output_tokens,
                COALESCE(sum(cost_microdollars), 0)::bigint AS cost_microdollars
         FROM usage_events WHERE user_id = $1 AND created_at >= $2 AND created_at < $3",
    )
    .bind(user_id)
    .bind(from)
    .bind(to)
    .fetch_one(pool)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct ModelTotals {
    pub model: String,
    pub requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_microdollars: i64,
}

pub async fn by_model(
    pool: &PgPool,
    user_id: Uuid,
    month: Month,
) -> Result<Vec<ModelTotals>, sqlx::Error> {
    let (from, to) = bounds(month);
    sqlx::query_as(
        "SELECT model, count(*) AS requests, sum(input_tokens)::bigint AS input_tokens,
                sum(output_tokens)::bigint AS output_tokens,
                sum(cost_microdollars)::bigint AS cost_microdollars
         FROM usage_events WHERE user_id = $1 AND created_at >= $2 AND created_at < $3
         GROUP BY model ORDER BY model",
    )
    .bind(user_id)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct RecentEvent {
    pub request_id: String,
    pub model: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_microdollars: i64,
    pub created_at: DateTime<Utc>,
}

pub async fn recent(
    pool: &PgPool,
    user_id: Uuid,
    month: Month,
    limit: i64,
) -> Result<Vec<RecentEvent>, sqlx::Error> {
    let (from, to) = bounds(month);
    sqlx::query_as(
        "SELECT request_id, model, input_tokens, output_tokens, cost_microdollars, created_at
         FROM usage_events WHERE user_id = $1 AND created_at >= $2 AND created_at < $3
         ORDER BY created_at DESC, request_id DESC LIMIT $4",
    )
    .bind(user_id)
    .bind(from)
    .bind(to)
    .bind(limit)
    .fetch_all(pool)
    .await
}

#[derive(Debug, Clone, Default, sqlx::FromRow, serde::Serialize)]
pub struct Monthly {
    pub plan: Option<String>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_microdollars: i64,
    pub overage_input_tokens: i64,
    pub overage_output_tokens: i64,
    pub reported_input_tokens: i64,
    pub reported_output_tokens: i64,
    pub synced_at: Option<DateTime<Utc>>,
    pub reported_at: Option<DateTime<Utc>>,
    pub closed: bool,
}

pub async fn monthly(
    pool: &PgPool,
    user_id: Uuid,
    month: Month,
) -> Result<Option<Monthly>, sqlx::Error> {
    sqlx::query_as(
        "SELECT plan, input_tokens, output_tokens, cost_microdollars, overage_input_tokens,
                overage_output_tokens, reported_input_tokens, reported_output_tokens, synced_at,
                reported_at, closed
         FROM usage_monthly WHERE user_id = $1 AND month = $2",
    )
    .bind(user_id)
    .bind(month.first_day())
    .fetch_optional(pool)
    .await
}

/// The aggregates of one sync. Never touches what was reported.
pub struct Aggregate<'a> {
    pub plan: Option<&'a str>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_microdollars: i64,
    pub overage_input_tokens: i64,
    pub overage_output_tokens: i64,
}

pub async fn store_aggregate(
    pool: &PgPool,
    user_id: Uuid,
    month: Month,
    a: &Aggregate<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO usage_monthly (user_id, month, plan, input_tokens, output_tokens,
             cost_microdollars, overage_input_tokens, overage_output_tokens, synced_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
         ON CONFLICT (user_id, month) DO UPDATE SET plan = EXCLUDED.plan,
             input_tokens = EXCLUDED.input_tokens, output_tokens = EXCLUDED.output_tokens,
             cost_microdollars = EXCLUDED.cost_microdollars,
             overage_input_tokens = EXCLUDED.overage_input_tokens,
             overage_output_tokens = EXCLUDED.overage_output_tokens, synced_at = now()",
    )
    .bind(user_id)
    .bind(month.first_day())
    .bind(a.plan)
    .bind(a.input_tokens)
    .bind(a.output_tokens)
    .bind(a.cost_microdollars)
    .bind(a.overage_input_tokens)
    .bind(a.overage_output_tokens)
    .execute(pool)
    .await?;
    Ok(())
}

/// One meter event Stripe accepted.
pub struct Report<'a> {
    pub identifier: &'a str,
    pub event_name: &'a str,
    /// "input" or "output"
    pub kind: &'a str,
    pub cumulative: i64,
    pub delta: i64,
}

/// Writes a meter event down before it is sent: until `record_report` marks it accepted, a
/// later run treats it as possibly counted by Stripe and sends it again under its identifier.
pub async fn intend_report(
    pool: &PgPool,
    user_id: Uuid,
    month: Month,
    r: &Report<'_>,
) -> Result<(), sqlx::Error> {
    write_report(pool, user_id, month, r, false).await
}

/// The event's row, marked accepted when `accepted` (a mark is never taken back).
async fn write_report<'e>(
    exec: impl sqlx::Executor<'e, Database = sqlx::Postgres>,
    user_id: Uuid,
    month: Month,
    r: &Report<'_>,
    accepted: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO usage_reports (identifier, user_id, month, event_name, cumulative, delta,
             reported_at)
         VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $7 THEN now() END)
         ON CONFLICT (identifier) DO UPDATE
             SET reported_at = COALESCE(usage_reports.reported_at, EXCLUDED.reported_at)",
    )
    .bind(r.identifier)
    .bind(user_id)
    .bind(month.first_day())
    .bind(r.event_name)
    .bind(r.cumulative)
    .bind(r.delta)
    .bind(accepted)
    .execute(exec)
    .await?;
    Ok(())
}

/// Records an accepted report: idempotent, and the reported total only ever grows.
pub async fn record_report(
    pool: &PgPool,
    user_id: Uuid,
    month: Month,
    r: &Report<'_>,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    write_report(&mut *tx, user_id, month, r, true).await?;
    // The reported total only ever grows, whatever order records arrive in.
    let sql = if r.kind == "input" {
        "INSERT INTO usage_monthly (user_id, month, reported_input_tokens, reported_at)
         VALUES ($1, $2, $3, now())
         ON CONFLICT (user_id, month) DO UPDATE SET reported_at = now(),
             reported_input_tokens = GREATEST(usage_monthly.reported_input_tokens, $3)"
    } else {
        "INSERT INTO usage_monthly (user_id, month, reported_output_tokens, reported_at)
         VALUES ($1, $2, $3, now())
         ON CONFLICT (user_id, month) DO UPDATE SET reported_at = now(),
             reported_output_tokens = GREATEST(usage_monthly.reported_output_tokens, $3)"
    };
    sqlx::query(sql)
        .bind(user_id)
        .bind(month.first_day())
        .bind(r.cumulative)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// One meter event of a kind: its identifier, the cumulative total it brings Stripe to, and
/// what it adds.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct MeterEvent {
    pub identifier: String,
    pub cumulative: i64,
    pub delta: i64,
}

/// Where one kind of a month's reporting stands now: the total Stripe is known to have
/// accepted, and the events sent (or maybe sent) beyond it, lowest first.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ReportState {
    pub reported: i64,
    /// Written down but not known to be accepted.
    pub unconfirmed: Vec<MeterEvent>,
}

pub async fn report_state(
    pool: &PgPool,
    user_id: Uuid,
    month: Month,
    event_name: &str,
) -> Result<ReportState, sqlx::Error> {
    let reported: Option<i64> = sqlx::query_scalar(
        "SELECT COALESCE(max(cumulative), 0)::bigint FROM usage_reports
         WHERE user_id = $1 AND month = $2 AND event_name = $3 AND reported_at IS NOT NULL",
    )
    .bind(user_id)
    .bind(month.first_day())
    .bind(event_name)
    .fetch_one(pool)
    .await?;
    let unconfirmed = sqlx::query_as(
        "SELECT identifier, cumulative, delta FROM usage_reports
         WHERE user_id = $1 AND month = $2 AND event_name = $3 AND reported_at IS NULL
         ORDER BY cumulative",
    )
    .bind(user_id)
    .bind(month.first_day())
    .bind(event_name)
    .fetch_all(pool)
    .await?;
    Ok(ReportState {
        reported: reported.unwrap_or(0),
        unconfirmed,
    })
}

pub async fn close(pool: &PgPool, user_id: Uuid, month: Month) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE usage_monthly SET closed = true WHERE user_id = $1 AND month = $2")
        .bind(user_id)
        .bind(month.first_day())
        .execute(pool)
        .await?;
    Ok(())
}

/// Users whose month needs a sync: usage in it and the month not closed yet.
pub async fn users_to_sync(pool: &PgPool, month: Month) -> Result<Vec<Uuid>, sqlx::Error> {
    let (from, to) = bounds(month);
    let rows: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT DISTINCT e.user_id FROM usage_events e JOIN users u ON u.id = e.user_id
         WHERE e.created_at >= $1 AND e.created_at < $2
           AND NOT EXISTS (SELECT 1 FROM usage_monthly m
                           WHERE m.user_id = e.user_id AND m.month = $3 AND m.closed)",
    )
    .bind(from)
    .bind(to)
    .bind(month.first_day())
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

pub async fn reports(
    pool: &PgPool,
    user_id: Uuid,
    month: Month,
) -> Result<Vec<(String, String, i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT identifier, event_name, cumulative, delta FROM usage_reports
         WHERE user_id = $1 AND month = $2 AND reported_at IS NOT NULL
         ORDER BY reported_at, cumulative",
    )
    .bind(user_id)
    .bind(month.first_day())
    .fetch_all(pool)
    .await
}

/// One user's month as an operator sees it: what was served (live from `usage_events`) beside
/// what UsageSync last computed and what Stripe has accepted.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct UserMonth {
    pub user_id: Uuid,
    pub email: String,
    pub plan: Option<String>,
    pub requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_microdollars: i64,
    pub overage_input_tokens: i64,
    pub overage_output_tokens: i64,
    pub reported_input_tokens: i64,
    pub reported_output_tokens: i64,
    pub synced_at: Option<DateTime<Utc>>,
}

/// The month's heaviest users by cost (ties by id), at most `limit`.
pub async fn top_users(
    pool: &PgPool,
    month: Month,
    limit: i64,
) -> Result<Vec<UserMonth>, sqlx::Error> {
    let (from, to) = bounds(month);
    sqlx::query_as(
        "WITH served AS (
             SELECT user_id, count(*) AS requests, sum(input_tokens) AS input_tokens,
                    sum(output_tokens) AS output_tokens, sum(cost_microdollars) AS cost
             FROM usage_events WHERE created_at >= $1 AND created_at < $2
             GROUP BY user_id)
         SELECT s.user_id, u.email,
                COALESCE(m.plan, (SELECT plan FROM subscriptions WHERE user_id = s.user_id
                                  ORDER BY stripe_state_at DESC LIMIT 1)) AS plan,
                s.requests, s.input_tokens::bigint AS input_tokens,
                s.output_tokens::bigint AS output_tokens, s.cost::bigint AS cost_microdollars,
                COALESCE(m.overage_input_tokens, 0) AS overage_input_tokens,
                COALESCE(m.overage_output_tokens, 0) AS overage_output_tokens,
                COALESCE(m.reported_input_tokens, 0) AS reported_input_tokens,
                COALESCE(m.reported_output_tokens, 0) AS reported_output_tokens,
                m.synced_at
         FROM served s
         JOIN users u ON u.id = s.user_id
         LEFT JOIN usage_monthly m ON m.user_id = s.user_id AND m.month = $3
         ORDER BY s.cost DESC, s.user_id
         LIMIT $4",
    )
    .bind(from)
    .bind(to)
    .bind(month.first_day())
    .bind(limit)
    .fetch_all(pool)
    .await
}

#[derive(Debug, Clone, Default, sqlx::FromRow, serde::Serialize)]
pub struct MonthTotals {
    pub users: i64,
    pub requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_microdollars: i64,
}

/// Everything served in the month, across users.
pub async fn month_totals(pool: &PgPool, month: Month) -> Result<MonthTotals, sqlx::Error> {
    let (from, to) = bounds(month);
    sqlx::query_as(
        "SELECT count(DISTINCT user_id) AS users, count(*) AS requests,
                COALESCE(sum(input_tokens), 0)::bigint AS input_tokens,
                COALESCE(sum(output_tokens), 0)::bigint AS output_tokens,
                COALESCE(sum(cost_microdollars), 0)::bigint AS cost_microdollars
         FROM usage_events WHERE created_at >= $1 AND created_at < $2",
    )
    .bind(from)
    .bind(to)
    .fetch_one(pool)
    .await
}
