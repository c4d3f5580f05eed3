//! Rotating refresh tokens. Each use replaces the token with a new one of the same family;
//! presenting an already-used token means it was stolen, so the whole family is revoked.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

pub async fn insert(
    pool: &PgPool,
    user_id: Uuid,
    family_id: Uuid,
    token_hash: &[u8],
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO refresh_tokens (id, user_id, token_hash, family_id, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::now_v7())
    .bind(user_id)
    .bind(token_hash)
    .bind(family_id)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

pub enum Consumed {
    /// The token was valid and is now used; issue a successor in this family.
    Ok { user_id: Uuid, family_id: Uuid },
    /// Unknown, expired or revoked.
    Invalid,
    /// Already used once: treated as theft, and the family is now revoked.
    Reused,
}

/// Marks the token used, atomically, so two concurrent refreshes cannot both succeed.
pub async fn consume(pool: &PgPool, token_hash: &[u8]) -> Result<Consumed, sqlx::Error> {
    let row: Option<(Uuid, Uuid)> = sqlx::query_as(
        "UPDATE refresh_tokens SET used_at = now()
         WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
         RETURNING user_id, family_id",
    )
    .bind(token_hash)
    .fetch_optional(pool)
    .await?;
    if let Some((user_id, family_id)) = row {
        return Ok(Consumed::Ok { user_id, family_id });
    }
    let reused: Option<(Uuid,)> = sqlx::query_as(
        "SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND used_at IS NOT NULL",
    )
    .bind(token_hash)
    .fetch_optional(pool)
    .await?;
    match reused {
        Some((family,)) => {
            revoke_family(pool, family).await?;
            Ok(Consumed::Reused)
        }
        None => Ok(Consumed::Invalid),
    }
}

pub async fn revoke_family(pool: &PgPool, family_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family_id)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn revoke_all_for_user(pool: &PgPool, user_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .execute(pool)
    .await?;
    Ok(())
}
