//! SignalRegistration end to end: the sandbox's signal-cli texts the code through sandbox
//! Telnyx, the signed webhook reaches the api, and the api resolves the workflow's durable
//! promise. A relay between sandbox and api lets the tests delay, drop and repeat webhooks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::sandbox::{next_webhook, start_receiver, Received};
use common::stack::Stack;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;

/// The next relayed SMS webhook that carries a Signal code.
async fn next_code_sms(rx: &mut UnboundedReceiver<Received>) -> Received {
    loop {
        let hook = next_webhook(rx, 20).await;
        let body = String::from_utf8_lossy(&hook.body);
        if body.contains("message.received") && body.contains("Signal") {
            return hook;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn provisioning_ends_with_signal_registered() {
    // How long it takes is a benchmark figure (tests/bench_provisioning.rs), not asserted here.
    let stack = Stack::start(&[]).await;
    let user = stack.user("signal@example.com").await;
    stack.provision(user).await;
    let identity = stack
        .wait_signal(user, "registered", Duration::from_secs(30))
        .await;
    assert_eq!(identity.status, "active");
    let accounts = stack
        .sandbox
        .signal_accounts(&identity.phone_number.unwrap())
        .await;
    assert!(
        accounts.iter().any(|a| a["registered"] == true),
        "{accounts:?}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_delivered_twice_or_before_the_wait_registers_once() {
    let (relay, mut rx) = start_receiver().await;
    let stack = Stack::start_with_webhooks(&[], Some(&relay)).await;
    // signal-cli acts on the first register call but its answer is held past the client's
    // timeout: the code goes out, and is delivered, while the workflow is still inside its
    // register step (retrying it), before it starts waiting.
    stack
        .sandbox
        .fault(json!({"provider": "signal", "route": "/v1/register/*", "method": "POST", "kind": "timeout", "delay_ms": 3000, "count": 1}))
        .await;
    let user = stack.user("early@example.com").await;
    stack.provision(user).await;
    let hook = next_code_sms(&mut rx).await;
    assert_eq!(stack.forward(&hook, "/webhooks/telnyx").await, 200);
    assert_eq!(
        stack.forward(&hook, "/webhooks/telnyx").await,
        200,
        "a redelivery is acknowledged"
    );
    let identity = stack
        .wait_signal(user, "registered", Duration::from_secs(20))
        .await;
    // The code was taken by the workflow, not stored as an ordinary SMS, and only once.
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM incoming_sms WHERE to_number = $1")
        .bind(identity.phone_number.clone().unwrap())
        .fetch_one(&stack.db.pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_code_means_bounded_rounds_then_failed_until_an_operator_retries() {
    let (relay, mut rx) = start_receiver().await;
    let stack = Stack::start_with_webhooks(
        &[
            ("SIGNAL_CODE_TIMEOUT_SECS", "1"),
            ("SIGNAL_MAX_ROUNDS", "2"),
            ("SIGNAL_BACKOFF_MS", "100"),
        ],
        Some(&relay),
    )
    .await;
    let user = stack.user("nocode@example.com").await;
    stack.provision(user).await;
    // The codes are dropped: after two rounds the registration fails, the identity stays active.
    let identity = stack
        .wait_signal(user, "failed", Duration::from_secs(30))
        .await;
    assert_eq!(identity.status, "active");
    assert!(identity.signal_failure_reason.unwrap().contains("2 rounds"));
    while rx.try_recv().is_ok() {}

    let res = stack
        .admin_post(
            &format!("/v1/admin/identities/{}/retry", identity.id),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    let hook = next_code_sms(&mut rx).await;
    assert_eq!(stack.forward(&hook, "/webhooks/telnyx").await, 200);
    stack
        .wait_signal(user, "registered", Duration::from_secs(20))
        .await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_captcha_demand_waits_for_the_operators_token() {
    let stack = Stack::start(&[]).await;
    let res = stack
        .sandbox
        .http
        .put(format!("{}/_sandbox/signal/captcha", stack.sandbox.url))
        .json(&json!({"required": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let user = stack.user("captcha@example.com").await;
    stack.provision(user).await;
    let identity = stack
        .wait_signal(user, "captcha_required", Duration::from_secs(20))
        .await;
    let phone = identity.phone_number.clone().unwrap();

    // A code is not what it waits for; bad tokens are refused.
    let bad = stack
        .admin_post(
            &format!("/v1/admin/signal/{phone}/captcha"),
            json!({"token": ""}),
        )
        .await;
    assert_eq!(bad.status(), 400);
    let ok = stack
        .admin_post(
            &format!("/v1/admin/signal/{phone}/captcha"),
            json!({"token": "signalcaptcha://signal-hcaptcha.test"}),
        )
        .await;
    assert_eq!(ok.status(), 202, "{}", ok.text().await.unwrap());
    stack
        .wait_signal(user, "registered", Duration::from_secs(20))
        .await;
    // Nothing waits for a captcha any more.
    let late = stack
        .admin_post(
            &format!("/v1/admin/signal/{phone}/captcha"),
            json!({"token": "signalcaptcha://again"}),
        )
        .await;
    assert_eq!(late.status(), 409);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deprovisioning_during_a_registration_leaves_no_signal_account() {
    let stack = Stack::start(&[
        ("SIGNAL_CODE_TIMEOUT_SECS", "1"),
        ("SIGNAL_BACKOFF_MS", "100"),
    ])
    .await;
    // signal-cli is slow to answer the register call, so deprovisioning starts while it is in
    // flight, the race that once left a pending Signal account behind.
    let slow = stack
        .sandbox
        .fault(json!({"provider": "signal", "route": "/v1/register/*", "method": "POST", "kind": "slow", "delay_ms": 1000, "count": 1}))
        .await;
    let (user, identity) = stack
        .provisioned("racing@example.com", &["active"], Duration::from_secs(20))
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while stack.sandbox.fired(&slow).await == 0 {
        assert!(Instant::now() < deadline, "the register call never came");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(stack.deprovision(identity.id).await, 202);
    stack
        .wait_status(user, &["deleted"], Duration::from_secs(30))
        .await;

    // The registration notices the identity is gone and stops for good instead of registering
    // the released number again.
    let number = identity.phone_number.clone().unwrap();
    let path = format!("SignalRegistration/{}/status", number.replace('+', "%2B"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = stack.restate().call(&path).await;
        if status == "abandoned" {
            break;
        }
        assert!(Instant::now() < deadline, "registration still {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left = stack.sandbox.signal_accounts(&number).await;
    assert!(left.is_empty(), "signal account left: {left:?}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redeploy_with_other_settings_does_not_change_an_inflight_registration() {
    let (relay, mut rx) = start_receiver().await;
    // Codes go to the relay and are never forwarded: every round times out.
    let mut stack = Stack::start_with_webhooks(
        &[
            ("SIGNAL_CODE_TIMEOUT_SECS", "2"),
            ("SIGNAL_MAX_ROUNDS", "2"),
            ("SIGNAL_BACKOFF_MS", "100"),
        ],
        Some(&relay),
    )
    .await;
    let user = stack.user("redeploy@example.com").await;
    stack.provision(user).await;
    // Round 1 asked for a code: the registration is in flight.
    next_code_sms(&mut rx).await;

    // Redeployed with one round only. The in-flight registration keeps the two rounds it
    // started with: a second code is asked for, and it fails after two rounds.
    stack.kill_workflows();
    stack.env.insert("SIGNAL_MAX_ROUNDS".into(), "1".into());
    stack.start_workflows().await;
    next_code_sms(&mut rx).await;
    let identity = stack
        .wait_signal(user, "failed", Duration::from_secs(30))
        .await;
    let reason = identity.signal_failure_reason.unwrap();
    assert!(reason.contains("after 2 rounds"), "{reason}");
    stack.stop().await;
}

/// A registration's checks that it is still wanted (`pending` over `pending`) only read: no
/// new row version, so no synchronous commit to flush. A state that moves is written, and
/// once deprovisioning has marked the identity, nothing is written and the answer is no.
#[tokio::test(flavor = "multi_thread")]
async fn signal_state_checks_write_only_what_changes() {
    use db::status::{IdentityStatus, SignalStatus};
    let test_db = common::db::TestDb::new().await;
    let pool = &test_db.pool;
    let email = domain::Email::parse("checks@example.com").unwrap();
    let user = db::users::insert(pool, uuid::Uuid::new_v4(), &email, "x", None)
        .await
        .unwrap();
    let id = db::identities::begin_provisioning(pool, user.id, "basic")
        .await
        .unwrap()
        .identity
        .id;
    let number = "+15550100999";
    db::identities::set_number(pool, id, Some(number), Some("num_1"))
        .await
        .unwrap();
    db::identities::set_signal(pool, id, SignalStatus::Pending, None)
        .await
        .unwrap();
    // The row's version: any write, even of the same values, makes a new one.
    let version = || async {
        let (v,): (String,) = sqlx::query_as("SELECT xmin::text FROM identities WHERE id = $1")
            .bind(id)
            .fetch_one(pool)
            .await
            .unwrap();
        v
    };
    let identity = || async { db::identities::find(pool, id).await.unwrap().unwrap() };
    let wanted =
        |status, reason| db::identities::set_signal_if_wanted(pool, id, number, status, reason);

    let before = version().await;
    assert!(wanted(SignalStatus::Pending, None).await.unwrap());
    assert!(wanted(SignalStatus::Pending, None).await.unwrap());
    assert_eq!(version().await, before, "an unchanged state was written");

    // Another number (the identity moved) is not wanted and writes nothing.
    assert!(!db::identities::set_signal_if_wanted(
        pool,
        id,
        "+15550100000",
        SignalStatus::Registered,
        None
    )
    .await
    .unwrap());
    assert_eq!(version().await, before);

    // A state that moves is written: the reason alone, then the status.
    assert!(wanted(SignalStatus::Pending, Some("round 2"))
        .await
        .unwrap());
    assert_eq!(
        identity().await.signal_failure_reason.as_deref(),
        Some("round 2")
    );
    assert!(wanted(SignalStatus::Registered, None).await.unwrap());
    let i = identity().await;
    assert_eq!(i.signal_status, SignalStatus::Registered);
    assert_eq!(i.signal_failure_reason, None);
    assert_ne!(version().await, before);

    // Deprovisioning's mark: neither a check nor a change is wanted any more.
    db::identities::set_status(pool, id, IdentityStatus::Deprovisioning, None)
        .await
        .unwrap();
    let marked = version().await;
    assert!(!wanted(SignalStatus::Registered, None).await.unwrap());
    assert!(!wanted(SignalStatus::Failed, Some("late")).await.unwrap());
    assert_eq!(version().await, marked);
    assert_eq!(identity().await.signal_status, SignalStatus::Registered);
    test_db.drop().await;
}
