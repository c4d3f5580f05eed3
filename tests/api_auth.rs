//! Accounts and sessions, black-box over HTTP against a fresh database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::{expect_error, TestApi, JWT_SECRET};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn register_validates_input_and_rejects_duplicates() {
    let api = TestApi::start().await;
    let s = api.register("  Ada@Example.COM ").await;
    let me: Value = api
        .get("/v1/me", Some(&s.access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"]["email"], "ada@example.com");
    assert_eq!(me["authenticated_with"], "session");

    let dup = api
        .post(
            "/v1/auth/register",
            None,
            json!({"email": "ADA@example.com", "password": "another pass 99"}),
        )
        .await;
    expect_error(dup, StatusCode::CONFLICT).await;

    let cases = [
        (
            json!({"email": "not-an-email", "password": "correct horse 42"}),
            "email",
        ),
        (
            json!({"email": "b@example.com", "password": "short1"}),
            "password",
        ),
        (
            json!({"email": "b@example.com", "password": "onlyletterslong"}),
            "password",
        ),
        (
            json!({"email": 42, "password": "correct horse 42"}),
            "email",
        ),
        (json!({"password": "correct horse 42"}), "email"),
        (
            json!({"email": "b@example.com", "password": "correct horse 42", "admin": true}),
            "admin",
        ),
        (
            json!({"email": "b@example.com", "password": "correct horse 42", "name": ""}),
            "name",
        ),
    ];
    for (body, field) in cases {
        let v = expect_error(
            api.post("/v1/auth/register", None, body.clone()).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(v["error"]["field"], field, "for {body}");
    }
    // None of the bad requests created an account.
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM users")
        .fetch_one(&api.db.pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
    api.stop().await;
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_refused() {
    let api = TestApi::start().await;
    let raw = |body: &'static str| {
        api.client
            .post(api.url("/v1/auth/register"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let v = expect_error(raw("{\"email\": ").await.unwrap(), StatusCode::BAD_REQUEST).await;
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("malformed JSON"));
    expect_error(raw("[1,2]").await.unwrap(), StatusCode::BAD_REQUEST).await;

    let no_type = api
        .client
        .post(api.url("/v1/auth/register"))
        .body("{}")
        .send()
        .await
        .unwrap();
    expect_error(no_type, StatusCode::BAD_REQUEST).await;

    let huge = format!(
        "{{\"email\":\"a@b.com\",\"password\":\"{}\"}}",
        "x".repeat(200 * 1024)
    );
    let res = api
        .client
        .post(api.url("/v1/auth/register"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::PAYLOAD_TOO_LARGE).await;
    api.stop().await;
}

#[tokio::test]
async fn login_checks_password_without_revealing_accounts_and_is_throttled() {
    let api = TestApi::start().await;
    api.register("grace@example.com").await;
    let ok = api
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "GRACE@example.com", "password": "correct horse 42"}),
        )
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
    let body: Value = ok.json().await.unwrap();
    assert!(body["access_token"].is_string() && body["refresh_token"].is_string());

    let wrong = expect_error(
        api.post(
            "/v1/auth/login",
            None,
            json!({"email": "grace@example.com", "password": "wrong horse 42"}),
        )
        .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let unknown = expect_error(
        api.post(
            "/v1/auth/login",
            None,
            json!({"email": "nobody@example.com", "password": "wrong horse 42"}),
        )
        .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(wrong["error"]["message"], unknown["error"]["message"]);

    // One success and one failure spent 2 of the account's 5; three more, then 429.
    for _ in 0..3 {
        let r = api
            .post(
                "/v1/auth/login",
                None,
                json!({"email": "grace@example.com", "password": "nope nope 1"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = api
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "grace@example.com", "password": "correct horse 42"}),
        )
        .await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    expect_error(limited, StatusCode::TOO_MANY_REQUESTS).await;
    // Another account from the same IP is not affected by grace's limit.
    api.register("other@example.com").await;
    let other = api
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "other@example.com", "password": "correct horse 42"}),
        )
        .await;
    assert_eq!(other.status(), StatusCode::OK);
    api.stop().await;
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_ends_the_family() {
    let api = TestApi::start().await;
    let s = api.register("hopper@example.com").await;
    let r1 = api
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": s.refresh}),
        )
        .await;
    assert_eq!(r1.status(), StatusCode::OK);
    let r1: Value = r1.json().await.unwrap();
    let second = r1["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, s.refresh);
    let me = api
        .get("/v1/me", Some(r1["access_token"].as_str().unwrap()))
        .await;
    assert_eq!(me.status(), StatusCode::OK);

    // Replaying the first token: refused, and the successor dies with it.
    expect_error(
        api.post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": s.refresh}),
        )
        .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    expect_error(
        api.post("/v1/auth/refresh", None, json!({"refresh_token": second}))
            .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    expect_error(
        api.post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": "rt_garbage"}),
        )
        .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    expect_error(
        api.post("/v1/auth/refresh", None, json!({"refresh_token": 7}))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    api.stop().await;
}

#[tokio::test]
async fn logout_ends_every_session_but_not_api_keys() {
    let api = TestApi::start().await;
    let s = api.register("lovelace@example.com").await;
    let login: Value = api
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "lovelace@example.com", "password": "correct horse 42"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let other_access = login["access_token"].as_str().unwrap().to_owned();
    let (_, key) = api.create_key(&s.access, "dex").await;

    let out = api
        .post("/v1/auth/logout", Some(&s.access), json!({}))
        .await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    for token in [&s.access, &other_access] {
        expect_error(
            api.get("/v1/me", Some(token)).await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
    expect_error(
        api.post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": s.refresh}),
        )
        .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(api.get("/v1/me", Some(&key)).await.status(), StatusCode::OK);
    // Logging in again works.
    let again = api
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "lovelace@example.com", "password": "correct horse 42"}),
        )
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    api.stop().await;
}

#[tokio::test]
async fn expired_tampered_and_foreign_tokens_are_refused() {
    use jsonwebtoken::{encode, EncodingKey, Header};
    let api = TestApi::start().await;
    let s = api.register("turing@example.com").await;
    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64| json!({"sub": s.user_id, "ver": 0, "iat": now - 1000, "exp": exp, "typ": "access"});

    let expired = encode(
        &Header::default(),
        &claims(now - 10),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    expect_error(
        api.get("/v1/me", Some(&expired)).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    let foreign = encode(
        &Header::default(),
        &claims(now + 600),
        &EncodingKey::from_secret(b"some-other-secret-of-32-bytes!!!"),
    )
    .unwrap();
    expect_error(
        api.get("/v1/me", Some(&foreign)).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    // Swap the payload of a valid token for one claiming another user.
    let mut parts: Vec<String> = s.access.split('.').map(str::to_owned).collect();
    use base64::Engine as _;
    let forged = json!({"sub": uuid::Uuid::new_v4(), "ver": 0, "iat": now, "exp": now + 600, "typ": "access"});
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged.to_string());
    expect_error(
        api.get("/v1/me", Some(&parts.join("."))).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    // alg=none is never accepted.
    let none_header =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{none_header}.{}.", parts[1]);
    expect_error(
        api.get("/v1/me", Some(&unsigned)).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    expect_error(api.get("/v1/me", None).await, StatusCode::UNAUTHORIZED).await;
    let basic = api
        .client
        .get(api.url("/v1/me"))
        .header("authorization", "Basic Zm9vOmJhcg==")
        .send()
        .await
        .unwrap();
    expect_error(basic, StatusCode::UNAUTHORIZED).await;
    api.stop().await;
}
