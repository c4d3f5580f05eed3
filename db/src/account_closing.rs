//! Closing an account: the `users.status` life cycle (`active` → `closing` → `closed`), ending
//! every way in at once, and erasing personal data while the billing records stay under the
//! user's uuid (a pseudonymous id).
//!
//! Each function is idempotent: the api runs `end_access` in the request's transaction and the
//! CloseAccount workflow runs it again as its first step (the api may die between handing over
//! and committing); `erase` can run any number of times.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Where an account stands.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct AccountState {
    /// `active`, `closing` or `closed`.
    pub status: String,
    pub closing_requested_at: Option<DateTime<Utc>>,
    pub erase_after: Option<DateTime<Utc>>,
    pub erased_at: Option<DateTime<Utc>>,
}

impl AccountState {
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }
}

const STATE: &str = "status, closing_requested_at, erase_after, erased_at";

pub async fn state(pool: &PgPool, user_id: Uuid) -> Result<Option<AccountState>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {STATE} FROM users WHERE id = $1"))
        .bind(user_id)
        .fetch_optional(pool)
        .await
}

/// What `end_access` did.
#[derive(Debug, Clone)]
pub struct Ended {
    pub state: AccountState,
    /// True when this call moved the account from `active` to `closing`.
    pub newly_closing: bool,
}

/// Marks the account `closing` (erasure due at `erase_after`, unless a earlier call already
/// decided it) and ends every way in: API keys and OAuth grants revoked (the proxy drops them
/// on the NOTIFY their triggers send at commit), refresh tokens revoked, session access tokens
/// invalidated (token version), portal sessions and unused authorization codes deleted. The
/// user's row is locked first, so concurrent requests run one after the other. `None` when the
/// user does not exist.
pub async fn end_access(
    conn: &mut PgConnection,
    user_id: Uuid,
    erase_after: DateTime<Utc>,
) -> Result<Option<Ended>, sqlx::Error> {
    let before: Option<AccountState> = sqlx::query_as(&format!(
        "SELECT {STATE} FROM users WHERE id = $1 FOR UPDATE"
    ))
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(before) = before else {
        return Ok(None);
    };
    let newly_closing = before.is_active();
    if newly_closing {
        sqlx::query(
            "UPDATE users SET status = 'closing', closing_requested_at = now(), erase_after = $2,
                 updated_at = now()
             WHERE id = $1",
        )
        .bind(user_id)
        .bind(erase_after)
        .execute(&mut *conn)
        .await?;
    }
    // Every time, not only the first: a credential issued by a request that was already past
    // its checks when the first call committed is ended by the next one.
    sqlx::query("UPDATE users SET token_version = token_version + 1 WHERE id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE oauth_grants SET revoked_at = now(), revoked_reason = 'account closed'
         WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM portal_sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM oauth_codes WHERE user_id = $1 AND used_at IS NULL")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    let state: AccountState = sqlx::query_as(&format!("SELECT {STATE} FROM users WHERE id = $1"))
        .bind(user_id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(Some(Ended {
        state,
        newly_closing,
    }))
}

/// What the CloseAccount workflow has to undo at the providers, read when closing starts.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Holdings {
    /// (identity id, generation, status) of the user's identity, if there is one.
    pub identity: Option<(Uuid, i32, String)>,
    /// Stripe ids of the user's subscriptions that are not over yet.
    pub live_subscriptions: Vec<String>,
}

pub async fn holdings(pool: &PgPool, user_id: Uuid) -> Result<Holdings, sqlx::Error> {
    let identity: Option<(Uuid, i32, String)> =
        sqlx::query_as("SELECT id, generation, status FROM identities WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(pool)
            .await?;
    let live_subscriptions: Vec<String> = sqlx::query_scalar(
        "SELECT stripe_subscription_id FROM subscriptions
         WHERE user_id = $1 AND status NOT IN ('canceled', 'incomplete_expired')
         ORDER BY created_at",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    Ok(Holdings {
        identity,
        live_subscriptions,
    })
}

/// The pseudonymous address an erased account keeps (unique, and never deliverable).
pub fn erased_email(user_id: Uuid) -> String {
    format!("erased-{user_id}@invalid")
}

/// Erases the user's personal data in one transaction and marks the account `closed`: name,
/// email (→ `erased_email`), password hash, SMS and Signal message copies, the details of their
/// audit entries, key names, the identity's addresses and failure texts. Kept, under the
/// user's uuid, for the law's retention of billing records: subscriptions, the Stripe customer
/// id, usage events and monthly totals, reported overage. The `account.closed` audit entry,
/// with `detail` (which must hold no personal data), is written in the same transaction, after
/// the wipe. True when this call erased it.
pub async fn erase(
    pool: &PgPool,
    user_id: Uuid,
    detail: serde_json::Value,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM users WHERE id = $1 FOR UPDATE")
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
    if status.as_deref() != Some("closing") {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE users SET email = $2, name = NULL, password_hash = '', status = 'closed',
             erased_at = now(), token_version = token_version + 1, updated_at = now()
         WHERE id = $1",
    )
    .bind(user_id)
    .bind(erased_email(user_id))
    .execute(&mut *tx)
    .await?;
    let identities = "(SELECT id FROM identities WHERE user_id = $1)";
    for sql in [
        format!("DELETE FROM incoming_sms WHERE identity_id IN {identities}"),
        format!("DELETE FROM signal_messages WHERE identity_id IN {identities}"),
        format!("DELETE FROM signal_receivers WHERE identity_id IN {identities}"),
        format!("UPDATE provisioning_steps SET detail = NULL WHERE identity_id IN {identities}"),
        "UPDATE identities SET email = NULL, google_user_id = NULL, workspace_password_enc = NULL,
             phone_number = NULL, telnyx_number_id = NULL, failure_reason = NULL,
             signal_failure_reason = NULL, updated_at = now()
         WHERE user_id = $1"
            .to_owned(),
        "UPDATE audit_log SET detail = '{}'::jsonb WHERE user_id = $1".to_owned(),
        "UPDATE api_keys SET name = 'erased' WHERE user_id = $1".to_owned(),
        "DELETE FROM refresh_tokens WHERE user_id = $1".to_owned(),
        "DELETE FROM portal_sessions WHERE user_id = $1".to_owned(),
        "DELETE FROM oauth_codes WHERE user_id = $1".to_owned(),
        "DELETE FROM oauth_tokens WHERE user_id = $1".to_owned(),
    ] {
        sqlx::query(&sql).bind(user_id).execute(&mut *tx).await?;
    }
    crate::audit::record(
        &mut *tx,
        "CloseAccount",
        Some(user_id),
        "account.closed",
        detail,
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}
