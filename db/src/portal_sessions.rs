//! Browser sessions of the portal, found by the hash of the cookie's random id.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// A live session and its user, read together.
#[derive(Debug, sqlx::FromRow)]
pub struct Session {
    #[sqlx(flatten)]
    pub user: crate::users::User,
    pub auto_approve_client: Option<String>,
}

pub async fn insert(
    pool: &PgPool,
    id_hash: &[u8],
    user_id: Uuid,
    auto_approve_client: Option<&str>,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO portal_sessions (id_hash, user_id, auto_approve_client, expires_at)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(id_hash)
    .bind(user_id)
    .bind(auto_approve_client)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn find(pool: &PgPool, id_hash: &[u8]) -> Result<Option<Session>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.id, u.email, u.password_hash, u.name, u.token_version, u.created_at,
                s.auto_approve_client
         FROM portal_sessions s JOIN users u ON u.id = s.user_id
         WHERE s.id_hash = $1 AND s.expires_at > now()",
    )
    .bind(id_hash)
    .fetch_optional(pool)
    .await
}

/// Spends the session's one automatic approval for `client_id`; true if it had it.
pub async fn take_auto_approval(
    pool: &PgPool,
    id_hash: &[u8],
    client_id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE portal_sessions SET auto_approve_client = NULL
         WHERE id_hash = $1 AND auto_approve_client = $2",
    )
    .bind(id_hash)
    .bind(client_id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn delete(pool: &PgPool, id_hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM portal_sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(pool)
        .await?;
    Ok(())
}
