//! Payment failure and recovery seen from Dex: subscribe and pay in the sandbox → identity
//! active; payment fails → the proxy answers 402 and the communication endpoints 409; payment
//! recovered → both work again. Real restate-server, workflows process, api, proxy, sandbox.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod billing_support;
mod common;
mod proxy_support;

use billing_support::{billing_stack, eventually, Stack};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

async fn identity_status(stack: &Stack, token: &str) -> Option<String> {
    let v: Value = stack
        .api_get("/v1/identity", token)
        .await
        .json()
        .await
        .ok()?;
    v["status"].as_str().map(str::to_owned)
}

/// Waits until the user's Workspace account at the sandbox has `suspended == want`.
async fn workspace_suspended(stack: &Stack, user_id: &str, want: bool) {
    eventually("workspace user state", WAIT, || async {
        let resources: Value = reqwest::get(format!("{}/_sandbox/resources", stack.sandbox.url))
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let users = resources["google"]["users"].as_array()?.clone();
        users
            .iter()
            .any(|u| u["owner"] == user_id && u["suspended"] == want)
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_payment_stops_ai_and_communication_and_recovery_restores_both() {
    let stack = billing_stack(true).await;
    let s = stack.register("suspend@example.com").await;
    let sub = stack.subscribe_and_pay(&s, "basic").await;
    eventually("identity active", WAIT, || async {
        (identity_status(&stack, &s.access).await.as_deref() == Some("active")).then_some(())
    })
    .await;

    let sandbox: std::net::SocketAddr = stack
        .sandbox
        .url
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let proxy =
        proxy_support::RunningProxy::start(proxy_support::options(&stack.db.url, sandbox)).await;
    let key = stack
        .api_post("/v1/api-keys", &s.access, json!({"name": "dex"}))
        .await;
    let key = key.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = reqwest::Client::new();
    let chat = || {
        client
            .post(proxy.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&proxy_support::chat_body("gpt-4o-mini", false))
            .send()
    };
    let inbox = || stack.api_get("/v1/email/inbox", &s.access);
    eventually("proxy serving the new key", WAIT, || async {
        (chat().await.ok()?.status() == 200).then_some(())
    })
    .await;
    assert_eq!(inbox().await.status(), 200);

    stack
        .control(&format!("/subscriptions/{sub}/payment_failed"), json!({}))
        .await;
    eventually("identity suspended", WAIT, || async {
        (identity_status(&stack, &s.access).await.as_deref() == Some("suspended")).then_some(())
    })
    .await;
    let refused = eventually("proxy refusing", WAIT, || async {
        let r = chat().await.ok()?;
        (r.status() == 402).then_some(r)
    })
    .await;
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap_or_default().len() > 10,
        "{body}"
    );
    assert_eq!(inbox().await.status(), 409);
    // The Workspace user is suspended too (the step after access is stopped).
    workspace_suspended(&stack, &s.user_id, true).await;

    stack
        .control(
            &format!("/subscriptions/{sub}/payment_succeeded"),
            json!({}),
        )
        .await;
    eventually("identity active again", WAIT, || async {
        (identity_status(&stack, &s.access).await.as_deref() == Some("active")).then_some(())
    })
    .await;
    eventually("proxy serving again", WAIT, || async {
        (chat().await.ok()?.status() == 200).then_some(())
    })
    .await;
    assert_eq!(inbox().await.status(), 200);
    workspace_suspended(&stack, &s.user_id, false).await;
    proxy.stop().await;
    stack.stop().await;
}
