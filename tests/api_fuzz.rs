//! Schemathesis against the api's own `/openapi.json`: every operation, generated valid and
//! invalid inputs, a bounded number of examples each (about a minute and a half here), with a
//! real paying user's session and the admin token. No answer may be a 5xx, and every answer
//! must be one the schema documents, with the documented content type and body.
//! tests/python/api_fuzz.py drives it; FUZZ_MAX_EXAMPLES / FUZZ_MAX_SECONDS widen a run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod ops_support;

use common::api::ADMIN_TOKEN;
use common::dev::DevStack;
use ops_support::paid_user;
use std::process::Command;

#[tokio::test(flavor = "multi_thread")]
async fn every_operation_answers_within_its_schema_and_never_with_5xx() {
    let mut dev = DevStack::start(&[]).await;
    let user = paid_user(&dev.api, "fuzzed@example.com").await;
    let python = std::env::var("POINDEXTER_PYTHON").unwrap_or_else(|_| ".venv/bin/python".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/api_fuzz.py");
    let api = dev.api.clone();
    let token = user.token.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .arg(&api)
            .env("FUZZ_BEARER", token)
            .env("FUZZ_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("NO_COLOR", "1")
            .output()
            .expect("python with schemathesis (scripts/setup installs it)")
    })
    .await
    .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The run covered the schema: schemathesis names how many operations it tested.
    assert!(report.contains("operations"), "{report}");
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{report}"
    );
    dev.stop();
    dev.clean_up().await;
}
