//! Append-only audit log of security- and money-relevant actions. Never holds secrets.

use sqlx::{Executor, Postgres};
use uuid::Uuid;

pub async fn record<'e>(
    exec: impl Executor<'e, Database = Postgres>,
    actor: &str,
    user_id: Option<Uuid>,
    action: &str,
    detail: serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO audit_log (actor, user_id, action, detail) VALUES ($1, $2, $3, $4)")
        .bind(actor)
        .bind(user_id)
        .bind(action)
        .bind(detail)
        .execute(exec)
        .await?;
    Ok(())
}

pub async fn count(
    pool: &sqlx::PgPool,
    action: &str,
    detail_contains: serde_json::Value,
) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM audit_log WHERE action = $1 AND detail @> $2")
            .bind(action)
            .bind(detail_contains)
            .fetch_one(pool)
            .await?;
    Ok(n)
}
