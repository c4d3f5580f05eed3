//! The `incoming_sms` table: SMS received on our numbers that were not Signal codes.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct IncomingSms {
    pub id: Uuid,
    pub identity_id: Option<Uuid>,
    pub to_number: String,
    pub from_number: String,
    pub body: String,
    pub provider_message_id: String,
    pub received_at: DateTime<Utc>,
}

/// What a webhook hands over.
#[derive(Debug, Clone)]
pub struct NewSms<'a> {
    /// The identity owning `to_number`, when it is one of ours.
    pub identity_id: Option<Uuid>,
    pub to_number: &'a str,
    pub from_number: &'a str,
    pub body: &'a str,
    pub provider_message_id: &'a str,
}

/// Stores the message; false when a message with this provider id is stored already.
pub async fn insert<'e>(db: impl PgExecutor<'e>, sms: &NewSms<'_>) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO incoming_sms (id, identity_id, to_number, from_number, body, provider_message_id)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (provider_message_id) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(sms.identity_id)
    .bind(sms.to_number)
    .bind(sms.from_number)
    .bind(sms.body)
    .bind(sms.provider_message_id)
    .execute(db)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// The identity's messages, newest first; `before` continues after the id of the last
/// message of the previous page.
pub async fn list_for_identity(
    pool: &PgPool,
    identity_id: Uuid,
    limit: i64,
    before: Option<Uuid>,
) -> Result<Vec<IncomingSms>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.id, s.identity_id, s.to_number, s.from_number, s.body, s.provider_message_id,
                s.received_at
         FROM incoming_sms s
         WHERE s.identity_id = $1
           AND ($3::uuid IS NULL OR (s.received_at, s.id) < (
                SELECT c.received_at, c.id FROM incoming_sms c
                WHERE c.id = $3 AND c.identity_id = $1))
         ORDER BY s.received_at DESC, s.id DESC
         LIMIT $2",
    )
    .bind(identity_id)
    .bind(limit)
    .bind(before)
    .fetch_all(pool)
    .await
}

/// Every stored message to `to_number` (operators and tests).
pub async fn list_for_number(
    pool: &PgPool,
    to_number: &str,
) -> Result<Vec<IncomingSms>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, identity_id, to_number, from_number, body, provider_message_id, received_at
         FROM incoming_sms WHERE to_number = $1 ORDER BY received_at DESC, id DESC",
    )
    .bind(to_number)
    .fetch_all(pool)
    .await
}
