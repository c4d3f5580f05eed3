//! Codes and token pairs: issuing a code at consent, exchanging it (once) for a pair under a
//! new grant, rotating a pair on refresh, and ending a grant on revocation.

use super::error::OAuthError;
use super::{pkce, ACCESS_TTL, CODE_TTL, REFRESH_GRACE, REFRESH_TTL, SCOPE};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use domain::{OAuthToken, TokenKind};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

/// The token endpoint's success answer (RFC 6749 §5.1).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds the access token works for.
    pub expires_in: i64,
    pub refresh_token: String,
    pub scope: &'static str,
}

fn hash(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn secs(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::seconds(d.as_secs() as i64)
}

/// A new single-use code for a consented request; returns the code to send to the client.
pub async fn issue_code(
    pool: &PgPool,
    user_id: Uuid,
    client_id: &str,
    redirect_uri: &str,
    code_challenge: &str,
) -> Result<String, sqlx::Error> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let code = format!(
        "pdx_code_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    db::oauth::insert_code(
        pool,
        &db::oauth::NewCode {
            hash: &hash(&code),
            client_id,
            user_id,
            redirect_uri,
            code_challenge,
            expires_at: Utc::now() + secs(CODE_TTL),
        },
    )
    .await?;
    Ok(code)
}

pub struct Exchange<'a> {
    pub code: &'a str,
    pub redirect_uri: &'a str,
    pub client_id: &'a str,
    pub code_verifier: &'a str,
}

/// `grant_type=authorization_code`. The code is spent by the first attempt whatever its
/// outcome; a second attempt revokes the grant the first one created.
pub async fn exchange(pool: &PgPool, x: Exchange<'_>) -> Result<TokenResponse, OAuthError> {
    let code_hash = hash(x.code);
    let mut tx = pool.begin().await?;
    let code = match db::oauth::use_code(&mut tx, &code_hash).await? {
        db::oauth::CodeUse::First(code) => code,
        db::oauth::CodeUse::Reused => {
            tx.commit().await?;
            tracing::warn!(
                client_id = x.client_id,
                "authorization code reused; grant revoked"
            );
            return Err(OAuthError::invalid_grant(
                "this authorization code was already used; the tokens it produced have been revoked",
            ));
        }
        db::oauth::CodeUse::Unknown => {
            return Err(OAuthError::invalid_grant("unknown authorization code"))
        }
    };
    let refusal = if code.expires_at <= Utc::now() {
        Some("the authorization code has expired; start the connection again")
    } else if code.client_id != x.client_id {
        Some("the authorization code was issued to another client")
    } else if code.redirect_uri != x.redirect_uri {
        Some("redirect_uri does not match the one of the authorization request")
    } else if !pkce::verify(x.code_verifier, &code.code_challenge) {
        Some("code_verifier does not match the code_challenge")
    } else {
        None
    };
    if let Some(why) = refusal {
        tx.commit().await?;
        return Err(OAuthError::invalid_grant(why));
    }
    let grant_id = db::oauth::create_grant(&mut tx, &code_hash, code.user_id, x.client_id).await?;
    let access = OAuthToken::generate(TokenKind::Access);
    let refresh = OAuthToken::generate(TokenKind::Refresh);
    let now = Utc::now();
    insert(&mut tx, grant_id, code.user_id, &access, &refresh, now).await?;
    db::audit::record(
        &mut *tx,
        "oauth",
        Some(code.user_id),
        "oauth.connected",
        serde_json::json!({"client_id": x.client_id, "grant_id": grant_id}),
    )
    .await?;
    tx.commit().await?;
    Ok(response(access, refresh, now + secs(ACCESS_TTL)))
}

async fn insert(
    conn: &mut sqlx::PgConnection,
    grant_id: Uuid,
    user_id: Uuid,
    access: &OAuthToken,
    refresh: &OAuthToken,
    now: DateTime<Utc>,
) -> Result<Uuid, sqlx::Error> {
    db::oauth::insert_pair(
        conn,
        &db::oauth::NewPair {
            grant_id,
            user_id,
            access_hash: &access.hash().0,
            refresh_hash: &refresh.hash().0,
            access_expires_at: now + secs(ACCESS_TTL),
            refresh_expires_at: now + secs(REFRESH_TTL),
        },
    )
    .await
}

fn response(access: OAuthToken, refresh: OAuthToken, expires: DateTime<Utc>) -> TokenResponse {
    TokenResponse {
        access_token: access.expose().to_owned(),
        token_type: "Bearer",
        expires_in: (expires - Utc::now()).num_seconds().max(0),
        refresh_token: refresh.expose().to_owned(),
        scope: SCOPE,
    }
}

/// `grant_type=refresh_token`: rotates the pair. The successor is derived from the presented
/// token, so a retry within the grace period gets the same pair; later, a rotated token
/// presented again is taken as stolen and ends the grant (RFC 9700 §4.14.2).
pub async fn refresh(
    pool: &PgPool,
    key: &[u8],
    presented: &str,
    client_id: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let invalid = || OAuthError::invalid_grant("unknown, expired or revoked refresh token");
    let token = OAuthToken::parse(presented)
        .filter(|t| t.kind() == TokenKind::Refresh)
        .ok_or_else(invalid)?;
    let mut tx = pool.begin().await?;
    let row = db::oauth::lock_refresh(&mut tx, &token.hash().0)
        .await?
        .ok_or_else(invalid)?;
    if client_id.is_some_and(|c| c != row.client_id) {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if row.grant_revoked || row.refresh_expires_at <= Utc::now() {
        return Err(invalid());
    }
    let access = OAuthToken::derive(TokenKind::Access, key, presented);
    let next = OAuthToken::derive(TokenKind::Refresh, key, presented);
    match row.rotated_at {
        None => {
            let now = Utc::now();
            let successor = insert(&mut tx, row.grant_id, row.user_id, &access, &next, now).await?;
            db::oauth::mark_rotated(&mut tx, row.id, successor).await?;
            tx.commit().await?;
            Ok(response(access, next, now + secs(ACCESS_TTL)))
        }
        Some(at)
            if Utc::now() - at <= secs(REFRESH_GRACE)
                && row.successor_id.is_some()
                && !row.successor_rotated =>
        {
            Ok(response(access, next, at + secs(ACCESS_TTL)))
        }
        Some(_) => {
            db::oauth::revoke_grant(&mut tx, row.grant_id, "refresh token reused").await?;
            db::audit::record(
                &mut *tx,
                "oauth",
                Some(row.user_id),
                "oauth.refresh_reuse",
                serde_json::json!({"client_id": row.client_id, "grant_id": row.grant_id}),
            )
            .await?;
            tx.commit().await?;
            tracing::warn!(client_id = %row.client_id, "refresh token reused; grant revoked");
            Err(OAuthError::invalid_grant(
                "this refresh token was already used; the connection has been revoked for safety. Connect Dex again",
            ))
        }
    }
}

/// Ends the grant of an access or refresh token (RFC 7009). Unknown tokens are fine.
pub async fn revoke(pool: &PgPool, presented: &str) -> Result<(), OAuthError> {
    let Some(token) = OAuthToken::parse(presented) else {
        return Ok(());
    };
    if let Some((grant_id, client_id)) = db::oauth::grant_of_token(pool, &token.hash().0).await? {
        let mut conn = pool.acquire().await?;
        if db::oauth::revoke_grant(&mut conn, grant_id, "revoked by the client").await? {
            tracing::info!(%client_id, "grant revoked by its client");
        }
    }
    Ok(())
}
