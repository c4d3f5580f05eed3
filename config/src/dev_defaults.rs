//! Development defaults for `poindexter dev`: every unset variable gets a value that points at
//! the local sandbox. The values are fixed (not random) so a second `dev` can read the data the
//! first one encrypted. An explicitly set variable always wins.

use crate::env::Source;
use base64::Engine as _;

pub struct DevDefault {
    pub name: &'static str,
    pub value: String,
}

const DEV_ENCRYPTION_KEY: &str = "6465762d6f6e6c792d656e6372797074696f6e2d6b65792d3332627974657321";
/// A fixed 32-byte seed; the sandbox signs Telnyx webhooks with it in dev (and when
/// `SANDBOX_TELNYX_SIGNING_KEY` is unset).
pub const DEV_TELNYX_SEED: [u8; 32] = *b"dev-only-telnyx-signing-seed-32b";

/// Returns the variables that were unset together with the value dev gives them.
pub fn apply_dev_defaults(src: &dyn Source) -> Vec<DevDefault> {
    let is_set = |n: &str| src.get(n).is_some_and(|v| !v.trim().is_empty());
    let api_addr = src
        .get("API_ADDR")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let sandbox_addr = src
        .get("SANDBOX_ADDR")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "127.0.0.1:4010".into());
    let sandbox = format!("http://{sandbox_addr}");
    let b64 = base64::engine::general_purpose::STANDARD;

    // The Telnyx public key defaults to the public half of whichever signing seed is in force,
    // so the sandbox → api webhook loop closes even when only the seed was set explicitly.
    let seed = src
        .get("SANDBOX_TELNYX_SIGNING_KEY")
        .and_then(|v| b64.decode(v.trim()).ok())
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .unwrap_or(DEV_TELNYX_SEED);
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();

    let candidates: Vec<(&'static str, String)> = vec![
        (
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/poindexter".into(),
        ),
        ("RESTATE_INGRESS_URL", "http://127.0.0.1:8080".into()),
        ("RESTATE_ADMIN_URL", "http://127.0.0.1:9070".into()),
        ("ENCRYPTION_KEY", DEV_ENCRYPTION_KEY.into()),
        (
            "JWT_SECRET",
            "dev-only-jwt-secret-not-for-production-use".into(),
        ),
        ("ADMIN_TOKEN", "dev-admin-token-0123456789".into()),
        ("PUBLIC_BASE_URL", format!("http://{api_addr}")),
        ("STRIPE_SECRET_KEY", "sk_test_sandbox".into()),
        ("STRIPE_WEBHOOK_SECRET", "whsec_sandbox_dev".into()),
        ("STRIPE_API_BASE", format!("{sandbox}/stripe")),
        ("STRIPE_PRICE_BASIC", "price_basic_sandbox".into()),
        ("STRIPE_PRICE_PRO", "price_pro_sandbox".into()),
        ("GOOGLE_API_BASE", format!("{sandbox}/google")),
        ("GOOGLE_TOKEN_URL", format!("{sandbox}/google/token")),
        ("GOOGLE_ADMIN_EMAIL", "admin@poindexter.ai".into()),
        (
            "GOOGLE_SERVICE_ACCOUNT_JSON",
            crate::dev_google::dev_service_account_json(&format!("{sandbox}/google/token")),
        ),
        ("TELNYX_API_KEY", "KEY_sandbox_dev".into()),
        ("TELNYX_API_BASE", format!("{sandbox}/telnyx")),
        ("TELNYX_MESSAGING_PROFILE_ID", "mp_sandbox_dev".into()),
        ("SANDBOX_TELNYX_SIGNING_KEY", b64.encode(seed)),
        ("TELNYX_PUBLIC_KEY", b64.encode(public)),
        ("SIGNAL_CLI_URL", format!("{sandbox}/signal")),
        ("ANTHROPIC_API_KEY", "sk-ant-sandbox".into()),
        ("ANTHROPIC_BASE_URL", format!("{sandbox}/anthropic")),
        ("OPENAI_API_KEY", "sk-sandbox".into()),
        ("OPENAI_BASE_URL", format!("{sandbox}/openai/v1")),
        ("SANDBOX_WEBHOOK_BASE", format!("http://{api_addr}")),
    ];
    candidates
        .into_iter()
        .filter(|(name, _)| !is_set(name))
        .map(|(name, value)| DevDefault { name, value })
        .collect()
}
