//! The random values of one connect attempt: the PKCE pair (RFC 7636, S256 only), the state,
//! and a Dex instance id. All come from the operating system's generator, since they guard a
//! login.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;

/// `n` random bytes as base64url without padding: only unreserved characters, so the value
/// goes into a URL or a form without escaping.
fn random_urlsafe(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The verifier stays here until the token request; only the challenge goes to the browser.
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn generate() -> Self {
        // 48 bytes make 64 characters, inside RFC 7636's 43..=128.
        let verifier = random_urlsafe(48);
        let challenge = challenge_for(&verifier);
        Self {
            verifier,
            challenge,
        }
    }
}

/// S256: BASE64URL-NOPAD(SHA256(ASCII(verifier))), computed exactly as the server checks it.
pub fn challenge_for(verifier: &str) -> String {
    handlers::oauth::pkce::challenge_of(verifier)
}

/// 32 random bytes: the redirect must echo this, which ties it to this attempt (CSRF).
pub fn state() -> String {
    random_urlsafe(32)
}

/// A Dex instance id, `dex-` and 8 lowercase hex digits.
pub fn client_id() -> String {
    let mut bytes = [0u8; 4];
    OsRng.fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("dex-{hex}")
}

pub fn is_client_id(id: &str) -> bool {
    id.strip_prefix("dex-").is_some_and(|hex| {
        hex.len() == 8 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_matches_rfc7636_appendix_b() {
        // Appendix B's verifier is the base64url of its 32 listed octets.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            challenge_for(verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn a_generated_pair_is_valid_and_fresh() {
        let a = Pkce::generate();
        let b = Pkce::generate();
        assert_eq!(a.verifier.len(), 64);
        // RFC 7636 §4.1: unreserved characters only.
        assert!(a
            .verifier
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-._~".contains(&c)));
        assert_eq!(a.challenge, challenge_for(&a.verifier));
        assert_eq!(a.challenge.len(), 43);
        assert_ne!(a.verifier, b.verifier);
        assert_ne!(state(), state());
        assert_eq!(state().len(), 43);
    }

    #[test]
    fn client_ids_have_the_dex_form() {
        let id = client_id();
        assert!(is_client_id(&id), "{id}");
        assert!(is_client_id("dex-a1b2c3d4"));
        for bad in [
            "dex-A1B2C3D4",
            "dex-a1b2c3d",
            "dex-a1b2c3d4e",
            "dax-a1b2c3d4",
            "dex-a1b2c3dg",
            "",
        ] {
            assert!(!is_client_id(bad), "{bad}");
        }
    }
}
