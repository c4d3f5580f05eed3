//! What the portal shows of a user's recent activity: AI requests with the credential that
//! made them, usage per day, and messages sent and received, never their contents.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, sqlx::FromRow)]
pub struct Request {
    pub created_at: DateTime<Utc>,
    pub model: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_microdollars: i64,
    pub status_code: i32,
    /// An API key's id or an OAuth grant's id.
    pub credential_id: Option<Uuid>,
}

pub async fn requests(
    pool: &PgPool,
    user_id: Uuid,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Request>, sqlx::Error> {
    sqlx::query_as(
        "SELECT created_at, model, input_tokens, output_tokens, cost_microdollars, status_code,
                api_key_id AS credential_id
         FROM usage_events WHERE user_id = $1 AND created_at >= $2
         ORDER BY created_at DESC, request_id DESC LIMIT $3",
    )
    .bind(user_id)
    .bind(since)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Input and output tokens per UTC day in [from, to), days without usage left out.
pub async fn daily_tokens(
    pool: &PgPool,
    user_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(NaiveDate, i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT (hour AT TIME ZONE 'UTC')::date AS day, sum(input_tokens)::int8,
                sum(output_tokens)::int8
         FROM usage_hourly WHERE user_id = $1 AND hour >= $2 AND hour < $3
         GROUP BY 1 ORDER BY 1",
    )
    .bind(user_id)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await
}

#[derive(Debug, sqlx::FromRow)]
pub struct Message {
    pub at: DateTime<Utc>,
    /// `email.sent`, `signal.sent` or `sms.received`.
    pub kind: String,
    /// Recipients of a sent message; the sender's number of a received SMS.
    pub detail: Option<String>,
}

pub async fn messages(
    pool: &PgPool,
    user_id: Uuid,
    limit: i64,
) -> Result<Vec<Message>, sqlx::Error> {
    sqlx::query_as(
        "(SELECT at, action AS kind, detail->>'recipients' AS detail FROM audit_log
          WHERE user_id = $1 AND action IN ('email.sent', 'signal.sent')
          ORDER BY at DESC LIMIT $2)
         UNION ALL
         (SELECT s.received_at AS at, 'sms.received' AS kind, s.from_number AS detail
          FROM incoming_sms s JOIN identities i ON i.id = s.identity_id
          WHERE i.user_id = $1 ORDER BY s.received_at DESC LIMIT $2)
         ORDER BY at DESC LIMIT $2",
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Mails and Signal messages sent since `since`.
pub async fn sent_counts(
    pool: &PgPool,
    user_id: Uuid,
    since: DateTime<Utc>,
) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE action = 'email.sent'),
                count(*) FILTER (WHERE action = 'signal.sent')
         FROM audit_log WHERE user_id = $1 AND at >= $2
           AND action IN ('email.sent', 'signal.sent')",
    )
    .bind(user_id)
    .bind(since)
    .fetch_one(pool)
    .await
}
