//! The Google client against the sandbox: service-account tokens, Directory users, Gmail
//! between two identities, Calendar events, and how each injected fault is handled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::sandbox::{fast_options, start_sandbox, start_sandbox_with, TestSandbox};
use providers::google::{
    event_id_for, EventInput, EventQuery, EventTime, GoogleSettings, MessageQuery, NewUser,
    OutgoingMail, ServiceAccount,
};
use providers::{GoogleClient, GoogleError};
use serde_json::json;

/// A second RSA key, test-only: the sandbox must refuse assertions signed with it.
const OTHER_KEY_PEM: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCdjJr75+BmkqFp\n\
HIDe/EdcWodFxo7L1qfUr3J4LV3s3o7zp0tQjPUzCeg5usdBF5rx42Y6TUKZX6tp\n\
HaPYWMRumHIvZBKHSaSD9UPOwE5HODVR7PRi4HtLZxiz9gVTDtVimwLob9NyApIg\n\
/FJP1OkRpYa4lB+KGxhNSVPi+WSw0TPe/MXXt8sqNdeCclGVNHeLwbQvQdRP89vM\n\
XGBzTIHdaiIXIkHVsO2TCGPalWhu3CcGw4GTrxeXJm1Dujkm72kslBwCJEiiOk2N\n\
TWzeuLSFsFDLfUcoacYJXLa7vPwXZZJNJFZbxmuulMN9H8g9MxqY2wjnYKatAE7P\n\
7GtMy69VAgMBAAECggEAAhTzj1SXEIPrghoQUeH/h2bi1rcy99qUSSkwWAoxbYnb\n\
VbjmM+BI9S2yVeDz9RY8w+l/VlHjCWfMOg1cNuWlYti82Yd2/zan59570OWVozdI\n\
7RY2fH/+4RYxq18a3ugZRb5KoYuovZ7vE2SCKe/kTIllaFb8u7Rz88F+TEeDXxq/\n\
RvyJUiDr32RgBw16XmrbkaVa1HScCxu9iU2wnkpI99x4odWzT6fAoCZgfd3+9Olz\n\
lXrIn8ACNKsiOLdACj2evaYyvQSm51+e+44YWS/4z6SfxgKHyQnQHvSTpywcH1E6\n\
yjbM41XUWqwYYKy2Evqevvu9i03vs/Ktg8PDLt7oGQKBgQDQrFv2d62o1/j1oK8D\n\
JcyhZLr3MCWUpW17jL8GCUZBziKf8ZUHbd2ccUh+45+sjoLCdVyg1X8TyaS6la/T\n\
q9uE2DYqR3kAFhI5l1VastFrBDDJkgbCJaKCqJIzaIpbZ5X9Q1tpkiss2dJrIJDJ\n\
qHymEXnd5Kfsrz8A6+Pa/QmjcwKBgQDBR/ehECcaiuwOZJHQiQ6Q1JK3u0kIxALv\n\
BCE4IQls8xD4TRC7e5zXXllsSGeYucyI8thcvgAjh1ij8ZiocIlBXiPjxX3IPo0S\n\
bkKYAA7mS0XCwCwV/Pwhc4EFd+x7BIwmpM6C6xgV42grM3E2P18JCxQnJ4fyyG6x\n\
Fejy29oAFwKBgBK7VioCxkEA2iVafjtfGkZmn23vEYCNdQ2BLeihzn+7vFn1OraH\n\
Azy24pYZYsz/ofdIx77cS2MAV9wz8aujoroDGqGi9tauJIas8gmJQclEgAioJhkp\n\
fbQS48TfnoPkAY/RixQn/d4x03SwYK7pg/74VKM5kmVpudMgWbzfuAzHAoGBAJxB\n\
CCqHmnVU1h2UpGVISCRCFhK/L/4MKKr+VbTA0JPptVBnTR2kg1mBhx2JM2c+3eHh\n\
IZVobUhLxRdU26tgvzW/W5hqMpPOLdI2nVOwyFrZg548KefkzBhm/mljWCTjukIL\n\
foBMev5HCBHU1rOaa8Qt1q8IwFlAPGyhX9/maMklAoGBAJx2oJ7070hZovDUQU7I\n\
NchmWf/c94h2POM5r/3PMv9yqGAsSfFk2E8hJQdnS/+LCNFaGYM2hpof/FwwDHlg\n\
Jz7xJ0N9bjiorYTjHFCGtMFsyGKPA+8SP1d7DkufP1FzHFSoerlHSurLqxdTRM9e\n\
ueCuRUfs4ekyM4E3O3zREueN\n\
-----END PRIVATE KEY-----\n\
";

fn new_user(client: &GoogleClient, short_id: &str, owner: &str) -> NewUser {
    NewUser {
        primary_email: client.workspace_address(short_id),
        given_name: "Dex".into(),
        family_name: short_id.into(),
        password: "correct-horse-battery".into(),
        owner: Some(owner.into()),
    }
}

async fn user_count(sb: &TestSandbox) -> usize {
    sb.resources().await["google"]["users"]
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test]
async fn a_workspace_user_lives_through_create_suspend_resume_and_delete() {
    let sb = start_sandbox(&[]).await;
    let google = sb.google();
    let spec = new_user(&google, "a1b2c3", "user-1");
    assert_eq!(spec.primary_email, "dex-a1b2c3@poindexter.ai");

    let (user, created) = google.ensure_user(&spec).await.unwrap();
    assert!(created);
    assert_eq!(user.primary_email, "dex-a1b2c3@poindexter.ai");
    assert_eq!(user.owner(), Some("user-1"));

    let resources = sb.resources().await;
    let users = resources["google"]["users"].as_array().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["email"], "dex-a1b2c3@poindexter.ai");
    assert_eq!(users[0]["owner"], "user-1");

    assert!(
        google
            .suspend_user(&spec.primary_email)
            .await
            .unwrap()
            .suspended
    );
    assert_eq!(
        sb.resources().await["google"]["users"][0]["suspended"],
        true
    );
    assert!(
        !google
            .unsuspend_user(&spec.primary_email)
            .await
            .unwrap()
            .suspended
    );
    assert!(
        !google
            .get_user(&spec.primary_email)
            .await
            .unwrap()
            .suspended
    );

    // A second create finds the first user instead of failing or duplicating.
    let (again, created) = google.ensure_user(&spec).await.unwrap();
    assert!(!created);
    assert_eq!(again.id, user.id);
    assert!(matches!(
        google.create_user(&spec).await,
        Err(GoogleError::AlreadyExists(_))
    ));

    google.delete_user(&spec.primary_email).await.unwrap();
    assert_eq!(user_count(&sb).await, 0);
    let second = google.delete_user(&spec.primary_email).await.unwrap_err();
    assert!(matches!(second, GoogleError::NotFound(_)), "{second:?}");
    assert!(!second.is_retryable());
    assert!(matches!(
        google.get_user(&spec.primary_email).await,
        Err(GoogleError::NotFound(_))
    ));
}

#[tokio::test]
async fn an_address_owned_by_someone_else_is_not_adopted() {
    let sb = start_sandbox(&[]).await;
    let google = sb.google();
    google
        .ensure_user(&new_user(&google, "shared", "user-1"))
        .await
        .unwrap();
    let err = google
        .ensure_user(&new_user(&google, "shared", "user-2"))
        .await
        .unwrap_err();
    assert!(matches!(err, GoogleError::AlreadyExists(_)), "{err:?}");
}

#[tokio::test]
async fn a_create_that_timed_out_after_it_happened_leaves_exactly_one_user() {
    let sb = start_sandbox(&[]).await;
    let google = sb.google();
    let fault = sb
        .fault(
            json!({"provider": "google", "route": "/admin/directory/v1/users*",
                      "method": "POST", "kind": "timeout", "delay_ms": 5000, "count": 1}),
        )
        .await;
    let (user, created) = google
        .ensure_user(&new_user(&google, "t1meout", "user-1"))
        .await
        .unwrap();
    assert_eq!(sb.fired(&fault).await, 1);
    assert!(
        !created,
        "the retry should have found the user the first attempt made"
    );
    assert_eq!(user.primary_email, "dex-t1meout@poindexter.ai");
    assert_eq!(user_count(&sb).await, 1);
}

#[tokio::test]
async fn transient_statuses_resets_and_slow_answers_are_retried() {
    let sb = start_sandbox(&[]).await;
    let google = sb.google();
    let spec = new_user(&google, "retry", "user-1");
    google.ensure_user(&spec).await.unwrap();

    for (kind, extra) in [
        ("status", json!({"status": 503})),
        ("status", json!({"status": 429})),
        ("reset", json!({})),
        ("slow", json!({"delay_ms": 3000})),
    ] {
        let mut spec_json = json!({"provider": "google", "route": "/admin/directory/v1/users/*",
                                   "method": "GET", "kind": kind, "count": 2});
        spec_json
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let fault = sb.fault(spec_json).await;
        let user = google.get_user(&spec.primary_email).await;
        assert!(user.is_ok(), "{kind}: {user:?}");
        assert_eq!(sb.fired(&fault).await, 2, "{kind} should have fired twice");
        sb.clear_faults().await;
    }

    // A slow answer within the timeout is simply waited for.
    let fault = sb
        .fault(json!({"provider": "google", "route": "/admin/*", "kind": "slow", "delay_ms": 300}))
        .await;
    let started = std::time::Instant::now();
    google.get_user(&spec.primary_email).await.unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    assert_eq!(sb.fired(&fault).await, 1);
}

#[tokio::test]
async fn a_persistent_outage_ends_in_a_retryable_error_after_the_retry_budget() {
    let sb = start_sandbox(&[]).await;
    let google = sb.google();
    let fault = sb
        .fault(json!({"provider": "google", "route": "/admin/*", "kind": "status", "status": 503}))
        .await;
    let err = google.get_user("dex-x@poindexter.ai").await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(
        sb.fired(&fault).await,
        1 + fast_options().max_retries as u64
    );
}

#[tokio::test]
async fn client_errors_are_terminal_and_not_retried() {
    let sb = start_sandbox(&[]).await;
    let google = sb.google();
    let spec = new_user(&google, "terminal", "user-1");
    google.ensure_user(&spec).await.unwrap();
    for status in [400u16, 403, 404] {
        let fault = sb
            .fault(
                json!({"provider": "google", "route": "/admin/*", "method": "GET",
                          "kind": "status", "status": status, "count": 1}),
            )
            .await;
        let err = google.get_user(&spec.primary_email).await.unwrap_err();
        assert!(!err.is_retryable(), "{status}: {err:?}");
        assert_eq!(sb.fired(&fault).await, 1, "{status} must not be retried");
    }
    // Invalid input the sandbox itself refuses, as Google does.
    let mut short = new_user(&google, "short", "user-1");
    short.password = "2short".into();
    let err = google.create_user(&short).await.unwrap_err();
    assert!(
        matches!(err, GoogleError::Api { status: 400, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_token_endpoint_checks_the_assertion_signature_and_the_impersonated_user() {
    let sb = start_sandbox(&[]).await;
    let settings = GoogleSettings {
        api_base: sb.config.google.api_base.clone(),
        token_url: sb.config.google.token_url.clone(),
        domain: sb.config.google.domain.clone(),
        admin_email: sb.config.google.admin_email.clone(),
    };
    let forged = json!({
        "type": "service_account",
        "client_email": config::DEV_GOOGLE_SERVICE_ACCOUNT_EMAIL,
        "private_key_id": config::DEV_GOOGLE_PRIVATE_KEY_ID,
        "private_key": OTHER_KEY_PEM,
    });
    let account = ServiceAccount::from_json(&forged.to_string()).unwrap();
    let impostor = GoogleClient::new(settings, account, fast_options()).unwrap();
    let err = impostor.get_user("dex-x@poindexter.ai").await.unwrap_err();
    assert!(matches!(err, GoogleError::Unauthorized(_)), "{err:?}");
    assert!(!err.is_retryable());

    // The real key may not impersonate a user that does not exist.
    let google = sb.google();
    let err = google
        .list_messages("dex-nobody@poindexter.ai", &MessageQuery::default())
        .await
        .unwrap_err();
    assert!(matches!(err, GoogleError::Unauthorized(_)), "{err:?}");
}

#[tokio::test]
async fn mail_sent_from_one_identity_arrives_in_the_other_inbox() {
    let sb = start_sandbox(&[]).await;
    let google = sb.google();
    let alice = new_user(&google, "alice", "user-a").primary_email;
    let bob = new_user(&google, "bob", "user-b").primary_email;
    google
        .ensure_user(&new_user(&google, "alice", "user-a"))
        .await
        .unwrap();
    google
        .ensure_user(&new_user(&google, "bob", "user-b"))
        .await
        .unwrap();

    let sent = google
        .send_mail(
            &alice,
            &OutgoingMail {
                to: vec![format!("Bob <{bob}>")],
                subject: "Lunch — Grüße".into(),
                body: "Shall we meet at noon?\nBring the report.".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let inbox = google
        .list_messages(
            &bob,
            &MessageQuery {
                label_ids: vec!["INBOX".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(inbox.messages.len(), 1);
    let got = google
        .get_message(&bob, &inbox.messages[0].id)
        .await
        .unwrap();
    assert_eq!(got.subject, "Lunch — Grüße");
    assert_eq!(got.body, "Shall we meet at noon?\nBring the report.");
    assert!(got.from.contains(&alice), "{}", got.from);
    assert!(got.label_ids.contains(&"UNREAD".to_owned()));

    let alice_sent = google
        .list_messages(
            &alice,
            &MessageQuery {
                label_ids: vec!["SENT".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(alice_sent.messages, vec![sent.clone()]);
    let alice_inbox = google
        .list_messages(
            &alice,
            &MessageQuery {
                label_ids: vec!["INBOX".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(alice_inbox.messages.is_empty());

    // Bob cannot read Alice's copy, and Alice's token cannot open Bob's mailbox.
    assert!(matches!(
        google.get_message(&bob, &sent.id).await,
        Err(GoogleError::NotFound(_))
    ));

    google.trash_message(&bob, &got.id).await.unwrap();
    let inbox = google
        .list_messages(
            &bob,
            &MessageQuery {
                label_ids: vec!["INBOX".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(inbox.messages.is_empty());
    assert!(matches!(
        google.trash_message(&bob, "0000").await,
        Err(GoogleError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_send_that_timed_out_is_not_sent_twice() {
    let sb = start_sandbox(&[]).await;
    let google = sb.google();
    let alice = google
        .ensure_user(&new_user(&google, "alice", "a"))
        .await
        .unwrap()
        .0
        .primary_email;
    let bob = google
        .ensure_user(&new_user(&google, "bob", "b"))
        .await
        .unwrap()
        .0
        .primary_email;
    sb.fault(
        json!({"provider": "google", "route": "/gmail/v1/users/*/messages/send",
                    "kind": "timeout", "delay_ms": 5000, "count": 1}),
    )
    .await;
    let mail = OutgoingMail {
        to: vec![bob.clone()],
        subject: "once".into(),
        body: "x".into(),
        ..Default::default()
    };
    let err = google.send_mail(&alice, &mail).await.unwrap_err();
    assert!(
        matches!(
            err,
            GoogleError::Transport(providers::TransportError::Timeout)
        ),
        "{err:?}"
    );
    let inbox = google
        .list_messages(&bob, &MessageQuery::default())
        .await
        .unwrap();
    assert_eq!(
        inbox.messages.len(),
        1,
        "the timed-out send happened once and was not repeated"
    );

    // A 503 means Google did not act, so even a send is retried.
    let fault = sb
        .fault(
            json!({"provider": "google", "route": "/gmail/*", "method": "POST",
                      "kind": "status", "status": 503, "count": 1}),
        )
        .await;
    google.send_mail(&alice, &mail).await.unwrap();
    assert_eq!(sb.fired(&fault).await, 1);
    assert_eq!(
        google
            .list_messages(&bob, &MessageQuery::default())
            .await
            .unwrap()
            .messages
            .len(),
        2
    );
}

fn event(summary: &str, start: &str, end: &str) -> EventInput {
    EventInput {
        summary: summary.into(),
        start: EventTime {
            date_time: Some(start.into()),
            ..Default::default()
        },
        end: EventTime {
            date_time: Some(end.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn calendar_events_persist_per_user() {
    let sb = start_sandbox(&[]).await;
    let google = sb.google();
    let alice = google
        .ensure_user(&new_user(&google, "alice", "a"))
        .await
        .unwrap()
        .0
        .primary_email;
    let bob = google
        .ensure_user(&new_user(&google, "bob", "b"))
        .await
        .unwrap()
        .0
        .primary_email;

    let later = google
        .insert_event(
            &alice,
            &event("Review", "2030-01-02T15:00:00Z", "2030-01-02T16:00:00Z"),
        )
        .await
        .unwrap();
    let mut first = event(
        "Standup",
        "2030-01-02T09:00:00+00:00",
        "2030-01-02T09:15:00+00:00",
    );
    first.id = Some(event_id_for("request-42"));
    let standup = google.insert_event(&alice, &first).await.unwrap();
    assert_eq!(standup.id, event_id_for("request-42"));
    // The same idempotency key cannot create a second event.
    assert!(matches!(
        google.insert_event(&alice, &first).await,
        Err(GoogleError::AlreadyExists(_))
    ));

    let listed = google
        .list_events(&alice, &EventQuery::default())
        .await
        .unwrap();
    let summaries: Vec<&str> = listed.items.iter().map(|e| e.summary.as_str()).collect();
    assert_eq!(summaries, vec!["Standup", "Review"]);
    let window = EventQuery {
        time_min: Some("2030-01-02T12:00:00Z".into()),
        ..Default::default()
    };
    assert_eq!(
        google
            .list_events(&alice, &window)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert!(google
        .list_events(&bob, &EventQuery::default())
        .await
        .unwrap()
        .items
        .is_empty());

    let mut moved = event(
        "Review (moved)",
        "2030-01-03T15:00:00Z",
        "2030-01-03T16:00:00Z",
    );
    moved.location = Some("Room 4".into());
    let updated = google
        .update_event(&alice, &later.id, &moved)
        .await
        .unwrap();
    assert_eq!(updated.summary, "Review (moved)");
    assert_eq!(updated.location.as_deref(), Some("Room 4"));
    // Bob cannot touch Alice's event through his own calendar.
    assert!(matches!(
        google.update_event(&bob, &later.id, &moved).await,
        Err(GoogleError::NotFound(_))
    ));

    google.delete_event(&alice, &standup.id).await.unwrap();
    assert!(matches!(
        google.delete_event(&alice, &standup.id).await,
        Err(GoogleError::NotFound(_))
    ));
    let left = google
        .list_events(&alice, &EventQuery::default())
        .await
        .unwrap();
    assert_eq!(left.items.len(), 1);
    assert_eq!(left.items[0].summary, "Review (moved)");

    let bad = event("Backwards", "2030-01-02T10:00:00Z", "2030-01-02T09:00:00Z");
    let err = google.insert_event(&alice, &bad).await.unwrap_err();
    assert!(
        matches!(err, GoogleError::Api { status: 400, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn access_tokens_are_cached_until_they_expire() {
    let sb = start_sandbox(&[]).await;
    let google = sb.google();
    let spec = new_user(&google, "cache", "user-1");
    google.ensure_user(&spec).await.unwrap();
    // With the token endpoint down, calls that reuse the cached admin token still work...
    let fault = sb
        .fault(json!({"provider": "google", "route": "/token", "kind": "status", "status": 500}))
        .await;
    for _ in 0..3 {
        google.get_user(&spec.primary_email).await.unwrap();
    }
    assert_eq!(sb.fired(&fault).await, 0);
    // ...while a first call as another user needs a token and fails, retryably.
    let err = google
        .list_messages(&spec.primary_email, &MessageQuery::default())
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(sb.fired(&fault).await >= 1);
}

#[tokio::test]
async fn without_a_configured_admin_any_non_user_may_administer_the_sandbox() {
    let sb = start_sandbox_with(&[], |c| c.google.admin_email.clear()).await;
    let google = sb.google();
    let (user, _) = google
        .ensure_user(&new_user(&google, "noadmin", "user-1"))
        .await
        .unwrap();
    assert_eq!(
        google.get_user(&user.primary_email).await.unwrap().id,
        user.id
    );
}
