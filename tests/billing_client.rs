//! Our Stripe client (async-stripe) against the sandbox: every call it makes parses Stripe's
//! shapes as the sandbox serves them, idempotency keys make retried creations land once, and
//! Stripe's refusals come back as non-retryable failures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod billing_support;
mod common;

use billing::client::CheckoutRequest;
use billing::meter::Kind;
use billing::StripeApi;
use billing_support::{billing_stack, PRICE_BASIC, STRIPE_KEY};
use serde_json::json;
use std::time::{Duration, Instant};

fn stripe_base(stack: &common::stack::Stack) -> String {
    format!("{}/stripe", stack.sandbox.url)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_client_drives_a_subscription_through_the_sandbox() {
    let stack = billing_stack(false).await;
    let api = StripeApi::new(STRIPE_KEY, &stripe_base(&stack), billing::client::TIMEOUT).unwrap();

    let c1 = api
        .create_customer("c@example.com", "u-1", "cus-key-1")
        .await
        .unwrap();
    let c2 = api
        .create_customer("c@example.com", "u-1", "cus-key-1")
        .await
        .unwrap();
    assert_eq!(c1, c2, "same Idempotency-Key, same customer");
    let other = api
        .create_customer("c@example.com", "u-1", "cus-key-2")
        .await
        .unwrap();
    assert_ne!(c1, other);

    let metered: Vec<String> = api
        .prices_by_lookup_keys(&[
            "poindexter_basic_overage_input".into(),
            "poindexter_basic_overage_output".into(),
        ])
        .await
        .unwrap()
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(metered.len(), 2);
    let checkout = api
        .create_checkout_session(CheckoutRequest {
            customer: &c1,
            base_price: PRICE_BASIC,
            metered_prices: &metered,
            success_url: "https://example.com/ok",
            cancel_url: "https://example.com/no",
            user_id: "u-1",
            plan: domain::Plan::Basic,
            billing_cycle_anchor: chrono::Utc::now().timestamp() + 86_400,
            idempotency_key: "cs-key-1",
        })
        .await
        .unwrap();
    assert!(checkout.url.contains(&checkout.id));
    let paid = stack
        .control(&format!("/checkout/{}/pay", checkout.id), json!({}))
        .await;
    let sub_id = paid["subscription"].as_str().unwrap();

    let sub = api.subscription(sub_id).await.unwrap();
    assert_eq!(sub.status, "active");
    assert_eq!(sub.customer, c1);
    assert_eq!(sub.prices.len(), 3);
    assert!(sub.prices.contains(&(
        PRICE_BASIC.to_owned(),
        Some("poindexter_basic_base".to_owned())
    )));
    assert_eq!(sub.metadata.get("plan").map(String::as_str), Some("basic"));
    assert!(sub.current_period.is_some_and(|(s, e)| s < e));

    let portal = api
        .create_portal_session(&c1, "https://example.com/back", "bps-key-1")
        .await
        .unwrap();
    assert!(portal.starts_with(&stack.sandbox.url), "{portal}");

    // Meter events: an identifier is counted once, whatever the Idempotency-Key path.
    let now = chrono::Utc::now().timestamp();
    api.report_meter_event(Kind::Output, &c1, 70, "mev-a", now)
        .await
        .unwrap();
    api.report_meter_event(Kind::Output, &c1, 70, "mev-a", now)
        .await
        .unwrap();
    api.report_meter_event(Kind::Output, &c1, 30, "mev-b", now)
        .await
        .unwrap();
    assert_eq!(stack.meter_total(&c1, Kind::Output.event_name()).await, 100);

    // Stripe's refusals are not retryable: a customer that does not exist, a stale timestamp.
    let err = api
        .report_meter_event(Kind::Input, "cus_missing", 1, "mev-c", now)
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    let err = api
        .report_meter_event(Kind::Input, &c1, 1, "mev-d", now - 40 * 86_400)
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    let bad_key = StripeApi::new(
        "sk_test_wrong",
        &stripe_base(&stack),
        billing::client::TIMEOUT,
    )
    .unwrap();
    let err = bad_key
        .create_customer("x@example.com", "u", "k")
        .await
        .unwrap_err();
    assert!(
        matches!(err, billing::StripeFailure::Rejected { status: 401, .. }),
        "{err}"
    );

    assert_eq!(api.cancel_subscription(sub_id).await.unwrap(), "canceled");
    assert_eq!(api.subscription(sub_id).await.unwrap().status, "canceled");
    let deleted = stack.last_event("customer.subscription.deleted").await;
    assert_eq!(deleted["data"]["object"]["id"], sub_id);
    stack.stop().await;
}

/// A Stripe that does not answer fails the request within the client's timeout (the workflows
/// pass PROVIDER_TIMEOUT_MS), as a failure worth retrying, instead of holding the step.
#[tokio::test(flavor = "multi_thread")]
async fn a_stripe_that_does_not_answer_fails_within_the_timeout_and_may_be_retried() {
    let stack = billing_stack(false).await;
    let api = StripeApi::new(STRIPE_KEY, &stripe_base(&stack), Duration::from_millis(500)).unwrap();
    stack
        .sandbox
        .fault(json!({"provider": "stripe", "route": "/v1/customers", "kind": "slow", "delay_ms": 30_000}))
        .await;
    let started = Instant::now();
    let err = api
        .create_customer("slow@example.com", "u-slow", "cus-slow")
        .await
        .unwrap_err();
    // Well before the sandbox's 30 s: the 500 ms timeout, not Stripe, ended it.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(err.is_retryable(), "{err}");
    stack.sandbox.clear_faults().await;
    let id = api
        .create_customer("slow@example.com", "u-slow", "cus-slow")
        .await
        .unwrap();
    assert!(id.starts_with("cus_"), "{id}");
    stack.stop().await;
}
