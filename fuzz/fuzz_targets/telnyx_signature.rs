//! Telnyx's webhook check (Ed25519 over `timestamp|body`): any signature, timestamp, body and
//! clock is refused or accepted without a panic, and a real signature always verifies.
#![no_main]

use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    if input.len() < 40 {
        return;
    }
    let (head, rest) = input.split_at(40);
    let seed: [u8; 32] = head[..32].try_into().unwrap();
    let now = i64::from_le_bytes(head[32..].try_into().unwrap());
    let key = SigningKey::from_bytes(&seed);
    let public = key.verifying_key().to_bytes();
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.splitn(3, '\u{0}');
    let signature = parts.next().unwrap_or_default();
    let timestamp = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default().as_bytes();
    let _ = providers::telnyx::webhook::verify_webhook(&public, signature, timestamp, body, now);
    // Arbitrary bytes as the public key too (most are not valid points).
    let _ = providers::telnyx::webhook::verify_webhook(&seed, signature, timestamp, body, now);

    // A genuine signature of a well-formed event at the current time verifies.
    let ts = now.to_string();
    let event = br#"{"data":{"event_type":"message.received","id":"e","payload":{}}}"#;
    let mut signed = ts.as_bytes().to_vec();
    signed.push(b'|');
    signed.extend_from_slice(event);
    let sig = base64::engine::general_purpose::STANDARD.encode(key.sign(&signed).to_bytes());
    providers::telnyx::webhook::verify_webhook(&public, &sig, &ts, event, now)
        .expect("a genuine signature verifies");
});
