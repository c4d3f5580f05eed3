//! The `signal_messages` table (Signal messages received per identity, read with a cursor) and
//! `signal_receivers` (the keep-alive record of each number's receiver).

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct SignalMessage {
    /// The cursor.
    pub id: i64,
    pub identity_id: Uuid,
    pub number: String,
    pub sender: String,
    pub sender_name: Option<String>,
    pub sent_at_ms: i64,
    pub body: String,
    pub received_at: DateTime<Utc>,
}

/// A message as signal-cli handed it out.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub sender: String,
    pub sender_name: Option<String>,
    pub sent_at_ms: i64,
    pub body: String,
}

/// Stores `messages` for the identity in one transaction; returns how many were new (a
/// message stored before, by a replayed step or another receive, is skipped). Also records
/// the receive as the number's last successful one (and its receiver as running).
pub async fn store(
    pool: &PgPool,
    identity_id: Uuid,
    number: &str,
    messages: &[NewMessage],
) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut new = 0;
    if !messages.is_empty() {
        // One writer per identity at a time: ids are then committed in order (see migration).
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 17))")
            .bind(identity_id)
            .execute(&mut *tx)
            .await?;
        for m in messages {
            new += sqlx::query(
                "INSERT INTO signal_messages (identity_id, number, sender, sender_name, sent_at_ms, body)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (identity_id, sender, sent_at_ms) DO NOTHING",
            )
            .bind(identity_id)
            .bind(number)
            .bind(&m.sender)
            .bind(&m.sender_name)
            .bind(m.sent_at_ms)
            .bind(&m.body)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
    }
    sqlx::query(
        "INSERT INTO signal_receivers (number, identity_id, last_received_at, running, updated_at)
         VALUES ($1, $2, now(), true, now())
         ON CONFLICT (number) DO UPDATE
         SET identity_id = $2, last_received_at = now(), running = true, updated_at = now()",
    )
    .bind(number)
    .bind(identity_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(new)
}

/// The identity's messages after the cursor `after` (from the first when None), oldest first.
pub async fn list_after(
    pool: &PgPool,
    identity_id: Uuid,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<SignalMessage>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, identity_id, number, sender, sender_name, sent_at_ms, body, received_at
         FROM signal_messages WHERE identity_id = $1 AND id > $2
         ORDER BY id LIMIT $3",
    )
    .bind(identity_id)
    .bind(after.unwrap_or(0))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Erases the identity's messages received more than `retention_secs` ago; how many.
pub async fn erase_older_than(
    pool: &PgPool,
    identity_id: Uuid,
    retention_secs: i64,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "DELETE FROM signal_messages
         WHERE identity_id = $1 AND received_at < now() - make_interval(secs => $2)",
    )
    .bind(identity_id)
    .bind(retention_secs as f64)
    .execute(pool)
    .await?
    .rows_affected())
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Receiver {
    pub number: String,
    pub identity_id: Option<Uuid>,
    pub last_received_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub running: bool,
}

const RECEIVER_COLUMNS: &str =
    "number, identity_id, last_received_at, last_error, last_error_at, running";

pub async fn receiver(pool: &PgPool, number: &str) -> Result<Option<Receiver>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {RECEIVER_COLUMNS} FROM signal_receivers WHERE number = $1"
    ))
    .bind(number)
    .fetch_optional(pool)
    .await
}

/// Records whether the number's receiver loop is scheduled.
pub async fn set_running(
    pool: &PgPool,
    number: &str,
    identity_id: Uuid,
    running: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO signal_receivers (number, identity_id, running, updated_at)
         VALUES ($1, $2, $3, now())
         ON CONFLICT (number) DO UPDATE SET identity_id = $2, running = $3, updated_at = now()",
    )
    .bind(number)
    .bind(identity_id)
    .bind(running)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records a failed receive.
pub async fn record_error(
    pool: &PgPool,
    number: &str,
    identity_id: Uuid,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO signal_receivers (number, identity_id, last_error, last_error_at, updated_at)
         VALUES ($1, $2, $3, now(), now())
         ON CONFLICT (number) DO UPDATE
         SET identity_id = $2, last_error = $3, last_error_at = now(), updated_at = now()",
    )
    .bind(number)
    .bind(identity_id)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

/// A registered number of an active identity nobody has received for in `stale_secs` (or ever).
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Stale {
    pub number: String,
    pub identity_id: Uuid,
    pub user_id: Uuid,
    pub last_received_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub running: bool,
}

pub async fn stale(pool: &PgPool, stale_secs: i64) -> Result<Vec<Stale>, sqlx::Error> {
    sqlx::query_as(
        "SELECT i.phone_number AS number, i.id AS identity_id, i.user_id,
                r.last_received_at, r.last_error, r.last_error_at, coalesce(r.running, false) AS running
         FROM identities i
         LEFT JOIN signal_receivers r ON r.number = i.phone_number
         WHERE i.status = 'active' AND i.signal_status = 'registered'
           AND i.phone_number IS NOT NULL
           AND (r.last_received_at IS NULL
                OR r.last_received_at < now() - make_interval(secs => $1))
         ORDER BY r.last_received_at NULLS FIRST, i.phone_number",
    )
    .bind(stale_secs as f64)
    .fetch_all(pool)
    .await
}
