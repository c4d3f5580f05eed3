//! OAuth connect: clients (Dex instances), authorization codes, grants and token pairs.
//! Every state change that must happen once (a code's use, a refresh token's rotation) is a
//! single conditional UPDATE or a row lock, so concurrent requests cannot both win.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The redirect URI recorded for a client, if the client is known.
pub async fn client_redirect(
    pool: &PgPool,
    client_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT redirect_uri FROM oauth_clients WHERE id = $1")
        .bind(client_id)
        .fetch_optional(pool)
        .await
}

/// Records a client with its first redirect URI; an already recorded client keeps its own.
/// Returns the URI on record.
pub async fn record_client(
    pool: &PgPool,
    client_id: &str,
    redirect_uri: &str,
) -> Result<String, sqlx::Error> {
    sqlx::query(
        "INSERT INTO oauth_clients (id, redirect_uri) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
    )
    .bind(client_id)
    .bind(redirect_uri)
    .execute(pool)
    .await?;
    sqlx::query_scalar("SELECT redirect_uri FROM oauth_clients WHERE id = $1")
        .bind(client_id)
        .fetch_one(pool)
        .await
}

pub struct NewCode<'a> {
    pub hash: &'a [u8],
    pub client_id: &'a str,
    pub user_id: Uuid,
    pub redirect_uri: &'a str,
    pub code_challenge: &'a str,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert_code(pool: &PgPool, c: &NewCode<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO oauth_codes (code_hash, client_id, user_id, redirect_uri, code_challenge,
            expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(c.hash)
    .bind(c.client_id)
    .bind(c.user_id)
    .bind(c.redirect_uri)
    .bind(c.code_challenge)
    .bind(c.expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

#[derive(Debug, sqlx::FromRow)]
pub struct Code {
    pub client_id: String,
    pub user_id: Uuid,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub expires_at: DateTime<Utc>,
}

pub enum CodeUse {
    /// First use: the code is now spent, whatever the caller decides about it.
    First(Code),
    /// Used before: the grant its first use created (if any) is now revoked.
    Reused,
    Unknown,
}

/// Spends a code. A second use revokes what the first produced (RFC 6749 §4.1.2).
pub async fn use_code(conn: &mut PgConnection, hash: &[u8]) -> Result<CodeUse, sqlx::Error> {
    let first: Option<Code> = sqlx::query_as(
        "UPDATE oauth_codes SET used_at = now() WHERE code_hash = $1 AND used_at IS NULL
         RETURNING client_id, user_id, redirect_uri, code_challenge, expires_at",
    )
    .bind(hash)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(code) = first {
        return Ok(CodeUse::First(code));
    }
    let grant: Option<Option<Uuid>> =
        sqlx::query_scalar("SELECT grant_id FROM oauth_codes WHERE code_hash = $1")
            .bind(hash)
            .fetch_optional(&mut *conn)
            .await?;
    match grant {
        None => Ok(CodeUse::Unknown),
        Some(grant) => {
            if let Some(id) = grant {
                revoke_grant(&mut *conn, id, "authorization code used twice").await?;
            }
            Ok(CodeUse::Reused)
        }
    }
}

/// A new grant for the code's user and client, remembered on the code.
pub async fn create_grant(
    conn: &mut PgConnection,
    code_hash: &[u8],
    user_id: Uuid,
    client_id: &str,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO oauth_grants (id, user_id, client_id) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(user_id)
        .bind(client_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE oauth_codes SET grant_id = $2 WHERE code_hash = $1")
        .bind(code_hash)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(id)
}

pub struct NewPair<'a> {
    pub grant_id: Uuid,
    pub user_id: Uuid,
    pub access_hash: &'a [u8],
    pub refresh_hash: &'a [u8],
    pub access_expires_at: DateTime<Utc>,
    pub refresh_expires_at: DateTime<Utc>,
}

pub async fn insert_pair(conn: &mut PgConnection, p: &NewPair<'_>) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO oauth_tokens (id, grant_id, user_id, access_hash, refresh_hash,
            access_expires_at, refresh_expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(p.grant_id)
    .bind(p.user_id)
    .bind(p.access_hash)
    .bind(p.refresh_hash)
    .bind(p.access_expires_at)
    .bind(p.refresh_expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

/// A refresh token's row, locked for the rest of the transaction so that concurrent
/// refreshes of the same token take turns.
#[derive(Debug, sqlx::FromRow)]
pub struct RefreshRow {
    pub id: Uuid,
    pub grant_id: Uuid,
    pub user_id: Uuid,
    pub client_id: String,
    pub refresh_expires_at: DateTime<Utc>,
    pub rotated_at: Option<DateTime<Utc>>,
    pub successor_id: Option<Uuid>,
    pub grant_revoked: bool,
    /// Whether the successor has itself been rotated since.
    pub successor_rotated: bool,
}

pub async fn lock_refresh(
    conn: &mut PgConnection,
    refresh_hash: &[u8],
) -> Result<Option<RefreshRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT t.id, t.grant_id, t.user_id, g.client_id, t.refresh_expires_at, t.rotated_at,
                t.successor_id, g.revoked_at IS NOT NULL AS grant_revoked,
                COALESCE(s.rotated_at IS NOT NULL, false) AS successor_rotated
         FROM oauth_tokens t JOIN oauth_grants g ON g.id = t.grant_id
         LEFT JOIN oauth_tokens s ON s.id = t.successor_id
         WHERE t.refresh_hash = $1
         FOR UPDATE OF t",
    )
    .bind(refresh_hash)
    .fetch_optional(&mut *conn)
    .await
}

pub async fn mark_rotated(
    conn: &mut PgConnection,
    id: Uuid,
    successor: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE oauth_tokens SET rotated_at = now(), successor_id = $2 WHERE id = $1")
        .bind(id)
        .bind(successor)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Ends a grant and so every token under it; true if it was live.
pub async fn revoke_grant(
    conn: &mut PgConnection,
    grant_id: Uuid,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE oauth_grants SET revoked_at = now(), revoked_reason = $2
         WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(grant_id)
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The grant a token (access or refresh, by hash) belongs to, and its client.
pub async fn grant_of_token(
    pool: &PgPool,
    hash: &[u8],
) -> Result<Option<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT g.id, g.client_id FROM oauth_tokens t JOIN oauth_grants g ON g.id = t.grant_id
         WHERE t.access_hash = $1 OR t.refresh_hash = $1 LIMIT 1",
    )
    .bind(hash)
    .fetch_optional(pool)
    .await
}

/// The user and grant of a live access token (grant not revoked, token not expired).
pub async fn find_access(pool: &PgPool, hash: &[u8]) -> Result<Option<(Uuid, Uuid)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT g.user_id, g.id FROM oauth_tokens t JOIN oauth_grants g ON g.id = t.grant_id
         WHERE t.access_hash = $1 AND g.revoked_at IS NULL AND t.access_expires_at > now()",
    )
    .bind(hash)
    .fetch_optional(pool)
    .await
}

/// Records when grants were last used by the api (batched like API keys' last use).
pub async fn record_last_used(
    pool: &PgPool,
    uses: &[(Uuid, DateTime<Utc>)],
) -> Result<(), sqlx::Error> {
    if uses.is_empty() {
        return Ok(());
    }
    let (ids, ats): (Vec<Uuid>, Vec<DateTime<Utc>>) = uses.iter().copied().unzip();
    sqlx::query(
        "UPDATE oauth_grants g SET last_used_at = GREATEST(g.last_used_at, u.at)
         FROM UNNEST($1::uuid[], $2::timestamptz[]) AS u(id, at) WHERE g.id = u.id",
    )
    .bind(ids)
    .bind(ats)
    .execute(pool)
    .await?;
    Ok(())
}

/// A connected instance as the portal lists it.
#[derive(Debug, sqlx::FromRow)]
pub struct Instance {
    pub grant_id: Uuid,
    pub client_id: String,
    pub connected_at: DateTime<Utc>,
    /// The later of its last api call and its last AI request.
    pub last_used_at: Option<DateTime<Utc>>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_microdollars: i64,
}

/// The user's live grants with their usage since `since`, newest first.
pub async fn instances(
    pool: &PgPool,
    user_id: Uuid,
    since: DateTime<Utc>,
) -> Result<Vec<Instance>, sqlx::Error> {
    sqlx::query_as(
        "SELECT g.id AS grant_id, g.client_id, g.created_at AS connected_at,
                GREATEST(g.last_used_at, u.last_at) AS last_used_at,
                COALESCE(u.input, 0)::int8 AS input_tokens,
                COALESCE(u.output, 0)::int8 AS output_tokens,
                COALESCE(u.cost, 0)::int8 AS cost_microdollars
         FROM oauth_grants g
         LEFT JOIN LATERAL (
            SELECT max(created_at) AS last_at, sum(input_tokens) AS input,
                   sum(output_tokens) AS output, sum(cost_microdollars) AS cost
            FROM usage_events e
            WHERE e.user_id = g.user_id AND e.api_key_id = g.id AND e.created_at >= $2) u ON true
         WHERE g.user_id = $1 AND g.revoked_at IS NULL
         ORDER BY g.created_at DESC",
    )
    .bind(user_id)
    .bind(since)
    .fetch_all(pool)
    .await
}

/// Ends one of the user's grants (Disconnect in the portal); false if it is not theirs or
/// already ended.
pub async fn revoke_users_grant(
    pool: &PgPool,
    user_id: Uuid,
    grant_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE oauth_grants SET revoked_at = now(), revoked_reason = 'disconnected by the user'
         WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
    )
    .bind(grant_id)
    .bind(user_id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Names of the user's grants by id (the activity page shows which instance made a request).
pub async fn client_names(
    pool: &PgPool,
    user_id: Uuid,
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, client_id FROM oauth_grants WHERE user_id = $1")
        .bind(user_id)
        .fetch_all(pool)
        .await
}
