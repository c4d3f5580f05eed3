//! The Telnyx client against the sandbox: buying a number exactly once, messaging settings,
//! releasing, SMS delivered as a signed webhook, and webhook signature verification.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use common::sandbox::{fast_options, next_webhook, start_receiver, start_sandbox, TestSandbox};
use ed25519_dalek::{Signer, SigningKey};
use providers::telnyx::{verify_webhook, verify_webhook_request, NumberSearch, WebhookError};
use providers::{TelnyxClient, TelnyxError};
use serde_json::json;

async fn numbers(sb: &TestSandbox) -> Vec<serde_json::Value> {
    sb.resources().await["telnyx"]["numbers"]
        .as_array()
        .unwrap()
        .clone()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn a_number_is_bought_once_per_reference_and_released() {
    let sb = start_sandbox(&[]).await;
    let telnyx = sb.telnyx();
    let search = NumberSearch::default();
    let available = telnyx.search_available_numbers(&search).await.unwrap();
    assert_eq!(available.len(), 5);
    assert!(available.iter().all(|n| n.phone_number.starts_with("+1")));

    let first = telnyx
        .ensure_number("identity-1", &search, Some("profile-1"))
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!(
        first.number.customer_reference.as_deref(),
        Some("identity-1")
    );
    assert_eq!(
        first.number.messaging_profile_id.as_deref(),
        Some("profile-1")
    );
    let again = telnyx
        .ensure_number("identity-1", &search, Some("profile-1"))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.number.id, first.number.id);

    let listed = numbers(&sb).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["owner"], "identity-1");
    assert_eq!(
        listed[0]["phone_number"],
        first.number.phone_number.as_str()
    );

    telnyx
        .set_messaging_profile(&first.number.id, "profile-2")
        .await
        .unwrap();
    let fetched = telnyx.get_number(&first.number.id).await.unwrap();
    assert_eq!(fetched.messaging_profile_id.as_deref(), Some("profile-2"));
    assert_eq!(
        telnyx
            .find_number(&first.number.phone_number)
            .await
            .unwrap(),
        Some(fetched)
    );

    // A raw order can be followed by its id.
    let candidate = telnyx
        .search_available_numbers(&search)
        .await
        .unwrap()
        .remove(0);
    let order = telnyx
        .create_number_order(&[&candidate.phone_number], None, Some("identity-2"))
        .await
        .unwrap();
    let followed = telnyx.get_number_order(&order.id).await.unwrap();
    assert_eq!(followed.status, "success");
    assert_eq!(
        followed.phone_numbers[0].phone_number,
        candidate.phone_number
    );
    assert_eq!(followed.customer_reference.as_deref(), Some("identity-2"));
    let second = telnyx
        .find_number(&candidate.phone_number)
        .await
        .unwrap()
        .unwrap();
    telnyx.release_number(&second.id).await.unwrap();
    assert!(matches!(
        telnyx.get_number_order("no-such-order").await,
        Err(TelnyxError::NotFound(_))
    ));

    telnyx.release_number(&first.number.id).await.unwrap();
    assert!(numbers(&sb).await.is_empty());
    let err = telnyx.release_number(&first.number.id).await.unwrap_err();
    assert!(matches!(err, TelnyxError::NotFound(_)), "{err:?}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_number_taken_between_search_and_order_is_skipped_for_the_next() {
    let sb = start_sandbox(&[]).await;
    let telnyx = sb.telnyx();
    let resp = sb
        .control(
            reqwest::Method::POST,
            "/_sandbox/telnyx/unavailable",
            json!({"count": 2}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    // The raw order call reports the condition distinctly...
    let candidate = telnyx
        .search_available_numbers(&NumberSearch::default())
        .await
        .unwrap()
        .remove(0);
    let err = telnyx
        .create_number_order(&[&candidate.phone_number], None, Some("identity-1"))
        .await
        .unwrap_err();
    assert!(matches!(err, TelnyxError::NumberUnavailable(_)), "{err:?}");
    assert!(!err.is_retryable());
    // ...and the idempotent purchase moves on to another candidate.
    let bought = telnyx
        .ensure_number("identity-1", &NumberSearch::default(), None)
        .await
        .unwrap();
    assert!(bought.created);
    assert_eq!(numbers(&sb).await.len(), 1);

    // Even when every candidate of a search is gone, a fresh search finds one.
    let search = NumberSearch {
        limit: 2,
        ..Default::default()
    };
    sb.control(
        reqwest::Method::POST,
        "/_sandbox/telnyx/unavailable",
        json!({"count": 3}),
    )
    .await;
    let bought = telnyx
        .ensure_number("identity-2", &search, None)
        .await
        .unwrap();
    assert!(bought.created);
    assert_eq!(numbers(&sb).await.len(), 2);
}

#[tokio::test]
async fn an_order_that_timed_out_after_it_happened_buys_exactly_one_number() {
    let sb = start_sandbox(&[]).await;
    let telnyx = sb.telnyx();
    let fault = sb
        .fault(
            json!({"provider": "telnyx", "route": "/v2/number_orders", "method": "POST",
                      "kind": "timeout", "delay_ms": 5000, "count": 1}),
        )
        .await;
    let bought = telnyx
        .ensure_number("identity-7", &NumberSearch::default(), None)
        .await
        .unwrap();
    assert_eq!(sb.fired(&fault).await, 1);
    assert!(
        !bought.created,
        "found by reference after the ambiguous order"
    );
    let listed = numbers(&sb).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["owner"], "identity-7");
}

#[tokio::test]
async fn transient_faults_are_retried_and_client_errors_are_not() {
    let sb = start_sandbox(&[]).await;
    let telnyx = sb.telnyx();
    for kind in [
        json!({"kind": "status", "status": 502}),
        json!({"kind": "reset"}),
    ] {
        let mut spec =
            json!({"provider": "telnyx", "route": "/v2/available_phone_numbers", "count": 2});
        spec.as_object_mut()
            .unwrap()
            .extend(kind.as_object().unwrap().clone());
        let fault = sb.fault(spec).await;
        telnyx
            .search_available_numbers(&NumberSearch::default())
            .await
            .unwrap();
        assert_eq!(sb.fired(&fault).await, 2);
        sb.clear_faults().await;
    }
    let fault = sb
        .fault(json!({"provider": "telnyx", "route": "/v2/*", "kind": "status", "status": 422, "count": 1}))
        .await;
    let err = telnyx
        .search_available_numbers(&NumberSearch::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, TelnyxError::Api { status: 422, .. }),
        "{err:?}"
    );
    assert_eq!(sb.fired(&fault).await, 1);

    let wrong_key = TelnyxClient::new(
        &sb.config.telnyx.api_base,
        config::Secret::new("KEY_wrong"),
        fast_options(),
    )
    .unwrap();
    let err = wrong_key
        .search_available_numbers(&NumberSearch::default())
        .await
        .unwrap_err();
    assert!(matches!(err, TelnyxError::Unauthorized(_)), "{err:?}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn an_sms_between_sandbox_numbers_arrives_as_a_signed_webhook_the_client_verifies() {
    let (receiver, mut webhooks) = start_receiver().await;
    let sb = start_sandbox(&[("SANDBOX_WEBHOOK_BASE", &receiver)]).await;
    let telnyx = sb.telnyx();
    let a = telnyx
        .ensure_number("a", &NumberSearch::default(), None)
        .await
        .unwrap()
        .number;
    let b = telnyx
        .ensure_number("b", &NumberSearch::default(), None)
        .await
        .unwrap()
        .number;

    let sent = telnyx
        .send_sms(&a.phone_number, &b.phone_number, "hello from a")
        .await
        .unwrap();
    assert_eq!(sent.to[0].phone_number, b.phone_number);

    let hook = next_webhook(&mut webhooks, 5).await;
    let public_key = sb.config.telnyx.public_key.unwrap();
    let event = verify_webhook(
        &public_key,
        &hook.header("telnyx-signature-ed25519"),
        &hook.header("telnyx-timestamp"),
        &hook.body,
        now(),
    )
    .unwrap();
    assert_eq!(event.event_type, "message.received");
    assert!(!event.id.is_empty());
    let inbound = event.inbound_message().unwrap();
    assert_eq!(inbound.from, a.phone_number);
    assert_eq!(inbound.to, b.phone_number);
    assert_eq!(inbound.text, "hello from a");

    // A messaging profile's webhook URL takes precedence over the default destination.
    let (profile_receiver, mut profile_hooks) = start_receiver().await;
    telnyx
        .set_profile_webhook("profile-b", &format!("{profile_receiver}/webhooks/telnyx"))
        .await
        .unwrap();
    telnyx
        .set_messaging_profile(&b.id, "profile-b")
        .await
        .unwrap();
    telnyx
        .send_sms(&a.phone_number, &b.phone_number, "second")
        .await
        .unwrap();
    let hook = next_webhook(&mut profile_hooks, 5).await;
    let event = verify_webhook_request(&public_key, &hook.headers, &hook.body, now()).unwrap();
    assert_eq!(event.inbound_message().unwrap().text, "second");
    assert!(
        webhooks.try_recv().is_err(),
        "the default destination got nothing this time"
    );

    // Sending from a number the account does not own is refused.
    let err = telnyx
        .send_sms("+15550000000", &b.phone_number, "x")
        .await
        .unwrap_err();
    assert!(
        matches!(err, TelnyxError::Api { status: 400, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_sms_send_that_timed_out_is_not_repeated() {
    let (receiver, mut webhooks) = start_receiver().await;
    let sb = start_sandbox(&[("SANDBOX_WEBHOOK_BASE", &receiver)]).await;
    let telnyx = sb.telnyx();
    let a = telnyx
        .ensure_number("a", &NumberSearch::default(), None)
        .await
        .unwrap()
        .number;
    let b = telnyx
        .ensure_number("b", &NumberSearch::default(), None)
        .await
        .unwrap()
        .number;
    sb.fault(
        json!({"provider": "telnyx", "route": "/v2/messages", "kind": "timeout",
                    "delay_ms": 5000, "count": 1}),
    )
    .await;
    let err = telnyx
        .send_sms(&a.phone_number, &b.phone_number, "once")
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    // A second SMS once the first send has given up: any repeat of the first was sent before
    // it, so by the time the marker arrives every copy of "once" has arrived too.
    telnyx
        .send_sms(&a.phone_number, &b.phone_number, "marker")
        .await
        .unwrap();
    let mut texts = Vec::new();
    loop {
        let hook = next_webhook(&mut webhooks, 5).await;
        let event: serde_json::Value = serde_json::from_slice(&hook.body).unwrap();
        let text = event["data"]["payload"]["text"]
            .as_str()
            .unwrap()
            .to_owned();
        texts.push(text.clone());
        if text == "marker" {
            break;
        }
    }
    while let Ok(hook) = webhooks.try_recv() {
        texts.push(String::from_utf8_lossy(&hook.body).into_owned());
    }
    assert_eq!(texts, ["once", "marker"], "exactly one SMS went out");
}

fn signed(key: &SigningKey, timestamp: &str, body: &[u8]) -> String {
    let mut msg = format!("{timestamp}|").into_bytes();
    msg.extend_from_slice(body);
    base64::engine::general_purpose::STANDARD.encode(key.sign(&msg).to_bytes())
}

#[test]
fn webhook_verification_accepts_only_a_fresh_signature_over_the_exact_body() {
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let public = key.verifying_key().to_bytes();
    let body = br#"{"data":{"id":"evt-1","event_type":"message.received","payload":{"id":"m1","from":{"phone_number":"+15551230000"},"to":[{"phone_number":"+15559870000"}],"text":"Your Signal code: 123-456"}}}"#;
    let now = 1_700_000_000i64;
    let ts = now.to_string();
    let sig = signed(&key, &ts, body);

    let event = verify_webhook(&public, &sig, &ts, body, now).unwrap();
    assert_eq!(event.id, "evt-1");
    assert_eq!(event.inbound_message().unwrap().to, "+15559870000");

    let mut tampered = body.to_vec();
    tampered[body.len() - 5] = b'7';
    assert_eq!(
        verify_webhook(&public, &sig, &ts, &tampered, now),
        Err(WebhookError::BadSignature)
    );

    assert_eq!(
        verify_webhook(&public, &sig, &ts, body, now + 301),
        Err(WebhookError::StaleTimestamp)
    );
    assert_eq!(
        verify_webhook(&public, &sig, &ts, body, now - 301),
        Err(WebhookError::StaleTimestamp)
    );
    assert!(verify_webhook(&public, &sig, &ts, body, now + 299).is_ok());
    // A fresh timestamp on an old signature does not help.
    let later = (now + 10).to_string();
    assert_eq!(
        verify_webhook(&public, &sig, &later, body, now),
        Err(WebhookError::BadSignature)
    );

    let other = SigningKey::from_bytes(&[8u8; 32])
        .verifying_key()
        .to_bytes();
    assert_eq!(
        verify_webhook(&other, &sig, &ts, body, now),
        Err(WebhookError::BadSignature)
    );
    assert_eq!(
        verify_webhook(&public, "not base64!", &ts, body, now),
        Err(WebhookError::MalformedSignature)
    );
    assert_eq!(
        verify_webhook(&public, &sig, "yesterday", body, now),
        Err(WebhookError::MalformedTimestamp)
    );
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("telnyx-signature-ed25519", sig.parse().unwrap());
    assert_eq!(
        verify_webhook_request(&public, &headers, body, now),
        Err(WebhookError::MissingHeader("telnyx-timestamp"))
    );
    headers.insert("telnyx-timestamp", ts.parse().unwrap());
    assert!(verify_webhook_request(&public, &headers, body, now).is_ok());
}
