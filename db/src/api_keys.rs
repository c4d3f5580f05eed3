//! The `api_keys` table. Only SHA-256 hashes of keys are stored.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKey {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, user_id, name, prefix, created_at, last_used_at";

pub async fn insert(
    pool: &PgPool,
    id: Uuid,
    user_id: Uuid,
    name: &str,
    secret: &domain::ApiKeySecret,
) -> Result<ApiKey, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO api_keys (id, user_id, name, prefix, key_hash) VALUES ($1, $2, $3, $4, $5)
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(user_id)
    .bind(name)
    .bind(secret.display_prefix())
    .bind(secret.hash().0.as_slice())
    .fetch_one(pool)
    .await
}

pub async fn list_active(pool: &PgPool, user_id: Uuid) -> Result<Vec<ApiKey>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at, id"
    ))
    .bind(user_id)
    .fetch_all(pool)
    .await
}

/// Revokes one of the user's keys; false when no such active key belongs to that user.
pub async fn revoke(pool: &PgPool, user_id: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(user_id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Revokes `id` and creates its successor in one transaction; None if `id` is not the user's
/// active key.
pub async fn rotate(
    pool: &PgPool,
    user_id: Uuid,
    id: Uuid,
    new_id: Uuid,
    secret: &domain::ApiKeySecret,
) -> Result<Option<ApiKey>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let old: Option<(String,)> = sqlx::query_as(
        "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL
         RETURNING name",
    )
    .bind(id)
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((name,)) = old else {
        return Ok(None);
    };
    let key = sqlx::query_as(&format!(
        "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, rotated_from)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    ))
    .bind(new_id)
    .bind(user_id)
    .bind(name)
    .bind(secret.display_prefix())
    .bind(secret.hash().0.as_slice())
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(key))
}

/// The active key with this hash, if any (hash lookup is exact; the caller re-checks the hash
/// in constant time against the stored value).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyOwner {
    pub id: Uuid,
    pub user_id: Uuid,
    pub key_hash: Vec<u8>,
}

pub async fn find_active_by_hash(
    pool: &PgPool,
    hash: &[u8],
) -> Result<Option<KeyOwner>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, user_id, key_hash FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash)
    .fetch_optional(pool)
    .await
}

/// Writes batched `last_used_at` values; never moves a timestamp backwards.
pub async fn record_last_used(
    pool: &PgPool,
    uses: &[(Uuid, DateTime<Utc>)],
) -> Result<(), sqlx::Error> {
    if uses.is_empty() {
        return Ok(());
    }
    let (ids, ats): (Vec<Uuid>, Vec<DateTime<Utc>>) = uses.iter().copied().unzip();
    sqlx::query(
        "UPDATE api_keys k SET last_used_at = GREATEST(k.last_used_at, u.at)
         FROM UNNEST($1::uuid[], $2::timestamptz[]) AS u(id, at) WHERE k.id = u.id",
    )
    .bind(ids)
    .bind(ats)
    .execute(pool)
    .await?;
    Ok(())
}

/// Revokes every active key of the user (deprovisioning); returns how many.
pub async fn revoke_all(pool: &PgPool, user_id: Uuid) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .execute(pool)
    .await?;
    sqlx::query(
        "UPDATE oauth_grants SET revoked_at = now(), revoked_reason = 'identity deprovisioned'
         WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Ids and names of all the user's keys, revoked ones too (activity names old requests).
pub async fn list_all(pool: &PgPool, user_id: Uuid) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, name FROM api_keys WHERE user_id = $1")
        .bind(user_id)
        .fetch_all(pool)
        .await
}
