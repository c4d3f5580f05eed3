//! Closing an account (`DELETE /v1/me`, the portal's "Close account" form, the CloseAccount
//! workflow) against the real stack: restate-server, the `poindexter workflows` process, the
//! api, a proxy, the sandbox's Stripe, Workspace, Telnyx and Signal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod billing_support;
mod common;
mod oauth_support;
mod proxy_support;

use billing_support::{eventually, Stack};
use chrono::{Duration as ChronoDuration, Utc};
use common::api::Session;
use domain::{Month, OAuthToken, TokenKind};
use oauth_support::{Browser, PASSWORD};
use proxy_support::RunningProxy;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

const INPUT: &str = "poindexter_overage_input_tokens";
const OUTPUT: &str = "poindexter_overage_output_tokens";
const WAIT: Duration = Duration::from_secs(90);

/// Workspace users are kept suspended this long; personal data is erased this long after the
/// closing request (both a few seconds, so the whole life cycle runs inside the test).
fn short_retention() -> [(&'static str, &'static str); 2] {
    [
        ("DEPROVISION_RETENTION_SECS", "2"),
        ("ACCOUNT_RETENTION_SECS", "4"),
    ]
}

struct Owner {
    session: Session,
    user: Uuid,
    email: String,
    key: String,
    oauth: String,
}

/// A registered user with an API key and a connected instance's access token.
async fn owner(stack: &Stack, email: &str) -> Owner {
    let session = stack.register(email).await;
    let user: Uuid = session.user_id.parse().unwrap();
    let res = stack
        .api_post("/v1/api-keys", &session.access, json!({"name": "laptop"}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let key = res.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let oauth = connect_instance(stack, user).await;
    Owner {
        session,
        user,
        email: email.to_owned(),
        key,
        oauth,
    }
}

/// A Dex connected through OAuth: its grant and a live access token, as the token endpoint
/// stores them (the connect flow itself is tested in oauth_protocol).
async fn connect_instance(stack: &Stack, user: Uuid) -> String {
    let pool = &stack.db.pool;
    let client = format!("dex-{}", Uuid::new_v4().simple());
    sqlx::query("INSERT INTO oauth_clients (id, redirect_uri) VALUES ($1, 'http://127.0.0.1/cb')")
        .bind(&client)
        .execute(pool)
        .await
        .unwrap();
    let grant = Uuid::new_v4();
    sqlx::query("INSERT INTO oauth_grants (id, user_id, client_id) VALUES ($1, $2, $3)")
        .bind(grant)
        .bind(user)
        .bind(&client)
        .execute(pool)
        .await
        .unwrap();
    let access = OAuthToken::generate(TokenKind::Access);
    let refresh = OAuthToken::generate(TokenKind::Refresh);
    sqlx::query(
        "INSERT INTO oauth_tokens (id, grant_id, user_id, access_hash, refresh_hash,
             access_expires_at, refresh_expires_at)
         VALUES ($1, $2, $3, $4, $5, now() + interval '1 hour', now() + interval '30 days')",
    )
    .bind(Uuid::new_v4())
    .bind(grant)
    .bind(user)
    .bind(&access.hash().0[..])
    .bind(&refresh.hash().0[..])
    .execute(pool)
    .await
    .unwrap();
    access.expose().to_owned()
}

/// The identity the paid subscription's webhook provisions (the row appears when the webhook
/// has been handled, after checkout returns).
async fn wait_active(stack: &Stack, user: Uuid) -> db::identities::Identity {
    eventually("the identity to be active", WAIT, || async {
        db::identities::find_by_user(&stack.db.pool, user)
            .await
            .unwrap()
            .filter(|i| i.status.as_str() == "active")
    })
    .await
}

async fn delete_me(stack: &Stack, token: &str, body: Value) -> reqwest::Response {
    stack
        .http
        .delete(format!("{}/v1/me", stack.api))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn account_status(stack: &Stack, user: Uuid) -> String {
    sqlx::query_scalar("SELECT status FROM users WHERE id = $1")
        .bind(user)
        .fetch_one(&stack.db.pool)
        .await
        .unwrap()
}

async fn audit_count(stack: &Stack, user: Uuid, action: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE user_id = $1 AND action = $2")
        .bind(user)
        .bind(action)
        .fetch_one(&stack.db.pool)
        .await
        .unwrap()
}

async fn error_message(res: reqwest::Response) -> String {
    let v: Value = res.json().await.unwrap();
    v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn sandbox_addr(stack: &Stack) -> std::net::SocketAddr {
    stack
        .sandbox
        .url
        .trim_start_matches("http://")
        .parse()
        .unwrap()
}

async fn proxy_status(proxy: &RunningProxy, token: &str) -> StatusCode {
    proxy_support::post_chat(proxy, token, "gpt-4o-mini", false)
        .await
        .status()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_or_missing_password_or_a_connected_instance_changes_nothing() {
    // No Restate: had anything been handed over, the answer would be a 503.
    let stack = Stack::start_with(&[], None, false).await;
    let o = owner(&stack, "keep@example.com").await;

    let res = delete_me(&stack, &o.key, json!({"password": "not my password"})).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(error_message(res).await.contains("password is wrong"));
    let res = delete_me(&stack, &o.session.access, json!({})).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(error_message(res).await.contains("needs its password"));
    // A connected Dex cannot close the account, even knowing the password.
    let res = delete_me(&stack, &o.oauth, json!({"password": PASSWORD})).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(error_message(res).await.contains("connected instance"));

    // The portal's form: without its CSRF token, and with a wrong password.
    let browser = Browser::new(&stack.api);
    assert_eq!(
        browser.log_in(&o.email, PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    let page = browser.get("/account").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Close account"), "{}", page.body);
    let no_csrf = browser
        .post_form("/account/close", &[("password", PASSWORD)])
        .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    let wrong = browser
        .post_form(
            "/account/close",
            &[("csrf", &page.csrf()), ("password", "not my password")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(wrong.body.contains("Nothing was changed"), "{}", wrong.body);

    // Nothing changed: still active, every credential still works, nothing recorded.
    assert_eq!(account_status(&stack, o.user).await, "active");
    assert_eq!(
        audit_count(&stack, o.user, "account.closing_requested").await,
        0
    );
    for token in [&o.key, &o.session.access, &o.oauth] {
        let me = stack.api_get("/v1/me", token).await;
        assert_eq!(me.status(), StatusCode::OK);
        let me: Value = me.json().await.unwrap();
        assert_eq!(me["account"]["status"], "active", "{me}");
    }
    assert_eq!(browser.get("/dashboard").await.status, StatusCode::OK);

    // The contract documents it.
    let spec: Value = stack
        .http
        .get(format!("{}/openapi.json", stack.api))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let delete = &spec["paths"]["/v1/me"]["delete"];
    assert!(delete["responses"]["202"].is_object(), "{delete}");
    assert!(delete["responses"]["403"].is_object(), "{delete}");
    stack.stop().await;
}

/// The portal's form closes the account and answers with what happens next, saying once when
/// the personal data is erased, on a page for a person who is now logged out.
#[tokio::test(flavor = "multi_thread")]
async fn closing_from_the_portal_says_what_happens_next_once() {
    let stack = Stack::start(&[]).await;
    let o = owner(&stack, "portal-close@example.com").await;
    let browser = Browser::new(&stack.api);
    assert_eq!(
        browser.log_in(&o.email, PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    let page = browser.get("/account").await;
    assert!(
        page.body.contains("The account is active."),
        "{}",
        page.body
    );
    let closed = browser
        .post_form(
            "/account/close",
            &[("csrf", &page.csrf()), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(closed.status, StatusCode::ACCEPTED, "{}", closed.body);
    assert!(
        closed.body.contains("Your account is closing"),
        "{}",
        closed.body
    );
    assert_eq!(
        closed.body.matches("erased after").count(),
        1,
        "{}",
        closed.body
    );
    assert!(!closed.body.contains("Close my account"), "{}", closed.body);
    assert_eq!(account_status(&stack, o.user).await, "closing");
    // The session ended with it.
    assert_ne!(browser.get("/dashboard").await.status, StatusCode::OK);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn closing_ends_access_at_once_bills_once_deprovisions_and_erases_after_retention() {
    let stack = Stack::start(&short_retention()).await;
    let o = owner(&stack, "close@example.com").await;
    let sub = stack.subscribe_and_pay(&o.session, "basic").await;
    let customer = stack.customer_of(&o.session.user_id).await;
    let identity = wait_active(&stack, o.user).await;
    let phone = identity.phone_number.clone().expect("a number");
    let proxy =
        RunningProxy::start(proxy_support::options(&stack.db.url, sandbox_addr(&stack))).await;
    let browser = Browser::new(&stack.api);
    assert_eq!(
        browser.log_in(&o.email, PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    // Every way in works before.
    for token in [&o.key, &o.oauth] {
        let status = eventually("the proxy to serve", WAIT, || async {
            let s = proxy_status(&proxy, token).await;
            (s == StatusCode::OK).then_some(s)
        })
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    let me: Value = stack.api_get("/v1/me", &o.key).await.json().await.unwrap();
    assert_eq!(me["account"]["status"], "active");

    // This month: 6M input tokens on Basic (5M included) → 1M tokens of overage. And copies
    // of an SMS and a Signal message that erasure must remove.
    let month = Month::containing(Utc::now().date_naive());
    let earlier = (Utc::now() - ChronoDuration::minutes(30)).max(db::usage::bounds(month).0);
    stack
        .insert_usage(&o.session.user_id, earlier, &[(6_000_000, 0)])
        .await;
    sqlx::query(
        "INSERT INTO incoming_sms (id, identity_id, to_number, from_number, body, provider_message_id)
         VALUES ($1, $2, $3, '+15550009999', 'your table is ready', $4)",
    )
    .bind(Uuid::new_v4())
    .bind(identity.id)
    .bind(&phone)
    .bind(format!("msg-{}", Uuid::new_v4()))
    .execute(&stack.db.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO signal_messages (identity_id, number, sender, sent_at_ms, body)
         VALUES ($1, $2, '+15550008888', 1, 'see you at 8')",
    )
    .bind(identity.id)
    .bind(&phone)
    .execute(&stack.db.pool)
    .await
    .unwrap();

    let res = delete_me(&stack, &o.key, json!({"password": PASSWORD})).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let closing: Value = res.json().await.unwrap();
    assert_eq!(closing["account"]["status"], "closing", "{closing}");
    assert!(closing["account"]["erase_after"].is_string(), "{closing}");

    // The moment the api has answered, the api refuses every credential...
    for token in [&o.key, &o.session.access, &o.oauth] {
        assert_eq!(
            stack.api_get("/v1/me", token).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let refreshed = stack
        .http
        .post(format!("{}/v1/auth/refresh", stack.api))
        .json(&json!({"refresh_token": o.session.refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), StatusCode::UNAUTHORIZED);
    let portal = browser.get("/dashboard").await;
    assert_eq!(portal.status, StatusCode::SEE_OTHER);
    assert!(portal.location().unwrap().starts_with("/login"));
    // ...and so does the proxy, once its key table has the NOTIFY (milliseconds).
    for token in [&o.key, &o.oauth] {
        eventually("the proxy to refuse", Duration::from_secs(5), || async {
            (proxy_status(&proxy, token).await == StatusCode::UNAUTHORIZED).then_some(())
        })
        .await;
    }
    // No way back in with the password, and the email stays taken until it is erased.
    let login = stack
        .http
        .post(format!("{}/v1/auth/login", stack.api))
        .json(&json!({"email": o.email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::FORBIDDEN);
    assert!(error_message(login).await.contains("closing"));
    let again = stack
        .http
        .post(format!("{}/v1/auth/register", stack.api))
        .json(&json!({"email": o.email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);

    // Stripe: the overage so far reported, then the subscription canceled.
    eventually("the subscription to be canceled", WAIT, || async {
        let r = stack.stripe_resources().await;
        let s = r["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == sub.as_str())
            .cloned()
            .unwrap();
        (s["status"] == "canceled").then_some(())
    })
    .await;
    // Served in order: the 6M tokens used up the 5M included, so everything after them (the
    // proxied requests above) is overage too.
    let (events_before, input, output): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), sum(input_tokens)::int8, sum(output_tokens)::int8
         FROM usage_events WHERE user_id = $1",
    )
    .bind(o.user)
    .fetch_one(&stack.db.pool)
    .await
    .unwrap();
    assert!(output > 0, "the proxied requests were metered");
    let (overage_in, overage_out) = (input - 5_000_000, output);
    assert_eq!(stack.meter_total(&customer, INPUT).await, overage_in);
    assert_eq!(stack.meter_total(&customer, OUTPUT).await, overage_out);

    // The Workspace user is suspended, then deleted after its retention; the number released.
    let owner_id = o.user.to_string();
    let workspace_user = |r: &Value| {
        r["google"]["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["owner"] == owner_id.as_str())
            .cloned()
    };
    eventually("the Workspace user to be suspended", WAIT, || async {
        let r = stack.sandbox.resources().await;
        workspace_user(&r)
            .filter(|u| u["suspended"] == true)
            .map(|_| ())
    })
    .await;
    eventually("the Workspace user to be deleted", WAIT, || async {
        let r = stack.sandbox.resources().await;
        workspace_user(&r).is_none().then_some(())
    })
    .await;
    let r = stack.sandbox.resources().await;
    assert!(
        !r["telnyx"]["numbers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["phone_number"] == phone.as_str()),
        "the number is released"
    );
    stack.wait_status(o.user, &["deleted"], WAIT).await;

    // After the account's retention period: personal data erased.
    eventually("the account to be closed", WAIT, || async {
        (account_status(&stack, o.user).await == "closed").then_some(())
    })
    .await;
    // What a closing in flight replays, pinned (see tests/journal_shapes.rs): a closing waits
    // out the account's retention, a month in production, across deploys.
    let user_key = o.user.to_string();
    stack
        .wait_invocation_status("CloseAccount", &user_key, "completed")
        .await;
    let journal = common::journal::commands(stack.restate(), "CloseAccount", Some(&user_key)).await;
    let cancel = format!("Run: cancel subscription {sub}");
    let pinned = [
        "Input",
        "Run: end access",
        "Call UsageSync/sync",
        "Call UsageSync/sync",
        &cancel,
        "OneWayCall DeprovisionIdentity/run",
        "AttachInvocation",
        "Run: read the clock (1)",
        "Sleep",
        "Run: erase personal data",
        "Output",
    ];
    // Where deprovisioning outlasted the account's retention (a slow machine), the clock read
    // after it is already past the deadline and the workflow does not sleep.
    let without_sleep: Vec<&str> = pinned.iter().copied().filter(|c| *c != "Sleep").collect();
    let pinned = match journal.iter().any(|c| c == "Sleep") {
        true => &pinned[..],
        false => &without_sleep[..],
    };
    common::journal::assert_pinned("CloseAccount", &journal, pinned);
    let (email, name, hash): (String, Option<String>, String) =
        sqlx::query_as("SELECT email, name, password_hash FROM users WHERE id = $1")
            .bind(o.user)
            .fetch_one(&stack.db.pool)
            .await
            .unwrap();
    assert_eq!(email, format!("erased-{}@invalid", o.user));
    assert_eq!(name, None);
    assert_eq!(hash, "");
    let count = |sql: &'static str| {
        let pool = stack.db.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(o.user)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        count("SELECT count(*) FROM incoming_sms s JOIN identities i ON i.id = s.identity_id WHERE i.user_id = $1").await,
        0
    );
    assert_eq!(
        count("SELECT count(*) FROM signal_messages s JOIN identities i ON i.id = s.identity_id WHERE i.user_id = $1").await,
        0
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM audit_log WHERE user_id = $1 AND detail <> '{}'::jsonb
               AND action <> 'account.closed'"
        )
        .await,
        0,
        "audit entries keep what and when, not the details"
    );
    let closed: Value = sqlx::query_scalar(
        "SELECT detail FROM audit_log WHERE user_id = $1 AND action = 'account.closed'",
    )
    .bind(o.user)
    .fetch_one(&stack.db.pool)
    .await
    .unwrap();
    assert_eq!(closed, json!({"left_behind": [], "cancel_ignored": false}));
    // Kept for the law, under the uuid: usage, the month's reported overage, the subscription
    // and the Stripe customer.
    assert_eq!(
        count("SELECT count(*) FROM usage_events WHERE user_id = $1").await,
        events_before
    );
    let reported: i64 = sqlx::query_scalar(
        "SELECT reported_input_tokens FROM usage_monthly WHERE user_id = $1 AND month = $2",
    )
    .bind(o.user)
    .bind(month.first_day())
    .fetch_one(&stack.db.pool)
    .await
    .unwrap();
    assert_eq!(reported, overage_in);
    assert_eq!(
        stack.subscription_row(&o.session.user_id).await,
        Some(("basic".into(), "canceled".into()))
    );
    assert_eq!(stack.customer_of(&o.session.user_id).await, customer);

    // Billed once: a later sync of the month (the hourly one, the month's last) sends nothing.
    let rerun = stack
        .admin_post(
            &format!("/v1/admin/usage-sync/{}/{month}", o.user),
            json!({}),
        )
        .await;
    assert_eq!(rerun.status(), StatusCode::OK);
    let rerun: Value = rerun.json().await.unwrap();
    assert!(rerun["sent"].as_array().unwrap().is_empty(), "{rerun}");
    assert_eq!(stack.meter_total(&customer, INPUT).await, overage_in);
    assert_eq!(stack.meter_total(&customer, OUTPUT).await, overage_out);

    // The email is free again: a new account, a new uuid.
    let fresh = stack.register(&o.email).await;
    assert_ne!(fresh.user_id, o.session.user_id);
    proxy.stop().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_request_is_harmless_and_a_crash_mid_closing_finishes_it_once() {
    let mut stack = Stack::start(&short_retention()).await;
    let o = owner(&stack, "twice@example.com").await;
    let sub = stack.subscribe_and_pay(&o.session, "basic").await;
    let customer = stack.customer_of(&o.session.user_id).await;
    wait_active(&stack, o.user).await;
    let earlier = (Utc::now() - ChronoDuration::minutes(30))
        .max(db::usage::bounds(Month::containing(Utc::now().date_naive())).0);
    stack
        .insert_usage(&o.session.user_id, earlier, &[(6_000_000, 0)])
        .await;
    // Stripe takes the overage but answers late, so the workflows process can die between
    // the report and its record.
    stack
        .control(
            "/faults",
            json!({"path": "/v1/billing/meter_events", "delay_ms": 120000, "count": 1}),
        )
        .await;

    // Two requests (a double click, a retry) that both got past authentication: hold the
    // user's row so both wait on it, then let them through one after the other.
    let mut lock = stack.db.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE")
        .bind(o.user)
        .execute(&mut *lock)
        .await
        .unwrap();
    let first = tokio::spawn({
        let (http, url, key) = (stack.http.clone(), stack.api.clone(), o.key.clone());
        async move {
            http.delete(format!("{url}/v1/me"))
                .bearer_auth(key)
                .json(&json!({"password": PASSWORD}))
                .send()
                .await
                .unwrap()
        }
    });
    let second = tokio::spawn({
        let (http, url, token) = (
            stack.http.clone(),
            stack.api.clone(),
            o.session.access.clone(),
        );
        async move {
            http.delete(format!("{url}/v1/me"))
                .bearer_auth(token)
                .json(&json!({"password": PASSWORD}))
                .send()
                .await
                .unwrap()
        }
    });
    // Both requests and the workflow's first step wait for the row.
    eventually("three waiters on the user's row", WAIT, || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&stack.db.pool)
        .await
        .unwrap();
        (n >= 3).then_some(())
    })
    .await;
    lock.commit().await.unwrap();
    let (a, b) = (first.await.unwrap(), second.await.unwrap());
    assert_eq!(a.status(), StatusCode::ACCEPTED);
    assert_eq!(b.status(), StatusCode::ACCEPTED);
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    assert_eq!(a["account"], b["account"], "the same state");
    assert_eq!(a["account"]["status"], "closing");
    assert_eq!(
        audit_count(&stack, o.user, "account.closing_requested").await,
        1
    );

    // Stripe has the overage, the workflow has not recorded it: kill -9, then start again.
    eventually("the overage at Stripe", WAIT, || async {
        (stack.meter_total(&customer, INPUT).await > 0).then_some(())
    })
    .await;
    stack.kill_workflows();
    stack.start_workflows().await;

    eventually("the account to be closed", WAIT, || async {
        (account_status(&stack, o.user).await == "closed").then_some(())
    })
    .await;
    // Once: one closing workflow, one cancellation, the overage counted once, one erasure.
    let runs = stack.invocations("CloseAccount/").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(stack.meter_total(&customer, INPUT).await, 1_000_000);
    let deleted = stack
        .events()
        .await
        .into_iter()
        .filter(|e| {
            e["event"]["type"] == "customer.subscription.deleted"
                && e["event"]["data"]["object"]["id"] == sub.as_str()
        })
        .count();
    assert_eq!(deleted, 1);
    assert_eq!(audit_count(&stack, o.user, "account.closed").await, 1);
    assert_eq!(stack.identity(o.user).await.status, "deleted");
    let (users, numbers) = stack.leftovers(o.user).await;
    assert!(
        users.is_empty() && numbers.is_empty(),
        "{users:?} {numbers:?}"
    );
    stack.stop().await;
}
