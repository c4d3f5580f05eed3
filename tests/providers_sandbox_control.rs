//! The sandbox's control surface: faults on every provider prefix, latency, the resource
//! audit, reset, and injecting an inbound SMS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::sandbox::{next_webhook, start_receiver, start_sandbox};
use providers::google::NewUser;
use providers::signal::RegisterOptions;
use providers::telnyx::{verify_webhook, NumberSearch};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[tokio::test]
async fn faults_apply_below_every_provider_prefix_with_the_providers_error_shape() {
    let sb = start_sandbox(&[]).await;
    for (provider, path) in [
        ("openai", "/openai/v1/models"),
        ("anthropic", "/anthropic/v1/messages"),
        ("google", "/google/gmail/v1/users/me/messages"),
        ("telnyx", "/telnyx/v2/available_phone_numbers"),
        ("signal", "/signal/v1/about"),
        ("stripe", "/stripe/v1/customers"),
    ] {
        let id = sb
            .fault(json!({"provider": provider, "route": "*", "kind": "status", "status": 418}))
            .await;
        let resp = sb
            .http
            .get(format!("{}{path}", sb.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 418, "{provider}");
        let body: Value = resp.json().await.unwrap();
        match provider {
            "google" => assert_eq!(body["error"]["code"], 418),
            "telnyx" => assert_eq!(body["errors"][0]["code"], "418"),
            "signal" => assert!(body["error"].is_string()),
            "anthropic" => assert_eq!(body["type"], "error"),
            _ => assert!(body["error"]["message"].is_string()),
        }
        assert_eq!(sb.fired(&id).await, 1);
        sb.clear_faults().await;
    }
    // Control routes themselves are never faulted.
    let resp = sb
        .http
        .get(format!("{}/_sandbox/resources", sb.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn fault_specs_are_validated_and_counts_and_methods_respected() {
    let sb = start_sandbox(&[]).await;
    for bad in [
        json!({"provider": "yahoo", "kind": "status"}),
        json!({"provider": "google", "kind": "explode"}),
        json!({"provider": "google", "kind": "status", "probability": 2.0}),
        json!({"provider": "google", "kind": "slow"}),
        json!({"provider": "google", "kind": "status", "status": 99}),
    ] {
        let resp = sb
            .control(Method::POST, "/_sandbox/faults", bad.clone())
            .await;
        assert_eq!(resp.status(), 400, "{bad}");
        let body: Value = resp.json().await.unwrap();
        assert!(body["error"]["message"].is_string());
    }

    let url = format!("{}/signal/v1/about", sb.url);
    sb.fault(json!({"provider": "signal", "route": "/v1/about", "method": "POST", "kind": "status", "status": 500}))
        .await;
    assert_eq!(
        sb.http.get(&url).send().await.unwrap().status(),
        200,
        "GET is not POST"
    );
    sb.clear_faults().await;

    sb.fault(json!({"provider": "signal", "route": "/v1/about", "kind": "status", "status": 500, "probability": 0.0}))
        .await;
    assert_eq!(sb.http.get(&url).send().await.unwrap().status(), 200);
    sb.clear_faults().await;

    sb.fault(json!({"provider": "signal", "route": "/v1/about", "kind": "status", "status": 500, "count": 2}))
        .await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(sb.http.get(&url).send().await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, vec![500, 500, 200]);

    sb.fault(json!({"provider": "signal", "route": "*", "kind": "status", "status": 500}))
        .await;
    let resp = sb
        .http
        .delete(format!("{}/_sandbox/faults", sb.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(sb.http.get(&url).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn latency_is_added_per_provider() {
    let sb = start_sandbox(&[]).await;
    let latency = sb.get_json("/_sandbox/latency").await;
    for p in [
        "google",
        "telnyx",
        "signal",
        "stripe",
        "openai",
        "anthropic",
    ] {
        assert_eq!(latency[p], 0, "{p}");
    }
    let resp = sb
        .control(Method::PUT, "/_sandbox/latency", json!({"signal": 1000}))
        .await;
    assert_eq!(resp.status(), 200);
    let latency: Value = resp.json().await.unwrap();
    assert_eq!(latency["signal"], 1000);
    assert_eq!(latency["google"], 0);

    // Signal's calls take the added second; the others are not held (a loopback call takes
    // milliseconds, so the second tells the two apart on any machine).
    let added = Duration::from_millis(1000);
    let started = Instant::now();
    sb.http
        .get(format!("{}/signal/v1/about", sb.url))
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() >= added);
    let started = Instant::now();
    sb.http
        .get(format!("{}/telnyx/v2/available_phone_numbers", sb.url))
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() < added, "{:?}", started.elapsed());

    let resp = sb
        .control(Method::PUT, "/_sandbox/latency", json!({"myspace": 10}))
        .await;
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn resources_list_everything_alive_and_reset_forgets_it() {
    let (receiver, mut webhooks) = start_receiver().await;
    let sb = start_sandbox(&[("SANDBOX_WEBHOOK_BASE", &receiver)]).await;
    let google = sb.google();
    let user = NewUser {
        primary_email: google.workspace_address("res1"),
        given_name: "Dex".into(),
        family_name: "One".into(),
        password: "a-long-password".into(),
        owner: Some("owner-1".into()),
    };
    google.ensure_user(&user).await.unwrap();
    let number = sb
        .telnyx()
        .ensure_number("owner-1", &NumberSearch::default(), None)
        .await
        .unwrap()
        .number;
    sb.signal()
        .register(&number.phone_number, &RegisterOptions::default())
        .await
        .unwrap();
    next_webhook(&mut webhooks, 5).await;
    sb.fault(json!({"provider": "google", "route": "/nothing", "kind": "status"}))
        .await;
    sb.control(Method::PUT, "/_sandbox/latency", json!({"google": 5}))
        .await;

    let r = sb.resources().await;
    assert_eq!(r["google"]["users"][0]["owner"], "owner-1");
    assert_eq!(r["google"]["users"][0]["suspended"], false);
    assert_eq!(r["telnyx"]["numbers"][0]["owner"], "owner-1");
    assert_eq!(
        r["signal"]["accounts"][0]["number"],
        number.phone_number.as_str()
    );
    assert_eq!(r["signal"]["accounts"][0]["owner"], "owner-1");
    assert_eq!(r["signal"]["accounts"][0]["registered"], false);
    assert!(r["stripe"]["customers"].as_array().unwrap().is_empty());
    let customer = sb
        .http
        .post(format!("{}/stripe/v1/customers", sb.url))
        .bearer_auth("sk_test_sandbox")
        .form(&[("email", "res1@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(customer.status(), 200);
    assert_eq!(
        sb.resources().await["stripe"]["customers"][0]["email"],
        "res1@example.com"
    );
    sb.control(
        Method::PUT,
        "/_sandbox/ai",
        json!({"fail_status": 503, "fail_count": 3}),
    )
    .await;

    let resp = sb
        .http
        .post(format!("{}/_sandbox/reset", sb.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let r = sb.resources().await;
    assert!(r["google"]["users"].as_array().unwrap().is_empty());
    assert!(r["telnyx"]["numbers"].as_array().unwrap().is_empty());
    assert!(r["signal"]["accounts"].as_array().unwrap().is_empty());
    let faults = sb.get_json("/_sandbox/faults").await;
    assert!(faults["faults"].as_array().unwrap().is_empty());
    let latency = sb.get_json("/_sandbox/latency").await;
    assert_eq!(latency["google"], 0);
    assert!(r["stripe"]["customers"].as_array().unwrap().is_empty());
    let ai = sb.get_json("/_sandbox/ai").await;
    assert_eq!(ai["failures_left"], 0, "{ai}");
    assert_eq!(ai["settings"]["fail_status"], Value::Null, "{ai}");

    // A client whose cached token the reset invalidated fetches a new one and carries on.
    let (_, created) = google.ensure_user(&user).await.unwrap();
    assert!(created);
}

#[tokio::test]
async fn an_sms_from_the_outside_world_can_be_injected() {
    let (receiver, mut webhooks) = start_receiver().await;
    let sb = start_sandbox(&[("SANDBOX_WEBHOOK_BASE", &receiver)]).await;
    let number = sb
        .telnyx()
        .ensure_number("o", &NumberSearch::default(), None)
        .await
        .unwrap()
        .number;
    let resp = sb
        .control(
            Method::POST,
            "/_sandbox/telnyx/inbound",
            json!({"from": "+15557654321", "to": number.phone_number, "text": "hello Dex"}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let hook = next_webhook(&mut webhooks, 5).await;
    assert!(hook.headers.contains_key("telnyx-signature-ed25519"));
    let event = verify_webhook(
        &sb.config.telnyx.public_key.unwrap(),
        &hook.header("telnyx-signature-ed25519"),
        &hook.header("telnyx-timestamp"),
        &hook.body,
        chrono::Utc::now().timestamp(),
    )
    .unwrap();
    let sms = event.inbound_message().unwrap();
    assert_eq!(
        (sms.from.as_str(), sms.text.as_str()),
        ("+15557654321", "hello Dex")
    );

    let resp = sb
        .control(
            Method::POST,
            "/_sandbox/telnyx/inbound",
            json!({"from": "+15557654321", "to": "+15550000001", "text": "x"}),
        )
        .await;
    assert_eq!(resp.status(), 400);
}
