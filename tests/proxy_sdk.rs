//! The official OpenAI and Anthropic Python SDKs as clients of the proxy (tests/python/
//! proxy_sdk.py): chat streamed and not, Anthropic messages, a Claude model through the
//! OpenAI SDK with tools, embeddings, model lists, errors. Then every served request must have
//! exactly one usage event with the upstream's own token counts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod proxy_support;

use common::db::TestDb;
use proxy_support as ps;

/// The Python with `openai` and `anthropic` installed (scripts/setup makes .venv).
fn python() -> String {
    std::env::var("POINDEXTER_PYTHON").expect(
        "POINDEXTER_PYTHON must name a Python with the openai and anthropic SDKs \
         (run scripts/setup, then export POINDEXTER_PYTHON=$PWD/.venv/bin/python)",
    )
}

#[tokio::test]
async fn official_sdks_work_through_the_proxy_and_every_request_is_metered() {
    let python = python();
    let db = TestDb::new().await;
    let sandbox = ps::start_sandbox().await;
    let user = ps::user(&db.pool, Some(("basic", "active")), None).await;
    let proxy = ps::RunningProxy::start(ps::options(&db.url, sandbox)).await;

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/proxy_sdk.py");
    let base = format!("http://{}", proxy.addr);
    let key = user.key.clone();
    let out = tokio::process::Command::new(&python)
        .arg(script)
        .arg(&base)
        .arg(&key)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "SDK checks failed:\n{stdout}\n{stderr}"
    );
    let metered: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("METERED "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    // Stopping the proxy writes every queued usage event before it returns: after it, the
    // count is final and can be compared exactly.
    proxy.stop().await;
    let rows = ps::usage(&db.pool, user.id).await;
    assert_eq!(rows.len(), metered, "one usage event per request: {stdout}");
    for r in &rows {
        assert!(
            !r.estimated,
            "{r:?}: the upstream reported usage, nothing to estimate"
        );
        assert_eq!(r.status_code, 200, "{r:?}");
        assert!(r.input_tokens > 0 && r.cost_microdollars > 0, "{r:?}");
        if !r.model.starts_with("text-embedding") {
            assert!(r.output_tokens == 16 || r.output_tokens == 3, "{r:?}");
        }
    }
    assert!(rows.iter().any(|r| r.provider == "anthropic"));
    assert!(rows.iter().any(|r| r.provider == "openai"));
    db.drop().await;
}
