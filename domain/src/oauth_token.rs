//! OAuth tokens a connected Dex instance holds: `pdx_at_` (access, one hour) and `pdx_rt_`
//! (refresh) followed by 256 bits in base62, stored as SHA-256 hashes like API keys.
//! A refresh derives its successor pair from the presented refresh token with a server key
//! (HMAC), so a retried refresh within the grace period gets the very same pair back without
//! the server ever storing a token in the clear.

use crate::api_key::{base62_fixed, ApiKeyHash, BODY_LEN};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const ACCESS_TOKEN_PREFIX: &str = "pdx_at_";
pub const REFRESH_TOKEN_PREFIX: &str = "pdx_rt_";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::Access => ACCESS_TOKEN_PREFIX,
            Self::Refresh => REFRESH_TOKEN_PREFIX,
        }
    }
}

pub struct OAuthToken {
    kind: TokenKind,
    text: String,
}

impl OAuthToken {
    pub fn generate(kind: TokenKind) -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self::from_bytes(kind, bytes)
    }

    /// The token of `kind` that follows `parent` (a refresh token) under `key`: the same
    /// inputs always give the same token.
    pub fn derive(kind: TokenKind, key: &[u8], parent: &str) -> Self {
        let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
            Ok(m) => m,
            // HMAC takes keys of any length; this arm cannot run.
            Err(_) => return Self::generate(kind),
        };
        mac.update(kind.prefix().as_bytes());
        mac.update(parent.as_bytes());
        Self::from_bytes(kind, mac.finalize().into_bytes().into())
    }

    fn from_bytes(kind: TokenKind, bytes: [u8; 32]) -> Self {
        Self {
            kind,
            text: format!("{}{}", kind.prefix(), base62_fixed(bytes)),
        }
    }

    /// Accepts only well-formed tokens, so garbage never reaches a lookup.
    pub fn parse(input: &str) -> Option<Self> {
        let (kind, body) = if let Some(b) = input.strip_prefix(ACCESS_TOKEN_PREFIX) {
            (TokenKind::Access, b)
        } else {
            (
                TokenKind::Refresh,
                input.strip_prefix(REFRESH_TOKEN_PREFIX)?,
            )
        };
        (body.len() == BODY_LEN && body.bytes().all(|b| b.is_ascii_alphanumeric())).then(|| Self {
            kind,
            text: input.to_owned(),
        })
    }

    pub fn kind(&self) -> TokenKind {
        self.kind
    }

    pub fn expose(&self) -> &str {
        &self.text
    }

    pub fn hash(&self) -> ApiKeyHash {
        ApiKeyHash(Sha256::digest(self.text.as_bytes()).into())
    }
}

impl std::fmt::Debug for OAuthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OAuthToken({:?})", self.kind)
    }
}

/// The hash under which a presented bearer credential is stored, if it is a well-formed API
/// key or access token (never a refresh token: those only buy new pairs).
pub fn bearer_hash(presented: &str) -> Option<ApiKeyHash> {
    if let Some(key) = crate::ApiKeySecret::parse(presented) {
        return Some(key.hash());
    }
    OAuthToken::parse(presented)
        .filter(|t| t.kind == TokenKind::Access)
        .map(|t| t.hash())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_tokens_are_stable_per_parent_and_kind() {
        let a = OAuthToken::derive(TokenKind::Access, b"k", "pdx_rt_x");
        let b = OAuthToken::derive(TokenKind::Access, b"k", "pdx_rt_x");
        let r = OAuthToken::derive(TokenKind::Refresh, b"k", "pdx_rt_x");
        let other = OAuthToken::derive(TokenKind::Access, b"k2", "pdx_rt_x");
        assert_eq!(a.expose(), b.expose());
        assert_ne!(a.hash(), r.hash());
        assert_ne!(a.expose(), other.expose());
        assert!(OAuthToken::parse(a.expose()).is_some());
        assert_eq!(
            OAuthToken::parse(r.expose()).map(|t| t.kind()),
            Some(TokenKind::Refresh)
        );
    }

    #[test]
    fn only_keys_and_access_tokens_are_bearer_credentials() {
        let at = OAuthToken::generate(TokenKind::Access);
        let rt = OAuthToken::generate(TokenKind::Refresh);
        let key = crate::ApiKeySecret::generate();
        assert_eq!(bearer_hash(at.expose()), Some(at.hash()));
        assert_eq!(bearer_hash(key.expose()), Some(key.hash()));
        assert_eq!(bearer_hash(rt.expose()), None);
        assert_eq!(bearer_hash("pdx_at_short"), None);
    }
}
