//! The `users` table.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub name: Option<String>,
    pub token_version: i32,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, email, password_hash, name, token_version, created_at";

/// Inserts a user; a taken email surfaces as a unique violation.
pub async fn insert(
    pool: &PgPool,
    id: Uuid,
    email: &domain::Email,
    password_hash: &str,
    name: Option<&str>,
) -> Result<User, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO users (id, email, password_hash, name) VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(email.as_str())
    .bind(password_hash)
    .bind(name)
    .fetch_one(pool)
    .await
}

pub async fn find_by_email(
    pool: &PgPool,
    email: &domain::Email,
) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE email = $1"))
        .bind(email.as_str())
        .fetch_optional(pool)
        .await
}

pub async fn find(pool: &PgPool, id: Uuid) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Invalidates every access token of the user (logout everywhere).
pub async fn bump_token_version(pool: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE users SET token_version = token_version + 1, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct AdminUserRow {
    pub id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub plan: Option<String>,
    pub subscription_status: Option<String>,
    pub identity_status: Option<String>,
    pub active_api_keys: i64,
}

/// Keyset pagination ordered by (created_at, id): stable while users are being added.
pub async fn list_for_admin(
    pool: &PgPool,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<AdminUserRow>, sqlx::Error> {
    let (after_at, after_id) = after.unzip();
    sqlx::query_as(
        "SELECT u.id, u.email, u.name, u.created_at,
                s.plan, s.status AS subscription_status, i.status AS identity_status,
                (SELECT count(*) FROM api_keys k WHERE k.user_id = u.id AND k.revoked_at IS NULL)
                    AS active_api_keys
         FROM users u
         LEFT JOIN LATERAL (
             SELECT plan, status FROM subscriptions s
             WHERE s.user_id = u.id ORDER BY s.updated_at DESC LIMIT 1
         ) s ON true
         LEFT JOIN identities i ON i.user_id = u.id
         WHERE $1::timestamptz IS NULL OR (u.created_at, u.id) > ($1, $2)
         ORDER BY u.created_at, u.id
         LIMIT $3",
    )
    .bind(after_at)
    .bind(after_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}
