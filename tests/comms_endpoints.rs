//! Dex's email, calendar, Signal and SMS endpoints, black-box: the api in-process against a
//! fresh database and the provider sandbox, with two identities seeded through the clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::expect_error;
use common::comms::{world, Dex, World};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

async fn ok_json(res: reqwest::Response, status: StatusCode) -> Value {
    let got = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "unexpected status, body {body}");
    body
}

async fn put(w: &World, path: &str, token: &str, body: Value) -> reqwest::Response {
    w.api
        .client
        .put(w.api.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn inbox(w: &World, who: &Dex) -> Vec<Value> {
    let v = ok_json(
        w.api.get("/v1/email/inbox", Some(&who.token)).await,
        StatusCode::OK,
    )
    .await;
    v["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn two_identities_exchange_mail_and_neither_reads_the_others() {
    let w = world().await;
    let (a, b) = (&w.a, &w.b);

    let sent = ok_json(
        w.api
            .post(
                "/v1/email/send",
                Some(&a.token),
                json!({"to": b.email, "subject": "Lunch on Friday?", "body": "Shall we meet at noon?\nAda"}),
            )
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(sent["from"], a.email.as_str());
    let sent_id = sent["id"].as_str().unwrap().to_owned();

    let b_inbox = inbox(&w, b).await;
    assert_eq!(b_inbox.len(), 1, "{b_inbox:?}");
    assert_eq!(b_inbox[0]["subject"], "Lunch on Friday?");
    assert!(b_inbox[0]["from"].as_str().unwrap().contains(&a.email));
    assert_eq!(b_inbox[0]["unread"], true);
    let received_id = b_inbox[0]["id"].as_str().unwrap().to_owned();

    let message = ok_json(
        w.api
            .get(&format!("/v1/email/messages/{received_id}"), Some(&b.token))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        message["body"].as_str().unwrap().trim_end(),
        "Shall we meet at noon?\nAda"
    );
    assert!(message["to"].as_str().unwrap().contains(&b.email));

    // The sender's inbox holds nothing; its sent copy is readable by the sender only.
    assert!(inbox(&w, a).await.is_empty());
    ok_json(
        w.api
            .get(&format!("/v1/email/messages/{sent_id}"), Some(&a.token))
            .await,
        StatusCode::OK,
    )
    .await;
    for (who, id) in [(a, &received_id), (b, &sent_id)] {
        let path = format!("/v1/email/messages/{id}");
        expect_error(
            w.api.get(&path, Some(&who.token)).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        expect_error(
            w.api.delete(&path, Some(&who.token)).await,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    // A's failed delete did not touch B's message.
    assert_eq!(inbox(&w, b).await.len(), 1);

    // B replies; both directions work.
    ok_json(
        w.api
            .post(
                "/v1/email/send",
                Some(&b.token),
                json!({"to": [a.email], "subject": "Re: Lunch", "body": "Noon works."}),
            )
            .await,
        StatusCode::OK,
    )
    .await;
    let a_inbox = inbox(&w, a).await;
    assert_eq!(a_inbox.len(), 1);
    assert_eq!(a_inbox[0]["subject"], "Re: Lunch");

    // Deleting moves the message out of the inbox.
    let path = format!("/v1/email/messages/{received_id}");
    assert_eq!(
        w.api.delete(&path, Some(&b.token)).await.status(),
        StatusCode::NO_CONTENT
    );
    assert!(inbox(&w, b).await.is_empty());
    w.api.stop().await;
}

#[tokio::test]
async fn the_inbox_is_paginated() {
    let w = world().await;
    for i in 0..3 {
        ok_json(
            w.api
                .post(
                    "/v1/email/send",
                    Some(&w.a.token),
                    json!({"to": w.b.email, "subject": format!("note {i}"), "body": "x"}),
                )
                .await,
            StatusCode::OK,
        )
        .await;
    }
    let first = ok_json(
        w.api.get("/v1/email/inbox?limit=2", Some(&w.b.token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    assert_eq!(first["data"][0]["subject"], "note 2", "newest first");
    let token = first["next_page_token"].as_str().expect("a second page");
    let second = ok_json(
        w.api
            .get(
                &format!("/v1/email/inbox?limit=2&page_token={token}"),
                Some(&w.b.token),
            )
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(second["data"].as_array().unwrap().len(), 1);
    assert_eq!(second["data"][0]["subject"], "note 0");
    assert!(second["next_page_token"].is_null());
    w.api.stop().await;
}

fn event(summary: &str, start: &str, end: &str) -> Value {
    json!({"summary": summary, "start": start, "end": end, "location": "Room 1",
           "attendees": ["guest@example.com"]})
}

async fn events(w: &World, who: &Dex) -> Vec<Value> {
    let v = ok_json(
        w.api.get("/v1/calendar/events", Some(&who.token)).await,
        StatusCode::OK,
    )
    .await;
    v["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn calendar_events_are_created_listed_updated_and_deleted_per_identity() {
    let w = world().await;
    let (a, b) = (&w.a, &w.b);
    let later = ok_json(
        w.api
            .post(
                "/v1/calendar/events",
                Some(&a.token),
                event("Dentist", "2026-12-02T09:00:00Z", "2026-12-02T10:00:00Z"),
            )
            .await,
        StatusCode::CREATED,
    )
    .await;
    let sooner = ok_json(
        w.api
            .post(
                "/v1/calendar/events",
                Some(&a.token),
                event(
                    "Standup",
                    "2026-12-01T09:00:00+01:00",
                    "2026-12-01T09:15:00+01:00",
                ),
            )
            .await,
        StatusCode::CREATED,
    )
    .await;
    let id = later["id"].as_str().unwrap().to_owned();
    assert_eq!(later["summary"], "Dentist");
    assert_eq!(later["attendees"], json!(["guest@example.com"]));

    let listed = events(&w, a).await;
    let summaries: Vec<&str> = listed
        .iter()
        .map(|e| e["summary"].as_str().unwrap())
        .collect();
    assert_eq!(summaries, ["Standup", "Dentist"], "ordered by start");
    assert!(events(&w, b).await.is_empty(), "B sees none of A's events");

    let windowed = ok_json(
        w.api
            .get(
                "/v1/calendar/events?time_min=2026-12-02T00:00:00Z&time_max=2026-12-03T00:00:00Z",
                Some(&a.token),
            )
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(windowed["data"].as_array().unwrap().len(), 1);
    assert_eq!(windowed["data"][0]["id"], id.as_str());

    let path = format!("/v1/calendar/events/{id}");
    let moved = ok_json(
        put(
            &w,
            &path,
            &a.token,
            event(
                "Dentist (moved)",
                "2026-12-03T14:00:00Z",
                "2026-12-03T15:00:00Z",
            ),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(moved["id"], id.as_str());
    let listed = events(&w, a).await;
    let dentist = listed.iter().find(|e| e["id"] == id.as_str()).unwrap();
    assert_eq!(dentist["summary"], "Dentist (moved)");
    assert!(dentist["start"]
        .as_str()
        .unwrap()
        .starts_with("2026-12-03T14:00:00"));

    // B can neither change nor delete A's event.
    expect_error(
        put(
            &w,
            &path,
            &b.token,
            event("Hijacked", "2026-12-03T14:00:00Z", "2026-12-03T15:00:00Z"),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect_error(
        w.api.delete(&path, Some(&b.token)).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(events(&w, a).await.len(), 2);

    assert_eq!(
        w.api.delete(&path, Some(&a.token)).await.status(),
        StatusCode::NO_CONTENT
    );
    let listed = events(&w, a).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], sooner["id"]);
    expect_error(
        w.api.delete(&path, Some(&a.token)).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    w.api.stop().await;
}

#[tokio::test]
async fn a_create_repeated_with_the_same_idempotency_key_makes_one_event() {
    let w = world().await;
    let create = || async {
        w.api
            .client
            .post(w.api.url("/v1/calendar/events"))
            .bearer_auth(&w.a.token)
            .header("idempotency-key", "dex-req-42")
            .json(&event(
                "Call mum",
                "2026-12-05T18:00:00Z",
                "2026-12-05T18:30:00Z",
            ))
            .send()
            .await
            .unwrap()
    };
    let first = ok_json(create().await, StatusCode::CREATED).await;
    let second = ok_json(create().await, StatusCode::CREATED).await;
    assert_eq!(first["id"], second["id"]);
    assert_eq!(events(&w, &w.a).await.len(), 1);
    w.api.stop().await;
}

#[tokio::test]
async fn signal_messages_go_between_identities_and_stay_with_their_recipient() {
    let w = world().await;
    let (a, b) = (&w.a, &w.b);
    let sent = ok_json(
        w.api
            .post(
                "/v1/signal/send",
                Some(&a.token),
                json!({"to": b.number, "message": "Hi Bob, it's Ada's Dex"}),
            )
            .await,
        StatusCode::OK,
    )
    .await;
    assert!(sent["timestamp"].as_i64().unwrap() > 0);

    // A receives nothing (and does not consume B's messages).
    let a_msgs = ok_json(
        w.api.get("/v1/signal/messages", Some(&a.token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(a_msgs["data"], json!([]));

    let b_msgs = ok_json(
        w.api.get("/v1/signal/messages", Some(&b.token)).await,
        StatusCode::OK,
    )
    .await;
    let data = b_msgs["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["from"], a.number.as_str());
    assert_eq!(data[0]["message"], "Hi Bob, it's Ada's Dex");
    assert!(data[0]["cursor"].as_i64().unwrap() > 0);
    // Reading acknowledges nothing: the same read answers the same; after `next`, nothing.
    let again = ok_json(
        w.api.get("/v1/signal/messages", Some(&b.token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(again["data"], b_msgs["data"]);
    let next = b_msgs["next"].as_i64().unwrap();
    let after = ok_json(
        w.api
            .get(&format!("/v1/signal/messages?after={next}"), Some(&b.token))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(after["data"], json!([]));
    assert_eq!(after["next"], next);

    ok_json(
        w.api
            .post(
                "/v1/signal/send",
                Some(&b.token),
                json!({"to": a.number, "message": "Hello back"}),
            )
            .await,
        StatusCode::OK,
    )
    .await;
    let a_msgs = ok_json(
        w.api.get("/v1/signal/messages", Some(&a.token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(a_msgs["data"][0]["message"], "Hello back");

    let contacts = ok_json(
        w.api.get("/v1/signal/contacts", Some(&b.token)).await,
        StatusCode::OK,
    )
    .await;
    let numbers: Vec<&str> = contacts["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, [a.number.as_str()]);

    // A recipient who is not on Signal: the provider's refusal, not a server error.
    let err = expect_error(
        w.api
            .post(
                "/v1/signal/send",
                Some(&a.token),
                json!({"to": "+15550009999", "message": "hi"}),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Unregistered"),
        "{err}"
    );
    w.api.stop().await;
}

async fn sms_of(w: &World, who: &Dex) -> Vec<Value> {
    let v = ok_json(
        w.api.get("/v1/sms/messages", Some(&who.token)).await,
        StatusCode::OK,
    )
    .await;
    v["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_sms_to_an_identity_arrives_through_the_signed_webhook_and_is_listed_for_it_only() {
    let w = world().await;
    assert!(sms_of(&w, &w.a).await.is_empty());
    let resp =
        w.sb.control(
            reqwest::Method::POST,
            "/_sandbox/telnyx/inbound",
            json!({"from": "+15557654321", "to": w.a.number, "text": "Your table is ready"}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let mut listed = Vec::new();
    for _ in 0..50 {
        listed = sms_of(&w, &w.a).await;
        if !listed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(listed.len(), 1, "the SMS never reached the api");
    assert_eq!(listed[0]["from"], "+15557654321");
    assert_eq!(listed[0]["to"], w.a.number.as_str());
    assert_eq!(listed[0]["body"], "Your table is ready");
    assert!(sms_of(&w, &w.b).await.is_empty(), "B must not see A's SMS");
    w.api.stop().await;
}

#[tokio::test]
async fn sms_pages_go_from_newest_to_oldest() {
    let w = world().await;
    for i in 0..3 {
        w.sb.control(
            reqwest::Method::POST,
            "/_sandbox/telnyx/inbound",
            json!({"from": "+15557654321", "to": w.b.number, "text": format!("sms {i}")}),
        )
        .await;
        // One at a time, so they are stored in order.
        for _ in 0..50 {
            if sms_of(&w, &w.b).await.len() == i + 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let first = ok_json(
        w.api
            .get("/v1/sms/messages?limit=2", Some(&w.b.token))
            .await,
        StatusCode::OK,
    )
    .await;
    let bodies: Vec<&str> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["sms 2", "sms 1"]);
    let before = first["next_before"].as_str().unwrap();
    let second = ok_json(
        w.api
            .get(
                &format!("/v1/sms/messages?limit=2&before={before}"),
                Some(&w.b.token),
            )
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(second["data"][0]["body"], "sms 0");
    assert!(second["next_before"].is_null());
    w.api.stop().await;
}

/// Every communication endpoint, with a body where it needs one.
fn endpoints(w: &World) -> Vec<(reqwest::Method, String, Option<Value>)> {
    use reqwest::Method;
    let ev = event("x", "2026-12-02T09:00:00Z", "2026-12-02T10:00:00Z");
    vec![
        (
            Method::POST,
            "/v1/email/send".into(),
            Some(json!({"to": w.b.email, "subject": "s", "body": "b"})),
        ),
        (Method::GET, "/v1/email/inbox".into(), None),
        (Method::GET, "/v1/email/messages/abc123".into(), None),
        (Method::DELETE, "/v1/email/messages/abc123".into(), None),
        (Method::GET, "/v1/calendar/events".into(), None),
        (Method::POST, "/v1/calendar/events".into(), Some(ev.clone())),
        (Method::PUT, "/v1/calendar/events/abcdef".into(), Some(ev)),
        (Method::DELETE, "/v1/calendar/events/abcdef".into(), None),
        (
            Method::POST,
            "/v1/signal/send".into(),
            Some(json!({"to": w.b.number, "message": "m"})),
        ),
        (Method::GET, "/v1/signal/messages".into(), None),
        (Method::GET, "/v1/signal/contacts".into(), None),
        (Method::GET, "/v1/sms/messages".into(), None),
    ]
}

async fn call(
    w: &World,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = w
        .api
        .client
        .request(method, w.api.url(path))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn an_identity_that_is_not_active_gets_409_and_no_identity_gets_409_too() {
    let w = world().await;
    let pool = &w.api.db.pool;
    for status in ["provisioning", "suspended", "failed"] {
        db::identities::set_status(pool, w.a.identity_id, status.parse().unwrap(), None)
            .await
            .unwrap();
        for (method, path, body) in endpoints(&w) {
            let err = expect_error(
                call(&w, &w.a.token, method.clone(), &path, body).await,
                StatusCode::CONFLICT,
            )
            .await;
            let message = err["error"]["message"].as_str().unwrap();
            assert!(message.contains(status), "{method} {path}: {message}");
        }
    }
    // Nothing was sent while A was suspended.
    assert!(inbox(&w, &w.b).await.is_empty());

    let newcomer = w.api.register("carol@example.com").await;
    for (method, path, body) in endpoints(&w) {
        let err = expect_error(
            call(&w, &newcomer.access, method.clone(), &path, body).await,
            StatusCode::CONFLICT,
        )
        .await;
        assert!(
            err["error"]["message"]
                .as_str()
                .unwrap()
                .contains("subscribe"),
            "{method} {path}: {err}"
        );
    }
    // Not authenticated at all: 401 before anything else.
    for (method, path, body) in endpoints(&w) {
        let mut req = w.api.client.request(method, w.api.url(&path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        assert_eq!(
            req.send().await.unwrap().status(),
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }

    // Active again, but Signal not registered: Signal answers 409, mail works.
    db::identities::set_status(
        pool,
        w.a.identity_id,
        db::status::IdentityStatus::Active,
        None,
    )
    .await
    .unwrap();
    db::identities::set_signal(
        pool,
        w.a.identity_id,
        db::status::SignalStatus::Pending,
        None,
    )
    .await
    .unwrap();
    let err = expect_error(
        w.api
            .post(
                "/v1/signal/send",
                Some(&w.a.token),
                json!({"to": w.b.number, "message": "m"}),
            )
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        err["error"]["message"].as_str().unwrap().contains("Signal"),
        "{err}"
    );
    ok_json(
        w.api.get("/v1/email/inbox", Some(&w.a.token)).await,
        StatusCode::OK,
    )
    .await;
    w.api.stop().await;
}

#[tokio::test]
async fn bad_input_is_a_400_naming_the_field() {
    let w = world().await;
    let t = &w.a.token;
    let long_subject = "s".repeat(999);
    let big_body = "b".repeat(64 * 1024 + 1);
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "POST",
            "/v1/email/send",
            json!({"to": "not-an-address", "subject": "s", "body": "b"}),
            "to",
        ),
        (
            "POST",
            "/v1/email/send",
            json!({"to": ["a@example.com", "b@"], "subject": "s", "body": "b"}),
            "to",
        ),
        (
            "POST",
            "/v1/email/send",
            json!({"to": [], "subject": "s", "body": "b"}),
            "to",
        ),
        (
            "POST",
            "/v1/email/send",
            json!({"to": w.b.email, "subject": long_subject, "body": "b"}),
            "subject",
        ),
        (
            "POST",
            "/v1/email/send",
            json!({"to": w.b.email, "subject": "a\r\nBcc: x@example.com", "body": "b"}),
            "subject",
        ),
        (
            "POST",
            "/v1/email/send",
            json!({"to": w.b.email, "body": "b"}),
            "subject",
        ),
        (
            "POST",
            "/v1/email/send",
            json!({"to": w.b.email, "subject": "s", "body": 5}),
            "body",
        ),
        (
            "POST",
            "/v1/calendar/events",
            json!({"summary": "x", "start": "tomorrow", "end": "2026-12-02T10:00:00Z"}),
            "start",
        ),
        (
            "POST",
            "/v1/calendar/events",
            json!({"summary": "x", "start": "2026-12-02T10:00:00Z", "end": "2026-12-02T09:00:00Z"}),
            "end",
        ),
        (
            "POST",
            "/v1/calendar/events",
            json!({"summary": "x", "start": "2026-12-02T10:00:00Z", "end": "2026-12-02T10:00:00Z"}),
            "end",
        ),
        (
            "POST",
            "/v1/calendar/events",
            json!({"summary": "", "start": "2026-12-02T09:00:00Z", "end": "2026-12-02T10:00:00Z"}),
            "summary",
        ),
        (
            "POST",
            "/v1/calendar/events",
            json!({"summary": "x", "start": "2026-12-02T09:00:00Z", "end": "2026-12-02T10:00:00Z", "attendees": ["nope"]}),
            "attendees",
        ),
        (
            "PUT",
            "/v1/calendar/events/abcdef",
            json!({"summary": "x", "start": "2026-12-02T09:00:00Z", "end": "2026-12-02 10:00"}),
            "end",
        ),
        (
            "POST",
            "/v1/signal/send",
            json!({"to": "5551234567", "message": "m"}),
            "to",
        ),
        (
            "POST",
            "/v1/signal/send",
            json!({"to": "+1 555 123 4567", "message": "m"}),
            "to",
        ),
        (
            "POST",
            "/v1/signal/send",
            json!({"to": w.b.number, "message": ""}),
            "message",
        ),
        (
            "POST",
            "/v1/signal/send",
            json!({"to": w.b.number, "message": "m".repeat(4097)}),
            "message",
        ),
        ("GET", "/v1/email/inbox?limit=0", Value::Null, "limit"),
        ("GET", "/v1/email/inbox?limit=many", Value::Null, "limit"),
        (
            "GET",
            "/v1/calendar/events?time_min=yesterday",
            Value::Null,
            "time_min",
        ),
        (
            "GET",
            "/v1/calendar/events?time_min=2026-12-02T00:00:00Z&time_max=2026-12-01T00:00:00Z",
            Value::Null,
            "time_max",
        ),
        ("GET", "/v1/sms/messages?limit=1000", Value::Null, "limit"),
        ("GET", "/v1/sms/messages?before=xyz", Value::Null, "before"),
    ];
    for (method, path, body, field) in cases {
        let method: reqwest::Method = method.parse().unwrap();
        let body = (!body.is_null()).then_some(body);
        let err = expect_error(
            call(&w, t, method.clone(), path, body.clone()).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(
            err["error"]["field"], field,
            "{method} {path} {body:?}: {err}"
        );
    }
    // A body over the api's 64 KiB limit is refused before it is read.
    let res = w
        .api
        .post(
            "/v1/email/send",
            Some(t),
            json!({"to": w.b.email, "subject": "s", "body": big_body}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Nothing bad was sent.
    assert!(inbox(&w, &w.b).await.is_empty());
    w.api.stop().await;
}

#[tokio::test]
async fn a_provider_outage_is_a_503_with_retry_after_and_an_unknown_id_is_404() {
    let w = world().await;
    w.sb.fault(json!({"provider": "google", "route": "/gmail/*", "kind": "status", "status": 503}))
        .await;
    let res = w.api.get("/v1/email/inbox", Some(&w.a.token)).await;
    assert_eq!(res.header_retry_after(), Some(5));
    expect_error(res, StatusCode::SERVICE_UNAVAILABLE).await;
    w.sb.fault(json!({"provider": "signal", "route": "/v2/send", "kind": "status", "status": 503}))
        .await;
    let res = w
        .api
        .post(
            "/v1/signal/send",
            Some(&w.a.token),
            json!({"to": w.b.number, "message": "m"}),
        )
        .await;
    expect_error(res, StatusCode::SERVICE_UNAVAILABLE).await;
    w.sb.clear_faults().await;

    expect_error(
        w.api
            .get("/v1/email/messages/ffffffffffffffff", Some(&w.a.token))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect_error(
        w.api
            .get("/v1/email/messages/..%2Fsend", Some(&w.a.token))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    w.api.stop().await;
}

trait RetryAfter {
    fn header_retry_after(&self) -> Option<u64>;
}

impl RetryAfter for reqwest::Response {
    fn header_retry_after(&self) -> Option<u64> {
        self.headers()
            .get("retry-after")?
            .to_str()
            .ok()?
            .parse()
            .ok()
    }
}

#[tokio::test]
async fn the_openapi_contract_lists_every_communication_route() {
    let api = common::api::TestApi::start().await;
    let spec: Value = api.get("/openapi.json", None).await.json().await.unwrap();
    let paths = spec["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/email/send", "post"),
        ("/v1/email/inbox", "get"),
        ("/v1/email/messages/{id}", "get"),
        ("/v1/email/messages/{id}", "delete"),
        ("/v1/calendar/events", "get"),
        ("/v1/calendar/events", "post"),
        ("/v1/calendar/events/{id}", "put"),
        ("/v1/calendar/events/{id}", "delete"),
        ("/v1/signal/send", "post"),
        ("/v1/signal/messages", "get"),
        ("/v1/signal/contacts", "get"),
        ("/v1/sms/messages", "get"),
        ("/webhooks/telnyx", "post"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from /openapi.json"
        );
    }
    // Without Google configured, mail and calendar say so instead of failing obscurely.
    let session = api.register("dana@example.com").await;
    let user_id: uuid::Uuid = session.user_id.parse().unwrap();
    let pool = &api.db.pool;
    let identity = db::identities::begin_provisioning(pool, user_id, "basic")
        .await
        .unwrap()
        .identity;
    db::identities::set_workspace_user(pool, identity.id, Some("dex-x@poindexter.ai"), None, None)
        .await
        .unwrap();
    db::identities::set_status(pool, identity.id, db::status::IdentityStatus::Active, None)
        .await
        .unwrap();
    let err = expect_error(
        api.get("/v1/email/inbox", Some(&session.access)).await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not configured"));
    api.stop().await;
}
