//! Secrets, prompts and message bodies never reach the logs. The whole stack runs as an
//! operator runs it (`poindexter dev`, every component a child process writing JSON lines);
//! a user signs up, pays, gets an identity and a key, prompts the AI, mails and messages
//! through it; then every log line of every component is searched for what must not be there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::ADMIN_TOKEN;
use common::dev::DevStack;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const PASSWORD: &str = "zebra-Pw-7f3a91 correct horse";
const JWT_SECRET: &str = "jwt-secret-log-hygiene-5b9e0c7d4a1f2e3d";
const ENCRYPTION_KEY: &str = "5eb1c0ffee5eb1c0ffee5eb1c0ffee5eb1c0ffee5eb1c0ffee5eb1c0ffee5eb1";
const PROMPT: &str = "prompt-marker-8d41 tell me a secret";
const MAIL_BODY: &str = "mail-body-marker-2c77 meet me at noon";
const MAIL_SUBJECT: &str = "subject-marker-91fe";
const SIGNAL_TEXT: &str = "signal-marker-e5a0 the door code is 4455";
/// Stripe's test card, typed into the sandbox's hosted checkout page.
const CARD_NUMBER: &str = "4242424242424242";

/// Sends `req`; its answer must have status `want`, read as JSON.
async fn json_with(req: reqwest::RequestBuilder, want: u16) -> Value {
    let res = req.send().await.unwrap();
    let status = res.status();
    let v: Value = res.json().await.unwrap_or_default();
    assert_eq!(status, want, "{v}");
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_prompts_and_message_bodies_never_reach_the_logs() {
    let mut dev = DevStack::start(&[
        ("JWT_SECRET", JWT_SECRET),
        ("ENCRYPTION_KEY", ENCRYPTION_KEY),
    ])
    .await;
    let http = reqwest::Client::new();
    let api = dev.api.clone();

    let session = json_with(
        http.post(format!("{api}/v1/auth/register"))
            .json(&json!({"email": "quiet@example.com", "password": PASSWORD})),
        201,
    )
    .await;
    let first_refresh = session["refresh_token"].as_str().unwrap().to_owned();
    let first_access = session["access_token"].as_str().unwrap().to_owned();
    let renewed = json_with(
        http.post(format!("{api}/v1/auth/refresh"))
            .json(&json!({"refresh_token": first_refresh})),
        200,
    )
    .await;
    let token = renewed["access_token"].as_str().unwrap().to_owned();
    let refresh = renewed["refresh_token"].as_str().unwrap().to_owned();

    // Subscribe and pay with the test card on the hosted checkout page: the Stripe webhooks
    // provision the identity.
    let checkout = json_with(
        http.post(format!("{api}/v1/billing/subscribe"))
            .bearer_auth(&token)
            .json(&json!({"plan": "basic"})),
        200,
    )
    .await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let paid = browser
        .post(checkout["checkout_url"].as_str().unwrap())
        .form(&[
            ("card_number", CARD_NUMBER),
            ("exp", "12/34"),
            ("cvc", "123"),
            ("name", "Test"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 303, "paid, and sent on to the success URL");
    let deadline = Instant::now() + Duration::from_secs(60);
    let identity = loop {
        let v: Value = http
            .get(format!("{api}/v1/identity"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or_default();
        if v["status"] == "active" && v["signal"]["registered"] == true {
            break v;
        }
        assert!(Instant::now() < deadline, "identity not ready: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let key = json_with(
        http.post(format!("{api}/v1/api-keys"))
            .bearer_auth(&token)
            .json(&json!({"name": "dex"})),
        201,
    )
    .await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    for stream in [false, true] {
        let res = http
            .post(format!("{}/v1/chat/completions", dev.proxy))
            .bearer_auth(&key)
            .json(&json!({"model": "gpt-4o-mini", "stream": stream,
                          "messages": [{"role": "user", "content": PROMPT}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.bytes().await.unwrap();
    }
    json_with(
        http.post(format!("{api}/v1/email/send"))
            .bearer_auth(&token)
            .json(&json!({"to": identity["email"], "subject": MAIL_SUBJECT, "body": MAIL_BODY})),
        200,
    )
    .await;
    json_with(
        http.get(format!("{api}/v1/email/inbox"))
            .bearer_auth(&token),
        200,
    )
    .await;
    json_with(
        http.post(format!("{api}/v1/signal/send"))
            .bearer_auth(&token)
            .json(&json!({"to": identity["phone"], "message": SIGNAL_TEXT})),
        200,
    )
    .await;
    // A wrong password and a bad key are logged as refusals, not echoed.
    let refused = http
        .post(format!("{api}/v1/auth/login"))
        .json(&json!({"email": "quiet@example.com", "password": "wrong-Pw-0c1d2e3f"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    dev.stop();
    let log = std::fs::read_to_string(&dev.proc.log).unwrap();
    // dev's own banner (plain text for the person at the terminal) is not a log line.
    let lines: Vec<&str> = log.lines().filter(|l| l.starts_with('{')).collect();
    let requests = lines.iter().filter(|l| l.contains("\"request\"")).count();
    assert!(
        requests >= 10,
        "expected the components' request lines, found {requests}"
    );
    let forbidden = [
        ("password", PASSWORD),
        ("wrong password", "wrong-Pw-0c1d2e3f"),
        ("access token", first_access.as_str()),
        ("renewed access token", token.as_str()),
        ("refresh token", first_refresh.as_str()),
        ("renewed refresh token", refresh.as_str()),
        ("API key", key.as_str()),
        ("JWT secret", JWT_SECRET),
        ("encryption key", ENCRYPTION_KEY),
        ("admin token", ADMIN_TOKEN),
        ("prompt", "prompt-marker-8d41"),
        ("mail body", "mail-body-marker-2c77"),
        ("mail subject", MAIL_SUBJECT),
        ("Signal message", "signal-marker-e5a0"),
        ("card number", CARD_NUMBER),
    ];
    for (what, secret) in forbidden {
        if let Some(line) = lines.iter().find(|l| l.contains(secret)) {
            panic!("the {what} is in the logs: {line}");
        }
    }
    dev.clean_up().await;
}
