//! The signal-cli-rest-api client against the sandbox: the registration loop closed by the
//! verification SMS webhook, captcha mode, messages between two registered numbers, errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::sandbox::{next_webhook, start_receiver, start_sandbox, Received};
use providers::signal::{verification_code, RegisterOptions};
use providers::telnyx::{verify_webhook, NumberSearch};
use providers::SignalError;
use serde_json::json;

fn code_from(hook: &Received, public_key: &[u8; 32]) -> (String, String) {
    let event = verify_webhook(
        public_key,
        &hook.header("telnyx-signature-ed25519"),
        &hook.header("telnyx-timestamp"),
        &hook.body,
        chrono::Utc::now().timestamp(),
    )
    .unwrap();
    let sms = event.inbound_message().unwrap();
    (
        sms.to.clone(),
        verification_code(&sms.text).expect("a Signal code in the SMS"),
    )
}

#[tokio::test]
async fn registering_a_sandbox_number_texts_the_code_and_verifying_it_registers() {
    let (receiver, mut webhooks) = start_receiver().await;
    let sb = start_sandbox(&[("SANDBOX_WEBHOOK_BASE", &receiver)]).await;
    let public_key = sb.config.telnyx.public_key.unwrap();
    let number = sb
        .telnyx()
        .ensure_number("identity-9", &NumberSearch::default(), None)
        .await
        .unwrap()
        .number
        .phone_number;
    let signal = sb.signal();

    signal
        .register(&number, &RegisterOptions::default())
        .await
        .unwrap();
    let hook = next_webhook(&mut webhooks, 5).await;
    assert!(String::from_utf8_lossy(&hook.body).contains("Your Signal code: "));
    let (to, code) = code_from(&hook, &public_key);
    assert_eq!(to, number);
    assert_eq!(code.len(), 6);

    let accounts = &sb.resources().await["signal"]["accounts"];
    assert_eq!(accounts[0]["registered"], false);

    let wrong = if code == "000000" { "111111" } else { "000000" };
    let err = signal.verify(&number, wrong, None).await.unwrap_err();
    assert!(matches!(err, SignalError::InvalidCode(_)), "{err:?}");
    assert!(!err.is_retryable());

    // signal-cli takes the code with or without the dash.
    signal
        .verify(&number, &format!("{}-{}", &code[..3], &code[3..]), None)
        .await
        .unwrap();
    let accounts = &sb.resources().await["signal"]["accounts"];
    assert_eq!(accounts.as_array().unwrap().len(), 1);
    assert_eq!(accounts[0]["number"], number.as_str());
    assert_eq!(accounts[0]["registered"], true);
    assert_eq!(accounts[0]["owner"], "identity-9");
    // A repeated verify (a retried step) is harmless.
    signal.verify(&number, &code, None).await.unwrap();

    signal.unregister(&number, false).await.unwrap();
    assert!(sb.resources().await["signal"]["accounts"]
        .as_array()
        .unwrap()
        .is_empty());
    let err = signal.unregister(&number, false).await.unwrap_err();
    assert!(matches!(err, SignalError::NotRegistered(_)), "{err:?}");
}

#[tokio::test]
async fn captcha_mode_demands_a_captcha_token() {
    let (receiver, mut webhooks) = start_receiver().await;
    let sb = start_sandbox(&[("SANDBOX_WEBHOOK_BASE", &receiver)]).await;
    let number = sb
        .telnyx()
        .ensure_number("x", &NumberSearch::default(), None)
        .await
        .unwrap()
        .number
        .phone_number;
    let resp = sb
        .control(
            reqwest::Method::PUT,
            "/_sandbox/signal/captcha",
            json!({"required": true}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let signal = sb.signal();
    let err = signal
        .register(&number, &RegisterOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, SignalError::CaptchaRequired(_)), "{err:?}");
    assert!(!err.is_retryable());
    signal
        .register(
            &number,
            &RegisterOptions {
                captcha: Some("signalcaptcha://signal-hcaptcha.token".into()),
                use_voice: false,
            },
        )
        .await
        .unwrap();
    let (_, code) = code_from(
        &next_webhook(&mut webhooks, 5).await,
        &sb.config.telnyx.public_key.unwrap(),
    );
    signal.verify(&number, &code, None).await.unwrap();
}

async fn registered_pair(
    sb: &common::sandbox::TestSandbox,
    webhooks: &mut tokio::sync::mpsc::UnboundedReceiver<Received>,
) -> (String, String) {
    let telnyx = sb.telnyx();
    let signal = sb.signal();
    let key = sb.config.telnyx.public_key.unwrap();
    let mut numbers = Vec::new();
    for owner in ["a", "b"] {
        let n = telnyx
            .ensure_number(owner, &NumberSearch::default(), None)
            .await
            .unwrap()
            .number
            .phone_number;
        signal
            .register(&n, &RegisterOptions::default())
            .await
            .unwrap();
        let (_, code) = code_from(&next_webhook(webhooks, 5).await, &key);
        signal.verify(&n, &code, None).await.unwrap();
        numbers.push(n);
    }
    (numbers[0].clone(), numbers[1].clone())
}

#[tokio::test]
async fn a_message_between_two_registered_numbers_is_received_once() {
    let (receiver, mut webhooks) = start_receiver().await;
    let sb = start_sandbox(&[("SANDBOX_WEBHOOK_BASE", &receiver)]).await;
    let (a, b) = registered_pair(&sb, &mut webhooks).await;
    let signal = sb.signal();

    let ts = signal.send(&a, &[&b], "hi b, it's a").await.unwrap();
    assert!(ts > 0);
    let got = signal.receive(&b).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].source, a);
    assert_eq!(got[0].message, "hi b, it's a");
    assert!(
        signal.receive(&b).await.unwrap().is_empty(),
        "receive consumes"
    );
    assert!(signal.receive(&a).await.unwrap().is_empty());

    let contacts = signal.list_contacts(&b).await.unwrap();
    assert_eq!(
        contacts
            .iter()
            .map(|c| c.number.as_str())
            .collect::<Vec<_>>(),
        vec![a.as_str()]
    );

    // Unregistered senders and recipients are refused.
    let err = signal.send("+15550001111", &[&b], "x").await.unwrap_err();
    assert!(matches!(err, SignalError::NotRegistered(_)), "{err:?}");
    let err = signal.send(&a, &["+15550001111"], "x").await.unwrap_err();
    assert!(!err.is_retryable(), "{err:?}");
}

#[tokio::test]
async fn signal_faults_are_retried_when_transient_and_surfaced_when_not() {
    let (receiver, mut webhooks) = start_receiver().await;
    let sb = start_sandbox(&[("SANDBOX_WEBHOOK_BASE", &receiver)]).await;
    let (a, b) = registered_pair(&sb, &mut webhooks).await;
    let signal = sb.signal();

    let fault = sb
        .fault(json!({"provider": "signal", "route": "/v1/contacts/*", "kind": "status", "status": 500, "count": 2}))
        .await;
    signal.list_contacts(&a).await.unwrap();
    assert_eq!(sb.fired(&fault).await, 2);

    // Rate limiting is retryable; a send is retried after it because Signal did not act.
    let fault = sb
        .fault(json!({"provider": "signal", "route": "/v2/send", "kind": "status", "status": 429, "count": 1}))
        .await;
    signal.send(&a, &[&b], "after the limit").await.unwrap();
    assert_eq!(sb.fired(&fault).await, 1);
    assert_eq!(signal.receive(&b).await.unwrap().len(), 1);

    // A send whose connection broke is not repeated (it may have been delivered).
    sb.fault(json!({"provider": "signal", "route": "/v2/send", "kind": "reset", "count": 1}))
        .await;
    let err = signal.send(&a, &[&b], "maybe").await.unwrap_err();
    assert!(matches!(err, SignalError::Transport(_)), "{err:?}");
    assert!(err.is_retryable());

    let fault = sb
        .fault(json!({"provider": "signal", "route": "/v1/register/*", "kind": "status", "status": 423, "count": 1}))
        .await;
    let err = signal
        .register(&a, &RegisterOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, SignalError::RegistrationLocked(_)), "{err:?}");
    assert_eq!(sb.fired(&fault).await, 1);
}
