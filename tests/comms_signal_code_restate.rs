//! The Telnyx webhook handing a Signal code to the real Restate: restate-server and the
//! workflows endpoint as real processes, the api in-process. A code for a number whose Signal
//! registration is pending becomes one `SignalRegistration/{number}/submit_code` invocation
//! (idempotency key = the Telnyx event id), is not stored as SMS, and a redelivery changes
//! nothing. (The registration itself completing is the provisioning saga's test.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use common::api::{api_env, TestApi};
use common::comms::provider_env;
use common::ports::free_port;
use common::process::{wait_healthy, Proc};
use common::restate::Restate;
use common::sandbox::start_sandbox;
use ed25519_dalek::{Signer, SigningKey};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use uuid::Uuid;

fn signed_code_sms(event_id: &str, to: &str) -> (String, String, String) {
    let body = json!({"data": {
        "record_type": "event", "id": event_id, "event_type": "message.received",
        "payload": {
            "id": format!("msg-{event_id}"), "direction": "inbound", "type": "SMS",
            "from": {"phone_number": "+18335550142"},
            "to": [{"phone_number": to}],
            "text": "Your Signal code: 246-810. Do not share this code",
        }
    }})
    .to_string();
    let ts = chrono::Utc::now().timestamp().to_string();
    let sig =
        SigningKey::from_bytes(&config::DEV_TELNYX_SEED).sign(format!("{ts}|{body}").as_bytes());
    (
        body,
        base64::engine::general_purpose::STANDARD.encode(sig.to_bytes()),
        ts,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_for_a_pending_registration_becomes_one_submit_code_invocation() {
    let restate = Restate::start().await;
    let sb = start_sandbox(&[]).await;
    let mut env = provider_env(&sb);
    env.push(("RESTATE_INGRESS_URL".into(), restate.ingress.clone()));
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let api = TestApi::start_with(&refs).await;

    let port = free_port();
    let mut wenv = api_env(&api.db.url);
    wenv.extend(env.iter().cloned());
    wenv.insert("WORKFLOWS_ADDR".into(), format!("127.0.0.1:{port}"));
    let workflows = Proc::poindexter("workflows", &wenv);
    wait_healthy(
        &format!("http://127.0.0.1:{port}/healthz"),
        Duration::from_secs(30),
    )
    .await;
    restate.register(&format!("http://127.0.0.1:{port}")).await;

    let number = "+15550100042";
    let pool = &api.db.pool;
    let session = api.register("ada@example.com").await;
    let user_id: Uuid = session.user_id.parse().unwrap();
    let identity = db::identities::begin_provisioning(pool, user_id, "basic")
        .await
        .unwrap()
        .identity;
    db::identities::set_number(pool, identity.id, Some(number), Some("num-1"))
        .await
        .unwrap();
    db::identities::set_signal(pool, identity.id, db::status::SignalStatus::Pending, None)
        .await
        .unwrap();

    let deliver = |event_id: &str| {
        let (body, signature, ts) = signed_code_sms(event_id, number);
        let req = api
            .client
            .post(api.url("/webhooks/telnyx"))
            .header("content-type", "application/json")
            .header("telnyx-signature-ed25519", signature)
            .header("telnyx-timestamp", ts)
            .body(body);
        async move { req.send().await.unwrap() }
    };
    let started = Instant::now();
    let res = deliver("ev-code-1").await;
    // Telnyx gives a webhook 2 s; the handler bounds its hand-over to Restate to stay inside.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered after Telnyx's 2 s budget: {:?}",
        started.elapsed()
    );
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["result"], "signal_code");
    assert!(db::webhook_events::seen(pool, "telnyx", "ev-code-1")
        .await
        .unwrap());
    assert!(db::incoming_sms::list_for_number(pool, number)
        .await
        .unwrap()
        .is_empty());

    let query = "SELECT target, status, idempotency_key FROM sys_invocation \
                 WHERE target LIKE 'SignalRegistration/%' ORDER BY created_at";
    let rows = completed_submissions(&restate, query, 1).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        rows[0]["target"],
        format!("SignalRegistration/{number}/submit_code")
    );
    assert_eq!(rows[0]["status"], "completed", "{rows:?}");
    assert_eq!(rows[0]["idempotency_key"], "ev-code-1");

    // Telnyx delivers the same event again: acknowledged, nothing new anywhere.
    let again = deliver("ev-code-1").await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap()["result"], "duplicate");
    // Then a new code for the same number. Its invocation has the same key, so Restate's same
    // partition applies it after anything the duplicate could have started: once it shows
    // completed, the count below is final.
    let later = deliver("ev-code-2").await;
    assert_eq!(later.status(), StatusCode::OK);
    assert_eq!(
        later.json::<Value>().await.unwrap()["result"],
        "signal_code"
    );
    let rows = completed_submissions(&restate, query, 2).await;
    let keys: Vec<&str> = rows
        .iter()
        .map(|r| r["idempotency_key"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(keys, ["ev-code-1", "ev-code-2"], "{rows:?}");
    assert!(db::incoming_sms::list_for_number(pool, number)
        .await
        .unwrap()
        .is_empty());
    // The workflows process first: its Signal receiver, started by the webhook, keeps
    // connecting to the database, and dropping it waits for every connection to end.
    drop(workflows);
    api.stop().await;
}

/// The rows of `query` once at least `n` of them are completed invocations (20 s at most).
async fn completed_submissions(restate: &Restate, query: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = restate.query(query).await;
        if rows.iter().filter(|r| r["status"] == "completed").count() >= n {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "{n} completed submit_code invocations expected: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
