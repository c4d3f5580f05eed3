//! The `webhook_events` table: each provider event id is processed once.

use sqlx::PgExecutor;

/// Records the event; true the first time this (provider, event id) is seen, false for a
/// redelivery. Run it inside the transaction that does the event's work, so a failure leaves
/// the event unrecorded and a redelivery is processed again.
pub async fn record<'e>(
    db: impl PgExecutor<'e>,
    provider: &str,
    event_id: &str,
    event_type: &str,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO webhook_events (provider, event_id, event_type) VALUES ($1, $2, $3)
         ON CONFLICT (provider, event_id) DO NOTHING",
    )
    .bind(provider)
    .bind(event_id)
    .bind(event_type)
    .execute(db)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Whether the event has been recorded.
pub async fn seen<'e>(
    db: impl PgExecutor<'e>,
    provider: &str,
    event_id: &str,
) -> Result<bool, sqlx::Error> {
    let row: Option<(i32,)> =
        sqlx::query_as("SELECT 1 FROM webhook_events WHERE provider = $1 AND event_id = $2")
            .bind(provider)
            .bind(event_id)
            .fetch_optional(db)
            .await?;
    Ok(row.is_some())
}

/// How many events of `provider` have been recorded.
pub async fn count(pool: &sqlx::PgPool, provider: &str) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM webhook_events WHERE provider = $1")
        .bind(provider)
        .fetch_one(pool)
        .await?;
    Ok(n)
}

/// Takes the session-level advisory lock that serialises the processing of one subject's
/// events (a Stripe subscription, say) across api replicas, without keeping a transaction
/// open; false when another session holds it. Unlock it with `unlock_subject` on the same
/// connection (a connection that dies releases it).
pub async fn try_lock_subject(
    conn: &mut sqlx::PgConnection,
    provider: &str,
    subject: &str,
) -> Result<bool, sqlx::Error> {
    let (locked,): (bool,) =
        sqlx::query_as("SELECT pg_try_advisory_lock(hashtextextended($1 || ':' || $2, 0))")
            .bind(provider)
            .bind(subject)
            .fetch_one(conn)
            .await?;
    Ok(locked)
}

/// Releases what `try_lock_subject` took on this connection.
pub async fn unlock_subject(
    conn: &mut sqlx::PgConnection,
    provider: &str,
    subject: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1 || ':' || $2, 0))")
        .bind(provider)
        .bind(subject)
        .execute(conn)
        .await?;
    Ok(())
}
