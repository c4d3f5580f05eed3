//! The `Stripe-Signature` parser: any header, body, secret and clock is refused or accepted
//! without a panic, and what `sign` makes always verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    if input.len() < 16 {
        return;
    }
    let (clock, rest) = input.split_at(16);
    let now = i64::from_le_bytes(clock[..8].try_into().unwrap());
    let tolerance = i64::from_le_bytes(clock[8..].try_into().unwrap());
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.splitn(3, '\u{0}');
    let header = parts.next().unwrap_or_default();
    let secret = parts.next().unwrap_or("whsec_fuzz");
    let body = parts.next().unwrap_or_default().as_bytes();
    let _ = billing::signature::verify(header, body, secret, now, tolerance);
    let _ = billing::signature::verify(header, body, secret, now, billing::signature::TOLERANCE_SECS);
    let signed = billing::signature::sign(secret, now, body);
    assert_eq!(
        billing::signature::verify(&signed, body, secret, now, billing::signature::TOLERANCE_SECS),
        Ok(())
    );
});
