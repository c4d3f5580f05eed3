//! Stripe's webhook signature scheme: `Stripe-Signature: t=<unix>,v1=<hex>` where v1 is
//! HMAC-SHA256 of `"{t}.{body}"` keyed with the endpoint secret (`whsec_…`, used as-is).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Stripe's default tolerance between the signed timestamp and now.
pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing or malformed Stripe-Signature header")]
    Malformed,
    #[error("the signature's timestamp is outside the tolerance")]
    Stale,
    #[error("no v1 signature matches the payload")]
    Mismatch,
}

fn mac(secret: &str, t: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The header value Stripe would send for `body` signed at `t`.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let sig = hex::encode(mac(secret, t, body).finalize().into_bytes());
    format!("t={t},v1={sig}")
}

/// Verifies `header` for `body`; any one matching v1 signature suffices (Stripe sends several
/// while a secret is being rolled).
pub fn verify(
    header: &str,
    body: &[u8],
    secret: &str,
    now: i64,
    tolerance: i64,
) -> Result<(), SignatureError> {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if sigs.is_empty() {
        return Err(SignatureError::Malformed);
    }
    // abs_diff: a timestamp far from now (`t=-9223372036854775808`) must be stale, not an
    // overflow panic (found by fuzz/stripe_signature).
    if now.abs_diff(t) > tolerance.max(0) as u64 {
        return Err(SignatureError::Stale);
    }
    let expected = mac(secret, t, body).finalize().into_bytes();
    if sigs
        .iter()
        .any(|s| bool::from(s.as_slice().ct_eq(&expected[..])))
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_at_the_ends_of_i64_is_stale() {
        for t in [i64::MIN, i64::MAX] {
            let h = format!("t={t},v1=00");
            assert_eq!(
                verify(&h, b"{}", "s", 1_000, 300),
                Err(SignatureError::Stale)
            );
            assert!(verify(&h, b"{}", "s", i64::MIN, 300).is_err());
        }
    }

    #[test]
    fn round_trip_and_rejections() {
        let body = br#"{"id":"evt_1"}"#;
        let h = sign("whsec_x", 1_000, body);
        assert_eq!(verify(&h, body, "whsec_x", 1_100, 300), Ok(()));
        assert_eq!(
            verify(&h, body, "whsec_y", 1_100, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&h, b"{}", "whsec_x", 1_100, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&h, body, "whsec_x", 1_400, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify("v1=00", body, "whsec_x", 1_000, 300),
            Err(SignatureError::Malformed)
        );
        let rolled = format!("{h},v1={}", "ab".repeat(32));
        assert_eq!(verify(&rolled, body, "whsec_x", 1_000, 300), Ok(()));
    }

    #[test]
    fn matches_stripes_documented_construction() {
        // HMAC-SHA256("whsec_test_secret", "12345.payload"), computed independently with
        // `openssl dgst -sha256 -hmac`.
        let h = sign("whsec_test_secret", 12345, b"payload");
        assert_eq!(h, format!("t=12345,v1={}", EXPECTED));
    }
    const EXPECTED: &str = "d8a286dd972656da1a0951761dca1f1da2a7fa5777155629d5a54583d66a009d";
}
