//! Black-box check with Stripe's official Python SDK (stripe==16.1.0): the sandbox answers the
//! SDK's requests in shapes it parses (customers with idempotency keys, prices by lookup key,
//! Checkout Sessions, meter events deduplicated on identifier, auth errors), the sandbox's
//! webhook signatures pass `stripe.Webhook.construct_event`, and a signature made by the SDK
//! passes the api's verification. Fails (never skips) without POINDEXTER_PYTHON.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod billing_support;
mod common;

use billing_support::{billing_stack, STRIPE_KEY, WEBHOOK_SECRET};
use reqwest::StatusCode;
use serde_json::Value;

const SCRIPT: &str = r#"
import json, os, sys, urllib.error, urllib.parse, urllib.request
import stripe

base = os.environ["SANDBOX"] + "/stripe"
stripe.api_key = os.environ["STRIPE_KEY"]
stripe.api_base = base
stripe.max_network_retries = 0
out = {}

c1 = stripe.Customer.create(email="py@example.com", metadata={"user_id": "u1"}, idempotency_key="py-cus-1")
c2 = stripe.Customer.create(email="py@example.com", metadata={"user_id": "u1"}, idempotency_key="py-cus-1")
out["customer"] = c1.id
out["same_customer"] = c1.id == c2.id
out["customer_email"] = stripe.Customer.retrieve(c1.id).email

prices = stripe.Price.list(lookup_keys=["poindexter_basic_base", "poindexter_basic_overage_input"])
out["prices"] = sorted(p.lookup_key for p in prices.data)
base_price = [p for p in prices.data if p.lookup_key == "poindexter_basic_base"][0]
metered = [p for p in prices.data if p.lookup_key == "poindexter_basic_overage_input"][0]
out["metered_usage_type"] = metered.recurring.usage_type

session = stripe.checkout.Session.create(
    mode="subscription", customer=c1.id,
    line_items=[{"price": base_price.id, "quantity": 1}, {"price": metered.id}],
    payment_method_types=["card", "link"],
    success_url="https://example.com/ok", cancel_url="https://example.com/no",
)
out["session_mode"] = session.mode
out["session_methods"] = session.payment_method_types
# Pay on the hosted page with the test card, as a browser submits its form; the 303 to the
# success URL is not followed (it leaves the machine).
class Stay(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
card = urllib.parse.urlencode({"card_number": "4242424242424242", "exp": "12/34", "cvc": "123", "name": "Py"})
try:
    urllib.request.build_opener(Stay).open(session.url, data=card.encode())
    out["pay_status"] = 200
except urllib.error.HTTPError as e:
    out["pay_status"] = e.code
    out["pay_location"] = e.headers["location"]
out["session_paid"] = stripe.checkout.Session.retrieve(session.id).payment_status

for _ in range(2):
    stripe.billing.MeterEvent.create(
        event_name="poindexter_overage_input_tokens", identifier="py-mev-1",
        payload={"stripe_customer_id": c1.id, "value": "42"},
    )

try:
    stripe.Customer.create(email="x@example.com", api_key="sk_test_wrong")
    out["bad_key"] = "accepted"
except stripe.error.AuthenticationError as e:
    out["bad_key"] = "AuthenticationError"

events = json.load(urllib.request.urlopen(base + "/_sandbox/events"))["data"]
created = [e["event"]["id"] for e in events if e["event"]["type"] == "customer.subscription.created"][0]
signed = json.load(urllib.request.urlopen(base + "/_sandbox/events/" + created + "/signed"))
event = stripe.Webhook.construct_event(signed["payload"], signed["header"], os.environ["WEBHOOK_SECRET"])
out["verified_type"] = event.type
out["verified_status"] = event.data.object.status
try:
    stripe.Webhook.construct_event(signed["payload"], signed["header"], "whsec_other")
    out["wrong_secret"] = "accepted"
except stripe.error.SignatureVerificationError:
    out["wrong_secret"] = "rejected"

payload = json.dumps({"id": "evt_from_python_sdk", "object": "event", "type": "customer.created",
                      "created": 1700000000, "data": {"object": {"id": c1.id, "object": "customer"}}})
out["sdk_payload"] = payload
out["sdk_header"] = stripe.WebhookSignature.generate_signature_header(payload, os.environ["WEBHOOK_SECRET"])
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread")]
async fn the_official_python_sdk_speaks_to_the_sandbox_and_the_webhook() {
    let python = std::env::var("POINDEXTER_PYTHON")
        .expect("POINDEXTER_PYTHON must point at the .venv python with stripe==16.1.0 (scripts/test sets it)");
    let stack = billing_stack(false).await;
    let output = tokio::process::Command::new(&python)
        .arg("-c")
        .arg(SCRIPT)
        .env("SANDBOX", &stack.sandbox.url)
        .env("STRIPE_KEY", STRIPE_KEY)
        .env("WEBHOOK_SECRET", WEBHOOK_SECRET)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(out["same_customer"], true, "{out}");
    assert_eq!(out["customer_email"], "py@example.com");
    assert_eq!(
        out["prices"],
        serde_json::json!(["poindexter_basic_base", "poindexter_basic_overage_input"])
    );
    assert_eq!(out["metered_usage_type"], "metered");
    assert_eq!(out["session_mode"], "subscription");
    assert_eq!(out["session_methods"], serde_json::json!(["card", "link"]));
    assert_eq!(out["pay_status"], 303, "{out}");
    assert_eq!(out["pay_location"], "https://example.com/ok");
    assert_eq!(out["session_paid"], "paid");
    assert_eq!(out["bad_key"], "AuthenticationError");
    assert_eq!(out["verified_type"], "customer.subscription.created");
    assert_eq!(out["verified_status"], "active");
    assert_eq!(out["wrong_secret"], "rejected");
    // The identifier was sent twice; the meter counts it once.
    let customer = out["customer"].as_str().unwrap();
    assert_eq!(
        stack
            .meter_total(customer, "poindexter_overage_input_tokens")
            .await,
        42
    );

    // A header made by the SDK is accepted by the api's verification (and recorded once).
    let post = |header: String| {
        stack
            .http
            .post(format!("{}/webhooks/stripe", stack.api))
            .header("stripe-signature", header)
            .body(out["sdk_payload"].as_str().unwrap().to_owned())
            .send()
    };
    let res = post(out["sdk_header"].as_str().unwrap().to_owned())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["received"], true, "{v}");
    let dup: Value = post(out["sdk_header"].as_str().unwrap().to_owned())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dup["duplicate"], true);
    stack.stop().await;
}
