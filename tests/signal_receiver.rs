//! The durable Signal receiver per number, through the real processes: restate-server, the
//! workflows process, the api and the sandbox's signal-cli. Messages are injected at the
//! sandbox as if sent from outside; the receiver takes them on its own timer (shortened here)
//! and Dex reads them from Postgres with a cursor.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::stack::Stack;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

const WAIT: Duration = Duration::from_secs(30);
const FAST: &[(&str, &str)] = &[
    ("SIGNAL_RECEIVE_INTERVAL_MS", "150"),
    ("SIGNAL_RECEIVE_MAX_INTERVAL_MS", "600"),
];
const OUTSIDER: &str = "+15550107777";

/// Polls `check` until it yields a value, failing after `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Dex {
    user: uuid::Uuid,
    token: String,
    identity: uuid::Uuid,
    number: String,
}

/// A user signed up through the api, provisioned, with Signal registered.
async fn dex(stack: &Stack, email: &str) -> Dex {
    let res = stack
        .http
        .post(format!("{}/v1/auth/register", stack.api))
        .json(&json!({"email": email, "password": "correct horse 42", "name": "Test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let session: Value = res.json().await.unwrap();
    let user: uuid::Uuid = session["user"]["id"]
        .as_str()
        .or(session["user_id"].as_str())
        .expect("user id")
        .parse()
        .unwrap();
    let token = session["access_token"]
        .as_str()
        .or(session["access"].as_str())
        .expect("access token")
        .to_owned();
    stack.provision(user).await;
    let i = stack.wait_signal(user, "registered", WAIT).await;
    Dex {
        user,
        token,
        identity: i.id,
        number: i.phone_number.unwrap(),
    }
}

async fn inject(stack: &Stack, to: &str, text: &str) {
    let res = stack
        .sandbox
        .control(
            reqwest::Method::POST,
            "/_sandbox/signal/inbound",
            json!({"from": OUTSIDER, "to": to, "text": text}),
        )
        .await;
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
}

/// Bodies stored for the identity, in cursor order.
async fn stored(stack: &Stack, identity: uuid::Uuid) -> Vec<String> {
    sqlx::query_scalar("SELECT body FROM signal_messages WHERE identity_id = $1 ORDER BY id")
        .bind(identity)
        .fetch_all(&stack.db.pool)
        .await
        .unwrap()
}

/// Messages waiting at signal-cli for `number`.
async fn pending_at_signal_cli(stack: &Stack, number: &str) -> u64 {
    stack.sandbox.signal_accounts(number).await[0]["pending_messages"]
        .as_u64()
        .unwrap()
}

async fn read(stack: &Stack, d: &Dex, after: Option<i64>) -> Value {
    let path = match after {
        Some(a) => format!("/v1/signal/messages?after={a}"),
        None => "/v1/signal/messages".to_owned(),
    };
    let res = stack
        .http
        .get(format!("{}{path}", stack.api))
        .bearer_auth(&d.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn bodies(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"].as_str().unwrap().to_owned())
        .collect()
}

/// The receiver object's state, from Restate.
async fn receiver_status(stack: &Stack, number: &str) -> Value {
    stack
        .http
        .post(format!(
            "{}/SignalReceiver/{number}/status",
            stack.restate().ingress
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn running(stack: &Stack, number: &str) -> bool {
    receiver_status(stack, number).await["running"] == true
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_wait_for_dex_a_dropped_read_loses_nothing_and_users_stay_apart() {
    let stack = Stack::start(FAST).await;
    let ada = dex(&stack, "ada@example.com").await;
    let bob = dex(&stack, "bob@example.com").await;

    // The receiver runs without Dex ever reading: keep-alive is visible.
    let seen = eventually("a receive for Ada's number", WAIT, || async {
        let v: Value = stack
            .http
            .get(format!("{}/v1/identity/signal", stack.api))
            .bearer_auth(&ada.token)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        v["last_received_at"].as_str().map(str::to_owned)
    })
    .await;
    assert!(!seen.is_empty());

    // Sent while Dex does not poll: taken from signal-cli and stored by the receiver alone.
    let sent: Vec<String> = (1..=5).map(|n| format!("while away {n}")).collect();
    for text in &sent {
        inject(&stack, &ada.number, text).await;
    }
    eventually("the receiver storing all five", WAIT, || async {
        (stored(&stack, ada.identity).await.len() == 5).then_some(())
    })
    .await;
    assert_eq!(pending_at_signal_cli(&stack, &ada.number).await, 0);

    let first = read(&stack, &ada, None).await;
    assert_eq!(bodies(&first), sent);
    assert_eq!(first["data"][0]["from"], OUTSIDER);
    let cursors: Vec<i64> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["cursor"].as_i64().unwrap())
        .collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "{cursors:?}");
    let next = first["next"].as_i64().unwrap();
    assert_eq!(next, *cursors.last().unwrap());
    // Reading acknowledged nothing.
    assert_eq!(bodies(&read(&stack, &ada, None).await), sent);

    // A read whose client goes away before the body: the same cursor gets the messages.
    let later: Vec<String> = (1..=3).map(|n| format!("later {n}")).collect();
    for text in &later {
        inject(&stack, &ada.number, text).await;
    }
    let addr = stack.api.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    conn.write_all(
        format!(
            "GET /v1/signal/messages?after={next} HTTP/1.1\r\nhost: {addr}\r\n\
             authorization: Bearer {}\r\n\r\n",
            ada.token
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    drop(conn);
    let again = eventually("the later messages", WAIT, || async {
        let v = read(&stack, &ada, Some(next)).await;
        (bodies(&v).len() == 3).then_some(v)
    })
    .await;
    assert_eq!(bodies(&again), later);
    // And once more: reads are repeatable.
    assert_eq!(bodies(&read(&stack, &ada, Some(next)).await), later);
    let end = again["next"].as_i64().unwrap();
    let none = read(&stack, &ada, Some(end)).await;
    assert_eq!(none["data"], json!([]));
    assert_eq!(none["next"], end);

    // One user never reads another's messages.
    assert_eq!(read(&stack, &bob, None).await["data"], json!([]));
    inject(&stack, &bob.number, "for Bob only").await;
    eventually("Bob's message", WAIT, || async {
        (bodies(&read(&stack, &bob, None).await) == ["for Bob only"]).then_some(())
    })
    .await;
    // Bob's cursor space does not reach into Ada's messages either.
    assert_eq!(bodies(&read(&stack, &bob, Some(0)).await), ["for Bob only"]);
    let all_ada = bodies(&read(&stack, &ada, None).await);
    assert!(!all_ada.contains(&"for Bob only".to_owned()), "{all_ada:?}");
    assert_eq!(all_ada.len(), 8);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_workflows_and_a_restate_restart_while_receiving_lose_and_duplicate_nothing() {
    let mut stack = Stack::start(FAST).await;
    let ada = dex(&stack, "kill@example.com").await;
    eventually("the receiver running", WAIT, || async {
        running(&stack, &ada.number).await.then_some(())
    })
    .await;

    let sent: Vec<String> = (1..=40).map(|n| format!("message {n:02}")).collect();
    for text in &sent[..10] {
        inject(&stack, &ada.number, text).await;
    }
    eventually("the first messages stored", WAIT, || async {
        (!stored(&stack, ada.identity).await.is_empty()).then_some(())
    })
    .await;
    // Killed while messages keep coming in; more arrive while it is down.
    stack.kill_workflows();
    for text in &sent[10..20] {
        inject(&stack, &ada.number, text).await;
    }
    stack.start_workflows().await;
    for text in &sent[20..30] {
        inject(&stack, &ada.number, text).await;
    }
    // Once more, in the middle of receiving.
    eventually("a receive after the restart", WAIT, || async {
        (stored(&stack, ada.identity).await.len() > 20).then_some(())
    })
    .await;
    stack.kill_workflows();
    stack.start_workflows().await;
    // restate-server killed and restarted on its data: the loop's timer survives.
    eventually("all thirty stored", WAIT, || async {
        (stored(&stack, ada.identity).await.len() == 30).then_some(())
    })
    .await;
    stack.restate_mut().restart().await;
    for text in &sent[30..] {
        inject(&stack, &ada.number, text).await;
    }

    let got = eventually("all forty stored", Duration::from_secs(60), || async {
        let s = stored(&stack, ada.identity).await;
        (s.len() >= 40 && pending_at_signal_cli(&stack, &ada.number).await == 0).then_some(s)
    })
    .await;
    let unique: BTreeSet<&String> = got.iter().collect();
    assert_eq!(got.len(), unique.len(), "duplicates: {got:?}");
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(sorted, sent);
    // Dex reads each exactly once across pages.
    let mut read_all = Vec::new();
    let mut after = None;
    loop {
        let page = stack
            .http
            .get(format!(
                "{}/v1/signal/messages?limit=7{}",
                stack.api,
                after.map(|a| format!("&after={a}")).unwrap_or_default()
            ))
            .bearer_auth(&ada.token)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        let b = bodies(&page);
        if b.is_empty() {
            break;
        }
        read_all.extend(b);
        after = page["next"].as_i64();
    }
    assert_eq!(read_all, got);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn suspension_stops_the_receiver_resumption_restarts_it_deprovisioning_ends_it() {
    let stack = Stack::start(FAST).await;
    let ada = dex(&stack, "pause@example.com").await;
    eventually("the receiver running", WAIT, || async {
        running(&stack, &ada.number).await.then_some(())
    })
    .await;
    let ingress = stack.restate().ingress.clone();
    let lifecycle = |handler: &'static str| {
        let url = format!("{ingress}/IdentityLifecycle/{}/{handler}/send", ada.user);
        let http = stack.http.clone();
        async move {
            let res = http.post(url).send().await.unwrap();
            assert_eq!(res.status(), 202, "Restate accepts the send");
        }
    };

    lifecycle("suspend").await;
    stack.wait_status(ada.user, &["suspended"], WAIT).await;
    let status = eventually("the receiver stopped", WAIT, || async {
        let s = receiver_status(&stack, &ada.number).await;
        (s["running"] == false).then_some(s)
    })
    .await;
    assert!(
        status["last"].as_str().unwrap().contains("suspended"),
        "{status}"
    );
    let row: (bool,) = sqlx::query_as("SELECT running FROM signal_receivers WHERE number = $1")
        .bind(&ada.number)
        .fetch_one(&stack.db.pool)
        .await
        .unwrap();
    assert!(!row.0);
    // While suspended the message waits at signal-cli (nobody takes it).
    inject(&stack, &ada.number, "while suspended").await;
    assert_eq!(pending_at_signal_cli(&stack, &ada.number).await, 1);

    lifecycle("resume").await;
    stack.wait_status(ada.user, &["active"], WAIT).await;
    eventually("the receiver taking the waiting message", WAIT, || async {
        (stored(&stack, ada.identity).await == ["while suspended"]).then_some(())
    })
    .await;
    assert!(running(&stack, &ada.number).await);

    assert_eq!(stack.deprovision(ada.identity).await, 202);
    eventually("the receiver stopped for good", WAIT, || async {
        (!running(&stack, &ada.number).await).then_some(())
    })
    .await;
    stack.stop().await;
}

async fn admin_stale(stack: &Stack, secs: i64) -> Vec<String> {
    let v: Value = stack
        .http
        .get(format!(
            "{}/v1/admin/signal?stale_after_secs={secs}",
            stack.api
        ))
        .bearer_auth(common::api::ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["number"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unregistered_account_fails_signal_with_the_reason_and_operators_see_quiet_numbers() {
    let stack = Stack::start(FAST).await;
    let ada = dex(&stack, "gone@example.com").await;
    inject(&stack, &ada.number, "kept").await;
    eventually("the message stored", WAIT, || async {
        (stored(&stack, ada.identity).await == ["kept"]).then_some(())
    })
    .await;
    // Received from just now: quiet for an hour it is not; quiet for 0 s it is.
    assert!(!admin_stale(&stack, 3600).await.contains(&ada.number));
    assert!(admin_stale(&stack, 0).await.contains(&ada.number));

    // signal-cli loses the account (as when Signal unregisters a number that never received).
    let res = stack
        .http
        .post(format!(
            "{}/signal/v1/unregister/{}",
            stack.sandbox.url, ada.number
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204, "signal-cli forgot the account");
    let i = stack.wait_signal(ada.user, "failed", WAIT).await;
    let why = i.signal_failure_reason.unwrap();
    assert!(why.contains("unregistered"), "{why}");
    assert!(why.contains("re-register"), "{why}");
    eventually("the receiver stopped", WAIT, || async {
        (!running(&stack, &ada.number).await).then_some(())
    })
    .await;
    let v: Value = stack
        .http
        .get(format!("{}/v1/identity/signal", stack.api))
        .bearer_auth(&ada.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["last_received_at"].is_string(), "{v}");
    // What was received stays readable.
    assert_eq!(bodies(&read(&stack, &ada, None).await), ["kept"]);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_older_than_the_retention_are_erased_and_newer_ones_kept() {
    let stack = Stack::start(FAST).await;
    let ada = dex(&stack, "old@example.com").await;
    inject(&stack, &ada.number, "a month ago").await;
    eventually("the message stored", WAIT, || async {
        (stored(&stack, ada.identity).await.len() == 1).then_some(())
    })
    .await;
    // Received 31 days ago (the default retention is 30 days).
    sqlx::query(
        "UPDATE signal_messages SET received_at = now() - interval '31 days' WHERE identity_id = $1",
    )
    .bind(ada.identity)
    .execute(&stack.db.pool)
    .await
    .unwrap();
    // The cursor Dex held for it (a read now would already apply the retention: it receives).
    let next: i64 =
        sqlx::query_scalar("SELECT max(id) FROM signal_messages WHERE identity_id = $1")
            .bind(ada.identity)
            .fetch_one(&stack.db.pool)
            .await
            .unwrap();
    inject(&stack, &ada.number, "today").await;
    eventually("the old message erased, the new one kept", WAIT, || async {
        (stored(&stack, ada.identity).await == ["today"]).then_some(())
    })
    .await;
    // A cursor from before the erase still works.
    assert_eq!(bodies(&read(&stack, &ada, Some(next)).await), ["today"]);
    assert_eq!(bodies(&read(&stack, &ada, None).await), ["today"]);
    stack.stop().await;
}
