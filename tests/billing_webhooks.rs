//! Stripe webhooks through the real sandbox, the api and a real restate-server: subscribe →
//! pay in the sandbox → signed webhooks → subscription active and provisioning handed to
//! Restate; duplicates, replays and reordered deliveries change the world once; a bad or
//! stale signature changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod billing_support;
mod common;

use billing_support::{billing_stack, eventually, Stack, PRICE_PRO, WEBHOOK_SECRET};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

async fn webhook_count(stack: &Stack) -> i64 {
    db::webhook_events::count(&stack.db.pool, "stripe")
        .await
        .unwrap()
}

async fn post_webhook(stack: &Stack, body: &str, signature: Option<&str>) -> reqwest::Response {
    let mut req = stack
        .http
        .post(format!("{}/webhooks/stripe", stack.api))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(s) = signature {
        req = req.header("stripe-signature", s);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn subscribe_pay_and_the_subscription_is_active_with_provisioning_handed_to_restate() {
    let stack = billing_stack(true).await;
    let s = stack.register("payer@example.com").await;

    // Before paying there is no subscription.
    let res = stack.api_get("/v1/billing/subscription", &s.access).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    stack.subscribe_and_pay(&s, "basic").await;

    let sub: Value = stack
        .api_get("/v1/billing/subscription", &s.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sub["plan"], "basic");
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["included_tokens"], 5_000_000);
    // Billing periods are anchored to calendar months, like the usage they bill.
    let next = domain::Month::containing(chrono::Utc::now().date_naive()).next();
    let end: chrono::DateTime<chrono::Utc> =
        sub["current_period_end"].as_str().unwrap().parse().unwrap();
    assert_eq!(end, db::usage::bounds(next).0, "{sub}");

    // The three events arrived and were recorded once each.
    assert_eq!(webhook_count(&stack).await, 3);
    // Restate accepted exactly one ProvisionIdentity run for this user's identity.
    let user: uuid::Uuid = s.user_id.parse().unwrap();
    let identity = db::identities::find_by_user(&stack.db.pool, user)
        .await
        .unwrap()
        .unwrap();
    let target = format!(
        "ProvisionIdentity/{}-g{}/run",
        identity.id, identity.generation
    );
    let runs = eventually("provisioning invocation", WAIT, || async {
        let v = stack.invocations("ProvisionIdentity/").await;
        (!v.is_empty()).then_some(v)
    })
    .await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].0, target);

    // The sandbox holds one customer (ours) and one active subscription with the base price
    // and both metered overage prices.
    let r = stack.stripe_resources().await;
    assert_eq!(r["customers"].as_array().unwrap().len(), 1);
    let subs = r["subscriptions"].as_array().unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0]["status"], "active");
    assert_eq!(subs[0]["items"]["data"].as_array().unwrap().len(), 3);
    assert_eq!(
        subs[0]["customer"],
        stack.customer_of(&s.user_id).await.as_str()
    );

    // Subscribing again while active is refused; the portal works now that a customer exists.
    let again = stack
        .api_post("/v1/billing/subscribe", &s.access, json!({"plan": "pro"}))
        .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let portal = stack
        .api_post("/v1/billing/portal", &s.access, json!({}))
        .await;
    assert_eq!(portal.status(), StatusCode::OK);
    let url = portal.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        url.starts_with(&format!("{}/stripe/", stack.sandbox.url)),
        "{url}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_subscribe_calls_create_one_stripe_customer() {
    let stack = billing_stack(false).await;
    let s = stack.register("racer@example.com").await;
    let calls = (0..6)
        .map(|_| stack.api_post("/v1/billing/subscribe", &s.access, json!({"plan": "basic"})));
    let results = futures::future::join_all(calls).await;
    for r in results {
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().await.unwrap();
        assert!(
            v["checkout_url"]
                .as_str()
                .unwrap()
                .contains("/stripe/c/pay/cs_test_"),
            "{v}"
        );
    }
    let r = stack.stripe_resources().await;
    assert_eq!(r["customers"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(
        r["customers"][0]["id"].as_str().unwrap(),
        stack.customer_of(&s.user_id).await
    );
    // A bad plan names the field.
    let bad = stack
        .api_post("/v1/billing/subscribe", &s.access, json!({"plan": "gold"}))
        .await;
    let v = common::api::expect_error(bad, StatusCode::BAD_REQUEST).await;
    assert_eq!(v["error"]["field"], "plan");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_and_replayed_events_change_nothing() {
    let stack = billing_stack(true).await;
    let s = stack.register("dup@example.com").await;
    stack.subscribe_and_pay(&s, "basic").await;
    eventually("provisioning invocation", WAIT, || async {
        (stack.invocations("ProvisionIdentity/").await.len() == 1).then_some(())
    })
    .await;
    let before: (String, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as("SELECT status, updated_at FROM subscriptions WHERE user_id = $1::uuid")
            .bind(&s.user_id)
            .fetch_one(&stack.db.pool)
            .await
            .unwrap();
    let recorded = webhook_count(&stack).await;

    // Stripe redelivers every event (duplicates), and an attacker replays a captured one with
    // a fresh valid signature (what a redelivery is, byte for byte).
    for kind in [
        "checkout.session.completed",
        "customer.subscription.created",
        "invoice.paid",
    ] {
        let id = stack.last_event(kind).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        for _ in 0..2 {
            let r = stack
                .control(&format!("/events/{id}/redeliver"), json!({}))
                .await;
            assert_eq!(r["status"], 200, "{r}");
        }
    }
    assert_eq!(webhook_count(&stack).await, recorded);
    let after: (String, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as("SELECT status, updated_at FROM subscriptions WHERE user_id = $1::uuid")
            .bind(&s.user_id)
            .fetch_one(&stack.db.pool)
            .await
            .unwrap();
    assert_eq!(before, after);
    // Every redelivery above was answered 200, which the api does only once it is done with
    // the event (a hand-off to Restate included), and every event is recorded.
    stack.all_events_processed().await;
    assert_eq!(stack.invocations("ProvisionIdentity/").await.len(), 1);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_or_stale_signature_is_refused_and_changes_nothing() {
    let stack = billing_stack(true).await;
    let s = stack.register("sig@example.com").await;
    // Hold deliveries so we can present the event ourselves.
    stack.control("/webhooks/hold", json!({})).await;
    stack.subscribe_and_pay(&s, "basic").await;
    let event = stack.last_event("customer.subscription.created").await;
    let body = event.to_string();
    let now = chrono::Utc::now().timestamp();

    let wrong_secret = billing::signature::sign("whsec_not_the_secret", now, body.as_bytes());
    let stale = billing::signature::sign(WEBHOOK_SECRET, now - 301, body.as_bytes());
    let future = billing::signature::sign(WEBHOOK_SECRET, now + 400, body.as_bytes());
    let tampered_body = body.replace("\"active\"", "\"trialing\"");
    let valid_for_original = billing::signature::sign(WEBHOOK_SECRET, now, body.as_bytes());
    for (what, payload, sig) in [
        ("wrong secret", body.as_str(), Some(wrong_secret.as_str())),
        ("stale", body.as_str(), Some(stale.as_str())),
        ("from the future", body.as_str(), Some(future.as_str())),
        (
            "tampered body",
            tampered_body.as_str(),
            Some(valid_for_original.as_str()),
        ),
        ("garbage header", body.as_str(), Some("t=abc,v1=zz")),
        ("no header", body.as_str(), None),
    ] {
        let res = post_webhook(&stack, payload, sig).await;
        let v = common::api::expect_error(res, StatusCode::BAD_REQUEST).await;
        assert_eq!(v["error"]["field"], "Stripe-Signature", "{what}: {v}");
    }
    assert_eq!(webhook_count(&stack).await, 0);
    assert_eq!(stack.subscription_row(&s.user_id).await, None);
    assert!(stack.invocations("ProvisionIdentity/").await.is_empty());

    // The same event correctly signed is accepted: the refusals above were the signature's.
    let res = post_webhook(&stack, &body, Some(&valid_for_original)).await;
    let status = res.status();
    assert_eq!(status, StatusCode::OK, "{}", res.text().await.unwrap());
    assert_eq!(
        stack.subscription_row(&s.user_id).await,
        Some(("basic".into(), "active".into()))
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn payment_failure_suspends_once_and_payment_recovery_resumes_once() {
    let stack = billing_stack(true).await;
    let s = stack.register("late@example.com").await;
    let sub = stack.subscribe_and_pay(&s, "basic").await;

    // invoice.payment_failed and customer.subscription.updated(past_due): one suspension.
    stack
        .control(&format!("/subscriptions/{sub}/payment_failed"), json!({}))
        .await;
    assert_eq!(
        stack.subscription_row(&s.user_id).await,
        Some(("basic".into(), "past_due".into()))
    );
    let target = format!("IdentityLifecycle/{}/suspend", s.user_id);
    let suspends = eventually("suspend invocation", WAIT, || async {
        let v = stack.invocations("IdentityLifecycle/").await;
        (!v.is_empty()).then_some(v)
    })
    .await;
    assert_eq!(
        suspends.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
        vec![target.as_str()]
    );

    // Paid again: one resumption.
    stack
        .control(
            &format!("/subscriptions/{sub}/payment_succeeded"),
            json!({}),
        )
        .await;
    assert_eq!(
        stack.subscription_row(&s.user_id).await,
        Some(("basic".into(), "active".into()))
    );
    let all = eventually("resume invocation", WAIT, || async {
        let v = stack.invocations("IdentityLifecycle/").await;
        (v.len() >= 2).then_some(v)
    })
    .await;
    let targets: Vec<&str> = all.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(
        targets,
        vec![
            target.clone(),
            format!("IdentityLifecycle/{}/resume", s.user_id)
        ]
    );
    // Provisioning was not started again by the recovery.
    assert_eq!(stack.invocations("ProvisionIdentity/").await.len(), 1);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reordered_deliveries_end_in_stripes_latest_state() {
    let stack = billing_stack(true).await;
    let s = stack.register("order@example.com").await;
    let sub = stack.subscribe_and_pay(&s, "basic").await;

    // Fail then recover, delivered newest first: the subscription ends active and nobody is
    // suspended, because every older event is recognised as older than the state we hold.
    stack.control("/webhooks/hold", json!({})).await;
    stack
        .control(&format!("/subscriptions/{sub}/payment_failed"), json!({}))
        .await;
    stack
        .control(
            &format!("/subscriptions/{sub}/payment_succeeded"),
            json!({}),
        )
        .await;
    let released = stack
        .control("/webhooks/release", json!({"order": "reverse"}))
        .await;
    let delivered = released["delivered"].as_array().unwrap();
    assert_eq!(delivered.len(), 4);
    assert!(delivered.iter().all(|d| d["status"] == 200), "{released}");
    assert_eq!(
        stack.subscription_row(&s.user_id).await,
        Some(("basic".into(), "active".into()))
    );
    stack.all_events_processed().await;
    assert!(stack.invocations("IdentityLifecycle/").await.is_empty());

    // A plan change, then a cancellation and its paid final invoice, delivered newest first:
    // the final invoice.paid does not revive the subscription (its state is read from Stripe:
    // canceled, already on Pro), and the older deletion and plan change change nothing more.
    // Deprovisioned once.
    stack.control("/webhooks/hold", json!({})).await;
    stack
        .control(
            &format!("/subscriptions/{sub}/plan"),
            json!({"price": PRICE_PRO}),
        )
        .await;
    stack
        .control(&format!("/subscriptions/{sub}/cancel"), json!({}))
        .await;
    let released = stack
        .control("/webhooks/release", json!({"order": "reverse"}))
        .await;
    let kinds: Vec<&str> = released["delivered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "invoice.paid",
            "customer.subscription.deleted",
            "customer.subscription.updated"
        ]
    );
    assert_eq!(
        stack.subscription_row(&s.user_id).await,
        Some(("pro".into(), "canceled".into()))
    );
    let deprov = eventually("deprovision invocation", WAIT, || async {
        let v = stack.invocations("DeprovisionIdentity/").await;
        (!v.is_empty()).then_some(v)
    })
    .await;
    assert_eq!(deprov.len(), 1);
    let user: uuid::Uuid = s.user_id.parse().unwrap();
    let identity = db::identities::find_by_user(&stack.db.pool, user)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        deprov[0].0,
        format!(
            "DeprovisionIdentity/{}-g{}/run",
            identity.id, identity.generation
        )
    );
    let remaining: Value = stack
        .api_get("/v1/usage/remaining", &s.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(remaining["included_tokens"], 0, "{remaining}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_change_changes_the_plan_and_the_included_tokens() {
    let stack = billing_stack(true).await;
    let s = stack.register("upgrade@example.com").await;
    let sub = stack.subscribe_and_pay(&s, "basic").await;
    let before: Value = stack
        .api_get("/v1/usage/remaining", &s.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(before["included_tokens"], 5_000_000);

    stack
        .control(
            &format!("/subscriptions/{sub}/plan"),
            json!({"price": PRICE_PRO}),
        )
        .await;
    let v: Value = stack
        .api_get("/v1/billing/subscription", &s.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["plan"], "pro");
    assert_eq!(v["status"], "active");
    assert_eq!(v["included_tokens"], 30_000_000);
    let after: Value = stack
        .api_get("/v1/usage/remaining", &s.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["included_tokens"], 30_000_000);
    assert_eq!(after["plan"], "pro");
    let user_id: uuid::Uuid = s.user_id.parse().unwrap();
    let identity = db::identities::find_by_user(&stack.db.pool, user_id)
        .await
        .unwrap()
        .expect("the subscription started provisioning");
    assert_eq!(
        identity.plan.as_deref(),
        Some("pro"),
        "the identity follows"
    );
    // No lifecycle step for a plan change (its event was answered and recorded: the api is
    // done with it).
    stack.all_events_processed().await;
    assert!(stack.invocations("IdentityLifecycle/").await.is_empty());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn while_restate_is_unreachable_a_webhook_is_refused_and_leaves_no_trace() {
    // No Restate: the hand-off fails, so the event must not count as processed (Stripe retries
    // it until it succeeds).
    let stack = billing_stack(false).await;
    let s = stack.register("norestate@example.com").await;
    stack.subscribe_and_pay(&s, "basic").await;
    let created = stack.last_event("customer.subscription.created").await;
    let id = created["id"].as_str().unwrap().to_owned();
    let log = stack.events().await;
    let deliveries = &log
        .iter()
        .find(|e| e["event"]["id"] == id.as_str())
        .unwrap()["deliveries"];
    // (The sandbox, like Stripe, retries it later; the first attempts are what we look at.)
    assert_eq!(deliveries[0], 503, "{deliveries}");
    assert_eq!(stack.subscription_row(&s.user_id).await, None);
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM webhook_events WHERE event_id = $1")
        .bind(&id)
        .fetch_one(&stack.db.pool)
        .await
        .unwrap();
    assert_eq!(
        n, 0,
        "a refused event must stay unrecorded so its retry is processed"
    );
    // Stripe's retry is refused the same way, still without a trace.
    let r = stack
        .control(&format!("/events/{id}/redeliver"), json!({}))
        .await;
    assert_eq!(r["status"], 503);
    assert_eq!(stack.subscription_row(&s.user_id).await, None);
    stack.stop().await;
}

/// The end-to-end test of issue 4: signup → subscribe → pay → webhook → identity active,
/// through the real workflows against the provider sandboxes.
#[tokio::test(flavor = "multi_thread")]
async fn signup_to_active_identity() {
    let stack = billing_stack(true).await;
    let s = stack.register("e2e@example.com").await;
    stack.subscribe_and_pay(&s, "basic").await;
    let identity = eventually("identity active", Duration::from_secs(120), || async {
        let v: Value = stack
            .api_get("/v1/identity", &s.access)
            .await
            .json()
            .await
            .ok()?;
        (v["status"] == "active").then_some(v)
    })
    .await;
    assert!(
        identity["email"].as_str().unwrap().starts_with("dex-"),
        "{identity}"
    );
    stack.stop().await;
}
