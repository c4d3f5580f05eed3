//! The portal's defences, black-box over HTTP as a browser meets them: CSRF tokens on every
//! state-changing form, one user never reaching another's instances or keys, escaping of
//! what users type, cookie flags, security headers, logout ending the session on the
//! server, login throttling, and the spending cap's API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod oauth_support;

use common::api::{expect_error, TestApi};
use oauth_support::{
    activate_identity, consent_page, email, form_fields, subscribe, AuthRequest, Browser, Page,
    PASSWORD,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

async fn count(pool: &PgPool, sql: &str, user_id: Uuid) -> i64 {
    sqlx::query_scalar(sql)
        .bind(user_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn cap_of(pool: &PgPool, user_id: Uuid) -> Option<i64> {
    sqlx::query_scalar("SELECT spending_cap_microdollars FROM subscriptions WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Whether `text` appears in `html` escaped (named or numeric references) and never raw.
fn escaped_only(html: &str, text: &str) -> bool {
    !html.contains(text) && oauth_support::unescape(html).contains(text)
}

#[tokio::test]
async fn forms_without_the_right_csrf_token_change_nothing() {
    let api = TestApi::start().await;
    let pool = &api.db.pool;
    let browser = Browser::new(&api.base);
    let user = browser.sign_up(pool, "Ada", &email("csrf")).await;
    subscribe(pool, user).await;
    let csrf = browser.get("/keys").await.csrf();
    // A token that is valid, but for another browser.
    let elsewhere = Browser::new(&api.base).csrf().await;
    assert_ne!(elsewhere, csrf);
    let bad: [Option<&str>; 3] = [None, Some("not-a-token"), Some(&elsewhere)];

    for token in bad {
        let mut fields = vec![("name", "stolen")];
        if let Some(t) = token {
            fields.push(("csrf", t));
        }
        let res = browser.post_form("/keys", &fields).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "key with {token:?}");
        assert!(!res.body.contains("pk_live_"));
    }
    let keys_sql = "SELECT count(*) FROM api_keys WHERE user_id = $1";
    assert_eq!(count(pool, keys_sql, user).await, 0);
    let made = browser
        .post_form("/keys", &[("csrf", &csrf), ("name", "laptop")])
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert!(made.body.contains("pk_live_"), "{}", made.body);
    assert_eq!(count(pool, keys_sql, user).await, 1);

    for token in bad {
        let mut fields = vec![("cap", "50")];
        if let Some(t) = token {
            fields.push(("csrf", t));
        }
        let res = browser.post_form("/billing/cap", &fields).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "cap with {token:?}");
    }
    assert_eq!(cap_of(pool, user).await, None);
    let saved = browser
        .post_form("/billing/cap", &[("csrf", &csrf), ("cap", "50")])
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(saved.location(), Some("/billing?saved=1"));
    assert_eq!(cap_of(pool, user).await, Some(50_000_000));

    activate_identity(pool, user).await;
    let req = AuthRequest::new(
        &oauth_support::client_id(),
        "http://127.0.0.1:40000/callback",
        "st",
    );
    let consent = consent_page(&browser, &req).await;
    let fields: Vec<(String, String)> = form_fields(&consent.body, "/oauth/authorize")
        .into_iter()
        .filter(|(k, _)| k != "csrf")
        .chain([("decision".to_owned(), "approve".to_owned())])
        .collect();
    for token in bad {
        let mut fields = fields.clone();
        if let Some(t) = token {
            fields.push(("csrf".into(), t.into()));
        }
        let res = browser.post_pairs("/oauth/authorize", &fields).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "consent with {token:?}");
        assert!(
            res.location().is_none(),
            "consent with {token:?} redirected"
        );
    }
    let codes = "SELECT count(*) FROM oauth_codes WHERE user_id = $1";
    assert_eq!(count(pool, codes, user).await, 0);
    let mut good = fields.clone();
    good.push(("csrf".into(), csrf.clone()));
    let approved = browser.post_pairs("/oauth/authorize", &good).await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.body);
    assert!(approved.location().unwrap().contains("code=pdx_code_"));
    assert_eq!(count(pool, codes, user).await, 1);
    api.stop().await;
}

#[tokio::test]
async fn every_state_changing_form_checks_its_csrf_token() {
    let api = TestApi::start().await;
    let pool = &api.db.pool;
    let browser = Browser::new(&api.base);
    let address = email("forms");
    let user = browser.sign_up(pool, "Ada", &address).await;
    subscribe(pool, user).await;
    let csrf = browser.csrf().await;
    let made = browser
        .post_form("/keys", &[("csrf", &csrf), ("name", "mine")])
        .await;
    assert_eq!(made.status, StatusCode::CREATED);
    let key: Uuid = sqlx::query_scalar("SELECT id FROM api_keys WHERE user_id = $1")
        .bind(user)
        .fetch_one(pool)
        .await
        .unwrap();
    let client = oauth_support::client_id();
    let grant = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO oauth_clients (id, redirect_uri) VALUES ($1, 'http://127.0.0.1:1/cb')",
    )
    .bind(&client)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO oauth_grants (id, user_id, client_id) VALUES ($1, $2, $3)")
        .bind(grant)
        .bind(user)
        .bind(&client)
        .execute(pool)
        .await
        .unwrap();
    let elsewhere = Browser::new(&api.base).csrf().await;

    let forms: [(String, Vec<(&str, &str)>); 7] = [
        ("/logout".into(), vec![]),
        ("/connect/plan".into(), vec![("plan", "basic")]),
        ("/connect/retry".into(), vec![]),
        ("/billing/manage".into(), vec![("intent", "cancel")]),
        ("/billing/cap".into(), vec![("cap", "10")]),
        (format!("/keys/{key}/revoke"), vec![]),
        (format!("/instances/{grant}/disconnect"), vec![]),
    ];
    for (path, fields) in &forms {
        for token in [None, Some(elsewhere.as_str())] {
            let mut fields = fields.clone();
            if let Some(t) = token {
                fields.push(("csrf", t));
            }
            let res = browser.post_form(path, &fields).await;
            assert_eq!(res.status, StatusCode::FORBIDDEN, "{path} with {token:?}");
            assert!(res.location().is_none(), "{path}");
        }
    }
    // Still logged in, and nothing changed.
    assert_eq!(browser.get("/dashboard").await.status, StatusCode::OK);
    let live_key = "SELECT count(*) FROM api_keys WHERE id = $1 AND revoked_at IS NULL";
    let live_grant = "SELECT count(*) FROM oauth_grants WHERE id = $1 AND revoked_at IS NULL";
    assert_eq!(count(pool, live_key, key).await, 1);
    assert_eq!(count(pool, live_grant, grant).await, 1);
    assert_eq!(cap_of(pool, user).await, None);

    // Logging in and signing up need the token too (no login CSRF).
    let fresh = Browser::new(&api.base);
    fresh.get("/login").await;
    for (path, fields) in [
        (
            "/login",
            vec![("email", address.as_str()), ("password", PASSWORD)],
        ),
        (
            "/signup",
            vec![("email", "someone@example.com"), ("password", PASSWORD)],
        ),
    ] {
        let mut with_foreign = fields.clone();
        with_foreign.push(("csrf", &elsewhere));
        for fields in [fields, with_foreign] {
            let res = fresh.post_form(path, &fields).await;
            assert_eq!(res.status, StatusCode::FORBIDDEN, "{path}");
            assert!(fresh.cookie("pdx_session").is_none(), "{path}");
        }
    }
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(users, 1);
    api.stop().await;
}

#[tokio::test]
async fn one_user_never_sees_or_touches_anothers_instances_or_keys() {
    let api = TestApi::start().await;
    let pool = &api.db.pool;
    let a = Browser::new(&api.base);
    let a_id = a.sign_up(pool, "Ada", &email("a")).await;
    let b = Browser::new(&api.base);
    b.sign_up(pool, "Bob", &email("b")).await;

    // A's instance (a grant) and key.
    let client = oauth_support::client_id();
    let grant = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO oauth_clients (id, redirect_uri) VALUES ($1, 'http://127.0.0.1:1/cb')",
    )
    .bind(&client)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO oauth_grants (id, user_id, client_id) VALUES ($1, $2, $3)")
        .bind(grant)
        .bind(a_id)
        .bind(&client)
        .execute(pool)
        .await
        .unwrap();
    let a_csrf = a.get("/keys").await.csrf();
    let made = a
        .post_form("/keys", &[("csrf", &a_csrf), ("name", "ada-secret-key")])
        .await;
    assert_eq!(made.status, StatusCode::CREATED);
    let key: Uuid = sqlx::query_scalar("SELECT id FROM api_keys WHERE user_id = $1")
        .bind(a_id)
        .fetch_one(pool)
        .await
        .unwrap();
    let prefix: String = sqlx::query_scalar("SELECT prefix FROM api_keys WHERE id = $1")
        .bind(key)
        .fetch_one(pool)
        .await
        .unwrap();

    // A sees them; B does not.
    let a_instances = a.get("/instances").await;
    assert!(a_instances.body.contains(&client));
    let b_instances = b.get("/instances").await;
    assert_eq!(b_instances.status, StatusCode::OK);
    assert!(!b_instances.body.contains(&client));
    assert!(!b_instances.body.contains(&grant.to_string()));
    let b_keys = b.get("/keys").await;
    assert!(!b_keys.body.contains("ada-secret-key"));
    assert!(!b_keys.body.contains(&prefix));
    assert!(!b_keys.body.contains(&key.to_string()));

    // B's requests naming A's ids, with B's own valid token, do nothing.
    let b_csrf = b_keys.csrf();
    let res = b
        .post_form(
            &format!("/instances/{grant}/disconnect"),
            &[("csrf", &b_csrf)],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), Some("/instances"));
    let res = b
        .post_form(&format!("/keys/{key}/revoke"), &[("csrf", &b_csrf)])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let live_grant = "SELECT count(*) FROM oauth_grants WHERE id = $1 AND revoked_at IS NULL";
    let live_key = "SELECT count(*) FROM api_keys WHERE id = $1 AND revoked_at IS NULL";
    assert_eq!(count(pool, live_grant, grant).await, 1);
    assert_eq!(count(pool, live_key, key).await, 1);

    // The same requests from A do what they say (so the above proves the scoping).
    let res = a
        .post_form(
            &format!("/instances/{grant}/disconnect"),
            &[("csrf", &a_csrf)],
        )
        .await;
    assert_eq!(res.location(), Some("/instances?disconnected=1"));
    let res = a
        .post_form(&format!("/keys/{key}/revoke"), &[("csrf", &a_csrf)])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(count(pool, live_grant, grant).await, 0);
    assert_eq!(count(pool, live_key, key).await, 0);
    api.stop().await;
}

#[tokio::test]
async fn what_users_type_is_escaped() {
    let api = TestApi::start().await;
    let pool = &api.db.pool;
    let browser = Browser::new(&api.base);
    // Allowed in an address's local part, and markup-significant.
    let odd_email = format!("o'neil&co-{}@example.com", Uuid::new_v4().simple());
    browser
        .sign_up(pool, "<script>alert(1)</script>", &odd_email)
        .await;
    let dash = browser.get("/dashboard").await;
    assert_eq!(dash.status, StatusCode::OK);
    assert!(!dash.body.contains("<script>alert"), "{}", dash.body);
    assert!(
        dash.body.contains("&lt;script&gt;alert(1)")
            || dash.body.contains("&#60;script&#62;alert(1)"),
        "{}",
        dash.body
    );
    assert!(escaped_only(&dash.body, &odd_email), "{}", dash.body);

    // Markup in an email address is refused, and the form shown again escapes it.
    let other = Browser::new(&api.base);
    let csrf = other.csrf().await;
    let markup = "<img src=x onerror=alert(1)>@example.com";
    let res = other
        .post_form(
            "/signup",
            &[
                ("csrf", &csrf),
                ("name", "\"><svg onload=alert(2)>"),
                ("email", markup),
                ("password", PASSWORD),
                ("next", ""),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(other.cookie("pdx_session").is_none());
    assert!(escaped_only(&res.body, "<img src=x"), "{}", res.body);
    assert!(escaped_only(&res.body, "<svg onload"), "{}", res.body);
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(users, 1);

    // A `next` pointing at another site is not followed.
    let res = other
        .post_form(
            "/signup",
            &[
                ("csrf", &csrf),
                ("email", &email("next")),
                ("password", PASSWORD),
                ("next", "//evil.example.com/x"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), Some("/dashboard"));
    api.stop().await;
}

fn flags(set_cookie: &str) -> Vec<String> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_owned())
        .collect()
}

async fn sign_up_answer(browser: &Browser) -> Page {
    let csrf = browser.csrf().await;
    browser
        .post_form(
            "/signup",
            &[
                ("csrf", &csrf),
                ("email", &email("cookie")),
                ("password", PASSWORD),
                ("next", ""),
            ],
        )
        .await
}

#[tokio::test]
async fn session_cookies_are_http_only_lax_and_secure_over_https() {
    let api = TestApi::start().await;
    let browser = Browser::new(&api.base);
    let first = browser.get("/login").await;
    let answer = sign_up_answer(&browser).await;
    for (name, set) in [
        ("pdx_browser", first.set_cookie("pdx_browser")),
        ("pdx_session", answer.set_cookie("pdx_session")),
    ] {
        let set = set.unwrap_or_else(|| panic!("no {name} cookie set"));
        let f = flags(&set);
        for want in ["HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(f.iter().any(|x| x == want), "{name}: {set}");
        }
        assert!(!f.iter().any(|x| x.eq_ignore_ascii_case("Secure")), "{set}");
    }
    api.stop().await;

    let api = TestApi::start_with(&[("PUBLIC_BASE_URL", "https://cloud.example.test")]).await;
    let browser = Browser::new(&api.base);
    let first = browser.get("/login").await;
    let answer = sign_up_answer(&browser).await;
    for (name, set) in [
        ("pdx_browser", first.set_cookie("pdx_browser")),
        ("pdx_session", answer.set_cookie("pdx_session")),
    ] {
        let set = set.unwrap_or_else(|| panic!("no {name} cookie set"));
        let f = flags(&set);
        for want in ["HttpOnly", "SameSite=Lax", "Path=/", "Secure"] {
            assert!(f.iter().any(|x| x == want), "{name}: {set}");
        }
    }
    api.stop().await;
}

fn assert_security_headers(what: &str, page: &Page) {
    let csp = page
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy"));
    assert!(csp.contains("default-src 'self'"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert_eq!(page.header("x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(
        page.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
}

#[tokio::test]
async fn every_portal_page_has_the_security_headers() {
    let api = TestApi::start().await;
    let pool = &api.db.pool;
    let anonymous = Browser::new(&api.base);
    for path in ["/signup", "/login", "/dashboard", "/", "/static/portal.css"] {
        let page = anonymous.get(path).await;
        assert_security_headers(path, &page);
    }
    let browser = Browser::new(&api.base);
    let user = browser.sign_up(pool, "Ada", &email("headers")).await;
    for path in [
        "/dashboard",
        "/billing",
        "/keys",
        "/instances",
        "/activity",
        "/logout",
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert_security_headers(path, &page);
    }
    // The connect flow's pages: plans, the error page, consent, a refused form.
    let req = AuthRequest::new(
        &oauth_support::client_id(),
        "http://127.0.0.1:40001/callback",
        "st",
    );
    let plans = browser.get(&req.path()).await;
    assert_eq!(plans.status, StatusCode::OK);
    assert_security_headers("plans", &plans);
    let bad = AuthRequest::new(&oauth_support::client_id(), "http://example.com/cb", "st");
    let error = browser.get(&bad.path()).await;
    assert_eq!(error.status, StatusCode::BAD_REQUEST);
    assert_security_headers("authorize error", &error);
    subscribe(pool, user).await;
    activate_identity(pool, user).await;
    let consent = consent_page(&browser, &req).await;
    assert_security_headers("consent", &consent);
    let refused = browser
        .post_form("/keys", &[("csrf", "x"), ("name", "n")])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_security_headers("csrf refusal", &refused);
    api.stop().await;
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let api = TestApi::start().await;
    let pool = &api.db.pool;
    let browser = Browser::new(&api.base);
    let address = email("logout");
    browser.sign_up(pool, "Ada", &address).await;
    let session = browser.cookie("pdx_session").unwrap();
    let browser_id = browser.cookie("pdx_browser").unwrap();
    let csrf = browser.csrf().await;

    // Without the token, nothing happens.
    let res = browser.post_form("/logout", &[]).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(browser.get("/dashboard").await.status, StatusCode::OK);

    let res = browser.post_form("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), Some("/login"));
    let cleared = res
        .set_cookie("pdx_session")
        .expect("the cookie is cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert!(browser.cookie("pdx_session").is_none());

    // The old cookie, kept by someone, is worthless now.
    let replay = Browser::new(&api.base);
    replay.set_cookie("pdx_browser", &browser_id);
    replay.set_cookie("pdx_session", &session);
    let res = replay.get("/dashboard").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), Some("/login?next=%2Fdashboard"));
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM portal_sessions")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(sessions, 0);

    // A session past its expiry is no session either.
    let again = browser.log_in(&address, PASSWORD).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert_eq!(browser.get("/dashboard").await.status, StatusCode::OK);
    sqlx::query("UPDATE portal_sessions SET expires_at = now() - interval '1 second' WHERE true")
        .execute(pool)
        .await
        .unwrap();
    let res = browser.get("/dashboard").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    api.stop().await;
}

#[tokio::test]
async fn repeated_wrong_passwords_are_throttled() {
    let api = TestApi::start().await;
    let pool = &api.db.pool;
    let address = email("throttle");
    Browser::new(&api.base).sign_up(pool, "Ada", &address).await;
    let browser = Browser::new(&api.base);

    // 5 attempts per account, then one per 12 s (auth/throttle.rs).
    let mut statuses = Vec::new();
    let mut throttled = None;
    for _ in 0..10 {
        let res = browser.log_in(&address, "wrong password 1").await;
        statuses.push(res.status);
        if res.status == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some(res);
            break;
        }
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    }
    let throttled = throttled.unwrap_or_else(|| panic!("never throttled: {statuses:?}"));
    assert_eq!(statuses.len(), 6, "{statuses:?}");
    let wait: u64 = throttled
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=12).contains(&wait), "{wait}");
    assert!(throttled.body.contains("Too many login attempts"));
    // While throttled, even the right password gets no session.
    let res = browser.log_in(&address, PASSWORD).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(browser.cookie("pdx_session").is_none());
    api.stop().await;
}

#[tokio::test]
async fn pages_need_a_login_and_remember_where_they_were_going() {
    let api = TestApi::start().await;
    let browser = Browser::new(&api.base);
    for (path, next) in [
        ("/dashboard", "/login?next=%2Fdashboard"),
        ("/keys", "/login?next=%2Fkeys"),
        ("/billing", "/login?next=%2Fbilling"),
    ] {
        let res = browser.get(path).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(res.location(), Some(next), "{path}");
    }
    // Posting without a session changes nothing either.
    let csrf = browser.csrf().await;
    let res = browser
        .post_form("/keys", &[("csrf", &csrf), ("name", "x")])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys")
        .fetch_one(&api.db.pool)
        .await
        .unwrap();
    assert_eq!(keys, 0);

    api.stop().await;
}

#[tokio::test]
async fn the_spending_cap_api_checks_values_and_needs_a_subscription() {
    let api = TestApi::start().await;
    let pool = &api.db.pool;
    let session = api.register(&email("cap")).await;
    let user: Uuid = session.user_id.parse().unwrap();
    let put = |body: Value| {
        api.client
            .put(api.url("/v1/billing/spending-cap"))
            .bearer_auth(&session.access)
            .json(&body)
            .send()
    };

    for cents in [json!(99), json!(0), json!(-500), json!(100_000_001)] {
        let v = expect_error(
            put(json!({ "cap_cents": cents })).await.unwrap(),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(v["error"]["field"], "cap_cents", "{cents}: {v}");
    }
    for (body, field) in [
        (json!({"cap_cents": "abc"}), "cap_cents"),
        (json!({"cap_cents": 12.5}), "cap_cents"),
        (json!({"cap": 500}), "cap"),
    ] {
        let v = expect_error(put(body.clone()).await.unwrap(), StatusCode::BAD_REQUEST).await;
        assert_eq!(v["error"]["field"], field, "{body}: {v}");
    }
    expect_error(
        put(json!({"cap_cents": 2500})).await.unwrap(),
        StatusCode::CONFLICT,
    )
    .await;
    let unauthenticated = api
        .client
        .put(api.url("/v1/billing/spending-cap"))
        .json(&json!({"cap_cents": 2500}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);

    subscribe(pool, user).await;
    let res = put(json!({"cap_cents": 2500})).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["cap_cents"], 2500);
    assert_eq!(cap_of(pool, user).await, Some(25_000_000));

    let res = put(json!({"cap_cents": null})).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(cap_of(pool, user).await, None);
    api.stop().await;
}

/// A form sent after the session ended (a Disconnect button on a page left open overnight)
/// goes to log-in, and after log-in to a page that exists, not to the form's POST-only
/// address.
#[tokio::test]
async fn a_form_sent_after_the_session_ended_lands_on_a_page_after_log_in() {
    let api = TestApi::start().await;
    let address = email("later");
    Browser::new(&api.base)
        .sign_up(&api.db.pool, "Ada", &address)
        .await;
    let browser = Browser::new(&api.base);
    let csrf = browser.csrf().await;
    for path in [
        format!("/instances/{}/disconnect", Uuid::now_v7()),
        format!("/keys/{}/revoke", Uuid::now_v7()),
        "/billing/cap".to_owned(),
    ] {
        browser.remove_cookie("pdx_session");
        let res = browser.post_form(&path, &[("csrf", &csrf)]).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{path}");
        let login = res.location().unwrap().to_owned();
        assert!(login.starts_with("/login?next="), "{login}");
        let form = browser.get(&login).await;
        let mut fields = form_fields(&form.body, "/login");
        fields.retain(|(k, _)| k == "csrf" || k == "next");
        fields.push(("email".into(), address.clone()));
        fields.push(("password".into(), PASSWORD.into()));
        let res = browser.post_pairs("/login", &fields).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        let next = res.location().unwrap().to_owned();
        let landed = browser.get(&next).await;
        assert_eq!(
            landed.status,
            StatusCode::OK,
            "after log-in the browser is sent to {next}, a page that exists: {:?}",
            landed.body
        );
    }
    api.stop().await;
}
