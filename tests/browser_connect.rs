//! The connect flow in a real browser: Debian's Chromium driven by Playwright
//! (tests/python/browser_connect.py) against the whole stack — api, sandbox, restate-server,
//! the workflows process and a proxy. A new user goes from Dex's authorize URL to a code at
//! Dex's loopback callback in one browser session, then Dex exchanges it and makes an AI
//! request with the official OpenAI SDK; an existing subscriber connects a second instance;
//! Cancel at consent; a declined card; a failed provisioning retried from the page; and
//! `poindexter connect` (Dex's side, as the README tour runs it) approved in the browser.
//! Screenshots of every page at 1280 and 390 px land in $POINDEXTER_SCREENSHOTS (default: a
//! folder in the temp dir), for people to look at.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod proxy_support;

use common::stack::Stack;
use proxy_support as ps;

#[tokio::test]
async fn a_new_user_connects_dex_in_one_browser_session() {
    let python = std::env::var("POINDEXTER_PYTHON")
        .expect("POINDEXTER_PYTHON must name the venv's Python (scripts/setup makes .venv)");
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Chromium is missing: scripts/setup installs Debian's chromium"
    );
    let stack = Stack::start(&[]).await;
    let sandbox: std::net::SocketAddr = stack
        .sandbox
        .url
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let proxy = ps::RunningProxy::start(ps::options(&stack.db.url, sandbox)).await;
    let shots = std::env::var("POINDEXTER_SCREENSHOTS").unwrap_or_else(|_| {
        std::env::temp_dir()
            .join("poindexter-screenshots")
            .to_string_lossy()
            .into_owned()
    });
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/browser_connect.py"
    );
    let out = tokio::process::Command::new(&python)
        .arg(script)
        .arg(&stack.api)
        .arg(format!("http://{}", proxy.addr))
        .arg(&stack.sandbox.url)
        .arg(&shots)
        .arg(env!("CARGO_BIN_EXE_poindexter"))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser flow failed:\n{stdout}\n{stderr}"
    );
    assert_eq!(stdout.matches("PASS ").count(), 5, "{stdout}");
    eprintln!("screenshots in {shots}");

    // The proxy's usage is flushed when it stops; the AI request Dex made is attributed to
    // its instance's grant.
    proxy.stop().await;
    let attributed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM usage_events e JOIN oauth_grants g ON g.id = e.api_key_id",
    )
    .fetch_one(&stack.db.pool)
    .await
    .unwrap();
    assert!(
        attributed >= 1,
        "the AI request was not attributed to the instance"
    );
    stack.stop().await;
}
