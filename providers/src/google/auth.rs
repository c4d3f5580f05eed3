//! Service-account credentials: an RS256-signed JWT assertion exchanged at the token URL for an
//! access token that impersonates a Workspace user (domain-wide delegation through `sub`), and
//! a cache that keeps each token until shortly before it expires.

use super::GoogleError;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Scope for Admin SDK Directory user management.
pub const DIRECTORY_SCOPE: &str = "https://www.googleapis.com/auth/admin.directory.user";
/// Scopes for acting as a user on Gmail and Calendar.
pub const USER_SCOPES: &str = "https://mail.google.com/ https://www.googleapis.com/auth/calendar";

/// A refreshed token is fetched this long before the old one expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// The parts of a service account key file (the JSON Google issues) that signing needs.
pub struct ServiceAccount {
    pub client_email: String,
    private_key_id: Option<String>,
    key: EncodingKey,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: String,
    private_key: String,
    private_key_id: Option<String>,
}

impl ServiceAccount {
    /// Parses a service account key file (`{"type": "service_account", "client_email",
    /// "private_key", "private_key_id", ...}`).
    pub fn from_json(json: &str) -> Result<Self, GoogleError> {
        let file: KeyFile = serde_json::from_str(json).map_err(|e| {
            GoogleError::Credentials(format!(
                "GOOGLE_SERVICE_ACCOUNT_JSON is not a key file: {e}"
            ))
        })?;
        if file.kind.as_deref().is_some_and(|k| k != "service_account") {
            return Err(GoogleError::Credentials(
                "GOOGLE_SERVICE_ACCOUNT_JSON is not a service_account key".into(),
            ));
        }
        let key = EncodingKey::from_rsa_pem(file.private_key.as_bytes()).map_err(|e| {
            GoogleError::Credentials(format!("private_key is not an RSA PEM key: {e}"))
        })?;
        Ok(Self {
            client_email: file.client_email,
            private_key_id: file.private_key_id,
            key,
        })
    }

    /// The signed assertion for `sub` (the impersonated user) and `scope`, valid one hour.
    pub(crate) fn assertion(
        &self,
        audience: &str,
        sub: &str,
        scope: &str,
    ) -> Result<String, GoogleError> {
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let claims = Claims {
            iss: &self.client_email,
            sub,
            scope,
            aud: audience,
            iat,
            exp: iat + 3600,
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid.clone_from(&self.private_key_id);
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| GoogleError::Credentials(format!("cannot sign the assertion: {e}")))
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

/// `{"access_token", "expires_in", "token_type"}` from the token endpoint.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    pub expires_in: u64,
}

/// (impersonated user, scope) → (access token, expiry).
type Tokens = HashMap<(String, &'static str), (String, Instant)>;

/// Access tokens by impersonated user and scope.
#[derive(Default)]
pub(crate) struct TokenCache {
    tokens: Mutex<Tokens>,
}

impl TokenCache {
    pub fn get(&self, sub: &str, scope: &'static str) -> Option<String> {
        let tokens = self.tokens.lock().ok()?;
        tokens
            .get(&(sub.to_owned(), scope))
            .filter(|(_, expires)| Instant::now() + EXPIRY_MARGIN < *expires)
            .map(|(t, _)| t.clone())
    }

    pub fn put(&self, sub: &str, scope: &'static str, token: String, expires_in: Duration) {
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.insert(
                (sub.to_owned(), scope),
                (token, Instant::now() + expires_in),
            );
        }
    }

    /// Drops a token the API refused (revoked, or the provider forgot it).
    pub fn evict(&self, sub: &str, scope: &'static str) {
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.remove(&(sub.to_owned(), scope));
        }
    }
}
