//! `POST /webhooks/telnyx`, black-box: signatures (valid, tampered body, stale timestamp,
//! wrong key, missing), replays, ordinary SMS stored and listed, Signal codes for unknown
//! numbers stored, and Signal codes for a pending registration handed to Restate — here
//! unreachable, so the webhook answers 503 and records nothing (the code-resolves-the-promise
//! path with a real restate-server is the provisioning saga's test).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use common::api::{expect_error, TestApi};
use common::comms::unreachable_restate;
use ed25519_dalek::{Signer, SigningKey};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Telnyx gives a webhook 2 s to be answered (the handler keeps its hand-over to Restate
/// inside it): a behaviour, not a performance figure.
const TELNYX_BUDGET: Duration = Duration::from_secs(2);

const SEED: [u8; 32] = *b"comms-test-telnyx-signing-seed-1";
const OTHER_SEED: [u8; 32] = *b"someone-else-s-telnyx-signing-k!";

async fn start() -> TestApi {
    let public = SigningKey::from_bytes(&SEED).verifying_key().to_bytes();
    let public = base64::engine::general_purpose::STANDARD.encode(public);
    let restate = unreachable_restate();
    TestApi::start_with(&[
        ("TELNYX_PUBLIC_KEY", public.as_str()),
        ("RESTATE_INGRESS_URL", restate.as_str()),
    ])
    .await
}

/// A user with an active identity on `number` and the given Signal status.
async fn identity(api: &TestApi, login: &str, number: &str, signal: &str) -> (String, Uuid) {
    let pool = &api.db.pool;
    let session = api.register(login).await;
    let user_id: Uuid = session.user_id.parse().unwrap();
    let identity = db::identities::begin_provisioning(pool, user_id, "basic")
        .await
        .unwrap()
        .identity;
    let id = identity.id;
    let email = format!("dex-{}@poindexter.ai", identity.short_id);
    db::identities::set_workspace_user(pool, id, Some(&email), Some("g-1"), None)
        .await
        .unwrap();
    db::identities::set_number(pool, id, Some(number), Some("num-1"))
        .await
        .unwrap();
    db::identities::set_signal(pool, id, signal.parse().unwrap(), None)
        .await
        .unwrap();
    db::identities::set_status(pool, id, db::status::IdentityStatus::Active, None)
        .await
        .unwrap();
    (session.access, id)
}

/// A `message.received` event as Telnyx sends it.
fn sms_event(event_id: &str, from: &str, to: &str, text: &str) -> String {
    json!({
        "data": {
            "record_type": "event",
            "id": event_id,
            "event_type": "message.received",
            "occurred_at": "2026-11-22T15:00:00.000+00:00",
            "payload": {
                "record_type": "message",
                "direction": "inbound",
                "id": format!("msg-{event_id}"),
                "type": "SMS",
                "from": {"phone_number": from, "carrier": "T-Mobile USA", "line_type": "Wireless"},
                "to": [{"phone_number": to, "status": "webhook_delivered"}],
                "text": text,
                "media": [],
                "parts": 1,
            }
        },
        "meta": {"attempt": 1, "delivered_to": "https://example.com/webhooks/telnyx"}
    })
    .to_string()
}

struct Delivery {
    body: String,
    signature: String,
    timestamp: String,
}

fn sign(seed: &[u8; 32], body: &str, timestamp: i64) -> Delivery {
    let timestamp = timestamp.to_string();
    let signature = SigningKey::from_bytes(seed).sign(format!("{timestamp}|{body}").as_bytes());
    Delivery {
        body: body.to_owned(),
        signature: base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()),
        timestamp,
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn deliver(api: &TestApi, d: &Delivery) -> reqwest::Response {
    api.client
        .post(api.url("/webhooks/telnyx"))
        .header("content-type", "application/json")
        .header("telnyx-signature-ed25519", &d.signature)
        .header("telnyx-timestamp", &d.timestamp)
        .body(d.body.clone())
        .send()
        .await
        .unwrap()
}

async fn listed(api: &TestApi, token: &str) -> Vec<Value> {
    let res = api.get("/v1/sms/messages", Some(token)).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json::<Value>().await.unwrap()["data"]
        .as_array()
        .unwrap()
        .clone()
}

async fn recorded(api: &TestApi, event_id: &str) -> bool {
    db::webhook_events::seen(&api.db.pool, "telnyx", event_id)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_signed_sms_is_stored_for_its_number_and_a_replay_changes_nothing() {
    let api = start().await;
    let (token, _) = identity(&api, "ada@example.com", "+15550100001", "registered").await;
    let (other, _) = identity(&api, "bob@example.com", "+15550100002", "registered").await;
    let body = sms_event("ev-1", "+15557654321", "+15550100001", "See you at 8");
    let delivery = sign(&SEED, &body, now());

    let started = Instant::now();
    let res = deliver(&api, &delivery).await;
    assert!(
        started.elapsed() < TELNYX_BUDGET,
        "answered after Telnyx's 2 s: {:?}",
        started.elapsed()
    );
    assert_eq!(res.status(), StatusCode::OK);
    let sms = listed(&api, &token).await;
    assert_eq!(sms.len(), 1);
    assert_eq!(sms[0]["body"], "See you at 8");
    assert_eq!(sms[0]["from"], "+15557654321");
    assert!(listed(&api, &other).await.is_empty());

    // The same delivery again, and the same event id re-signed with other content.
    assert_eq!(deliver(&api, &delivery).await.status(), StatusCode::OK);
    let altered = sms_event("ev-1", "+15557654321", "+15550100001", "changed");
    assert_eq!(
        deliver(&api, &sign(&SEED, &altered, now())).await.status(),
        StatusCode::OK
    );
    let sms = listed(&api, &token).await;
    assert_eq!(sms.len(), 1, "a replay must not store a second message");
    assert_eq!(sms[0]["body"], "See you at 8");
    api.stop().await;
}

#[tokio::test]
async fn a_bad_signature_is_refused_and_records_nothing() {
    let api = start().await;
    let (token, _) = identity(&api, "ada@example.com", "+15550100001", "registered").await;
    let body = sms_event("ev-2", "+15557654321", "+15550100001", "Pay 10 dollars");

    let mut tampered = sign(&SEED, &body, now());
    tampered.body = body.replace("Pay 10 dollars", "Pay 99 dollars");
    let stale = sign(&SEED, &body, now() - 600);
    let future = sign(&SEED, &body, now() + 600);
    let wrong_key = sign(&OTHER_SEED, &body, now());
    let mut garbage = sign(&SEED, &body, now());
    garbage.signature = "not base64!".into();
    for (what, d) in [
        ("tampered body", &tampered),
        ("stale timestamp", &stale),
        ("timestamp from the future", &future),
        ("wrong key", &wrong_key),
        ("malformed signature", &garbage),
    ] {
        let err = expect_error(deliver(&api, d).await, StatusCode::BAD_REQUEST).await;
        assert!(
            err["error"]["message"].as_str().unwrap().contains("Telnyx"),
            "{what}: {err}"
        );
    }
    let unsigned = api
        .client
        .post(api.url("/webhooks/telnyx"))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    expect_error(unsigned, StatusCode::BAD_REQUEST).await;

    assert!(listed(&api, &token).await.is_empty());
    assert!(!recorded(&api, "ev-2").await);
    // The genuine delivery of that event id is still processed.
    assert_eq!(
        deliver(&api, &sign(&SEED, &body, now())).await.status(),
        StatusCode::OK
    );
    assert_eq!(listed(&api, &token).await[0]["body"], "Pay 10 dollars");
    api.stop().await;
}

#[tokio::test]
async fn without_a_public_key_the_webhook_is_not_configured() {
    let api = TestApi::start_with(&[("TELNYX_PUBLIC_KEY", "")]).await;
    let body = sms_event("ev-3", "+15557654321", "+15550100001", "hi");
    let err = expect_error(
        deliver(&api, &sign(&SEED, &body, now())).await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not configured"));
    assert!(!recorded(&api, "ev-3").await);
    api.stop().await;
}

#[tokio::test]
async fn a_signal_code_for_a_number_that_is_not_ours_is_stored_as_sms() {
    let api = start().await;
    let (token, _) = identity(&api, "ada@example.com", "+15550100001", "pending").await;
    let text = "Your Signal code: 123-456. Do not share this code";
    let body = sms_event("ev-4", "+18335550142", "+15550199999", text);
    assert_eq!(
        deliver(&api, &sign(&SEED, &body, now())).await.status(),
        StatusCode::OK
    );
    let stored = db::incoming_sms::list_for_number(&api.db.pool, "+15550199999")
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].body, text);
    assert_eq!(stored[0].identity_id, None);
    assert!(listed(&api, &token).await.is_empty());
    api.stop().await;
}

#[tokio::test]
async fn a_signal_code_for_a_registered_number_is_an_ordinary_sms() {
    let api = start().await;
    let (token, _) = identity(&api, "ada@example.com", "+15550100001", "registered").await;
    let body = sms_event(
        "ev-5",
        "+18335550142",
        "+15550100001",
        "Your Signal code: 654-321",
    );
    assert_eq!(
        deliver(&api, &sign(&SEED, &body, now())).await.status(),
        StatusCode::OK
    );
    assert_eq!(listed(&api, &token).await.len(), 1);
    api.stop().await;
}

#[tokio::test]
async fn a_signal_code_for_a_pending_registration_is_handed_over_not_stored_and_restate_down_is_503(
) {
    let api = start().await;
    for (i, status) in ["pending", "captcha_required"].into_iter().enumerate() {
        let number = format!("+1555010010{i}");
        let (token, _) = identity(&api, &format!("u{i}@example.com"), &number, status).await;
        let event_id = format!("ev-code-{i}");
        let body = sms_event(
            &event_id,
            "+18335550142",
            &number,
            "Your Signal code: 123-456",
        );
        let delivery = sign(&SEED, &body, now());
        let started = Instant::now();
        let err = expect_error(
            deliver(&api, &delivery).await,
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .await;
        assert!(
            started.elapsed() < TELNYX_BUDGET,
            "answered after Telnyx's 2 s: {:?}",
            started.elapsed()
        );
        assert!(
            !err["error"]["message"].as_str().unwrap().contains("123"),
            "{err}"
        );
        assert!(
            listed(&api, &token).await.is_empty(),
            "a code is not an SMS"
        );
        assert!(db::incoming_sms::list_for_number(&api.db.pool, &number)
            .await
            .unwrap()
            .is_empty());
        assert!(
            !recorded(&api, &event_id).await,
            "a failed hand-over must not block the redelivery"
        );
        // Telnyx redelivers: still not recorded while Restate is down, still no SMS.
        expect_error(
            deliver(&api, &delivery).await,
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .await;
        assert!(!recorded(&api, &event_id).await);

        // A text without a code to the same number is an ordinary SMS.
        let plain = sms_event(&format!("ev-plain-{i}"), "+15557654321", &number, "hello");
        assert_eq!(
            deliver(&api, &sign(&SEED, &plain, now())).await.status(),
            StatusCode::OK
        );
        assert_eq!(listed(&api, &token).await.len(), 1);
    }
    api.stop().await;
}

#[tokio::test]
async fn other_event_types_are_acknowledged_once() {
    let api = start().await;
    let body =
        json!({"data": {"record_type": "event", "id": "ev-6", "event_type": "message.finalized",
        "payload": {"id": "m-1", "to": [{"phone_number": "+15550100001", "status": "delivered"}]}}})
        .to_string();
    let res = deliver(&api, &sign(&SEED, &body, now())).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(recorded(&api, "ev-6").await);
    api.stop().await;
}

/// Many SMS at once (a burst of Signal codes after a provisioning wave) are each stored: a
/// handler holds one database connection for its transaction and needs no second one. Before,
/// it looked the number up on a second connection from the api's pool of 16: with 16 handlers
/// each holding one and waiting for another, all of them timed out (503) together.
#[tokio::test]
async fn a_burst_of_sms_larger_than_the_connection_pool_is_stored_in_full() {
    let api = start().await;
    let (_, identity_id) = identity(&api, "burst@example.com", "+15550003333", "registered").await;
    let burst = 64;
    let deliveries: Vec<Delivery> = (0..burst)
        .map(|i| {
            let body = sms_event(
                &format!("ev-burst-{i}"),
                "+15557770000",
                "+15550003333",
                "hi",
            );
            sign(&SEED, &body, now())
        })
        .collect();
    let answers = futures::future::join_all(deliveries.iter().map(|d| deliver(&api, d))).await;
    let statuses: Vec<StatusCode> = answers.iter().map(|r| r.status()).collect();
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "every webhook answered 200: {statuses:?}"
    );
    let (stored,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM incoming_sms WHERE identity_id = $1")
            .bind(identity_id)
            .fetch_one(&api.db.pool)
            .await
            .unwrap();
    assert_eq!(stored, burst as i64);
}
