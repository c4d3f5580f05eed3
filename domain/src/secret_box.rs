//! Secrets at rest: AES-256-GCM with a random nonce (`nonce || ciphertext`), and secrets derived
//! deterministically from the key so a retried step reproduces them without journaling them.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

#[derive(Clone)]
pub struct SecretBox {
    key: [u8; 32],
}

#[derive(Debug, thiserror::Error)]
#[error("could not decrypt: wrong key or corrupted data")]
pub struct DecryptError;

const NONCE_LEN: usize = 12;

impl SecretBox {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let cipher = Aes256Gcm::new((&self.key).into());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut out = nonce.to_vec();
        // Encryption with a valid key and nonce cannot fail.
        out.extend(
            cipher
                .encrypt(&Nonce::from(nonce), plaintext)
                .unwrap_or_default(),
        );
        out
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, DecryptError> {
        if sealed.len() < NONCE_LEN {
            return Err(DecryptError);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| DecryptError)?;
        Aes256Gcm::new((&self.key).into())
            .decrypt(&Nonce::from(nonce), ct)
            .map_err(|_| DecryptError)
    }

    /// A strong password derived from the key and `purpose` (HMAC-SHA256): the same inputs give
    /// the same password, so a step that runs twice sets the same one.
    pub fn derive_password(&self, purpose: &str) -> String {
        // HMAC accepts keys of any length, so this cannot fail for a 32-byte key.
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.key) else {
            return String::new();
        };
        mac.update(purpose.as_bytes());
        let digest = mac.finalize().into_bytes();
        // Mixed classes so provider password policies accept it.
        format!(
            "Px9!{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..24])
        )
    }
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::SecretBox;

    #[test]
    fn round_trips_and_detects_tampering() {
        let b = SecretBox::new([7; 32]);
        let sealed = b.seal(b"hunter2 and more");
        assert_eq!(b.open(&sealed).unwrap(), b"hunter2 and more");
        assert_ne!(b.seal(b"x"), b.seal(b"x"), "nonces differ");
        let mut bad = sealed.clone();
        bad[15] ^= 1;
        assert!(b.open(&bad).is_err());
        assert!(SecretBox::new([8; 32]).open(&sealed).is_err());
    }

    #[test]
    fn derived_passwords_are_stable_and_distinct() {
        let b = SecretBox::new([7; 32]);
        assert_eq!(b.derive_password("a"), b.derive_password("a"));
        assert_ne!(b.derive_password("a"), b.derive_password("b"));
        assert_ne!(
            b.derive_password("a"),
            SecretBox::new([9; 32]).derive_password("a")
        );
        assert!(b.derive_password("a").len() >= 30);
    }
}
