//! API keys: `pk_live_` followed by 256 random bits in base62. Only the SHA-256 hash is stored;
//! the plain key exists once, in the response that created it.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const API_KEY_PREFIX: &str = "pk_live_";
/// 256 bits need 43 base62 digits; we always emit exactly this many.
pub(crate) const BODY_LEN: usize = 43;
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

pub struct ApiKeySecret(String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyHash(pub [u8; 32]);

impl ApiKeySecret {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(format!("{API_KEY_PREFIX}{}", base62_fixed(bytes)))
    }

    /// Accepts only well-formed keys, so garbage never reaches a lookup.
    pub fn parse(input: &str) -> Option<Self> {
        let body = input.strip_prefix(API_KEY_PREFIX)?;
        (body.len() == BODY_LEN && body.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| Self(input.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> ApiKeyHash {
        ApiKeyHash(Sha256::digest(self.0.as_bytes()).into())
    }

    /// What lists show: enough to recognise the key, useless to an attacker.
    pub fn display_prefix(&self) -> String {
        self.0.chars().take(API_KEY_PREFIX.len() + 6).collect()
    }
}

impl ApiKeyHash {
    pub fn matches(&self, other: &[u8]) -> bool {
        self.0.ct_eq(other).into()
    }
}

impl std::fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeySecret({}…)", self.display_prefix())
    }
}

/// Big-endian base62 of a 256-bit number, left-padded to a fixed width.
pub(crate) fn base62_fixed(bytes: [u8; 32]) -> String {
    let mut n = bytes.to_vec();
    let mut digits = Vec::with_capacity(BODY_LEN);
    while n.iter().any(|&b| b != 0) {
        let mut rem: u32 = 0;
        for b in n.iter_mut() {
            let acc = (rem << 8) | u32::from(*b);
            *b = (acc / 62) as u8;
            rem = acc % 62;
        }
        digits.push(ALPHABET[rem as usize]);
    }
    while digits.len() < BODY_LEN {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8_lossy(&digits).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_well_formed_and_unique() {
        let a = ApiKeySecret::generate();
        let b = ApiKeySecret::generate();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), API_KEY_PREFIX.len() + BODY_LEN);
        assert!(ApiKeySecret::parse(a.expose()).is_some());
        assert!(a
            .hash()
            .matches(&ApiKeySecret::parse(a.expose()).unwrap().hash().0));
        assert!(!a.hash().matches(&b.hash().0));
    }

    #[test]
    fn base62_of_max_fits_width() {
        assert_eq!(base62_fixed([0xff; 32]).len(), BODY_LEN);
        assert_eq!(base62_fixed([0; 32]), "0".repeat(BODY_LEN));
    }

    #[test]
    fn rejects_malformed_keys() {
        assert!(ApiKeySecret::parse("pk_live_short").is_none());
        assert!(ApiKeySecret::parse(&format!("sk_live_{}", "a".repeat(43))).is_none());
        assert!(ApiKeySecret::parse(&format!("pk_live_{}!", "a".repeat(42))).is_none());
    }
}
