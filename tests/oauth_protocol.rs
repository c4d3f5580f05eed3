//! The OAuth server Dex connects through, black-box over HTTP: RFC 8414 metadata, the
//! authorization endpoint's checks (PKCE S256 only, loopback or https redirect URIs, exact
//! match but for the loopback port), single-use expiring codes, rotating refresh tokens with
//! reuse detection and a grace for concurrent refreshes, RFC 7009 revocation reaching the api
//! and the proxy. Accounts are made ready for consent by writing their subscription and
//! identity into the test's database, so no Restate or Stripe is needed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod oauth_support;
mod proxy_support;

use common::api::TestApi;
use oauth_support::{
    authorize, consent_page, decide, oauth_error, pair_of, query_of, ready_browser, AuthRequest,
    Dex,
};
use proxy_support as ps;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A state as awkward as real ones: spaces, `&`, `=`, `%`, quotes, markup and non-ASCII must
/// come back as is (through the consent form's hidden fields, so escaped and unescaped).
const STATE: &str = "a \"state\" & <more> = 100% \u{e9}t\u{e9} '";

fn loopback(port: u16) -> String {
    format!("http://127.0.0.1:{port}/callback")
}

/// Logged in, ready, and holding a first token pair for a new client.
async fn connected(api: &TestApi) -> (oauth_support::Browser, AuthRequest, oauth_support::Pair) {
    let (browser, _) = ready_browser(&api.base, &api.db.pool, "conn").await;
    let req = AuthRequest::new(&oauth_support::client_id(), &loopback(43210), STATE);
    let (code, _) = authorize(&browser, &req).await;
    let pair = pair_of(
        Dex::new(&api.base)
            .exchange(&req, &code, &req.verifier)
            .await,
    )
    .await;
    (browser, req, pair)
}

#[tokio::test]
async fn metadata_names_the_endpoints_and_only_s256() {
    let api = TestApi::start_with(&[("PUBLIC_BASE_URL", "https://cloud.example.test/")]).await;
    let res = api
        .get("/.well-known/oauth-authorization-server", None)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let m: Value = res.json().await.unwrap();
    assert_eq!(m["issuer"], "https://cloud.example.test", "{m}");
    assert_eq!(
        m["authorization_endpoint"],
        "https://cloud.example.test/oauth/authorize"
    );
    assert_eq!(
        m["token_endpoint"],
        "https://cloud.example.test/oauth/token"
    );
    assert_eq!(
        m["revocation_endpoint"],
        "https://cloud.example.test/oauth/revoke"
    );
    assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(m["response_types_supported"], json!(["code"]));
    let grants = m["grant_types_supported"].as_array().unwrap();
    assert!(grants.contains(&json!("authorization_code")), "{m}");
    assert!(grants.contains(&json!("refresh_token")), "{m}");
    assert_eq!(m["token_endpoint_auth_methods_supported"], json!(["none"]));

    // The machine-readable contract lists every OAuth endpoint.
    let spec: Value = api.get("/openapi.json", None).await.json().await.unwrap();
    for (path, method) in [
        ("/.well-known/oauth-authorization-server", "get"),
        ("/oauth/authorize", "get"),
        ("/oauth/authorize", "post"),
        ("/oauth/token", "post"),
        ("/oauth/revoke", "post"),
        ("/v1/billing/spending-cap", "put"),
    ] {
        assert!(
            spec["paths"][path][method].is_object(),
            "{method} {path} missing from /openapi.json"
        );
    }
    api.stop().await;
}

#[tokio::test]
async fn code_exchange_gives_a_pair_that_authenticates_and_state_round_trips() {
    let api = TestApi::start().await;
    let (browser, user_id) = ready_browser(&api.base, &api.db.pool, "happy").await;
    let req = AuthRequest::new(&oauth_support::client_id(), &loopback(51000), STATE);
    let (code, state) = authorize(&browser, &req).await;
    assert_eq!(state.as_deref(), Some(STATE));
    assert!(code.starts_with("pdx_code_"), "{code}");

    let dex = Dex::new(&api.base);
    let res = dex.exchange(&req, &code, &req.verifier).await;
    assert_eq!(res.headers()["pragma"], "no-cache");
    let pair = pair_of(res).await;
    assert!(pair.access.starts_with("pdx_at_"), "{}", pair.access);
    assert_ne!(pair.access, pair.refresh);
    assert!(
        (3590..=3600).contains(&pair.expires_in),
        "{}",
        pair.expires_in
    );

    let me: Value = dex
        .client
        .get(dex.url("/v1/me"))
        .bearer_auth(&pair.access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["authenticated_with"], "oauth", "{me}");
    assert_eq!(me["user"]["id"], user_id.to_string());
    // The refresh token is not an access token.
    assert_eq!(dex.me(&pair.refresh).await, StatusCode::UNAUTHORIZED);
    api.stop().await;
}

#[tokio::test]
async fn a_wrong_verifier_is_refused_and_spends_the_code() {
    let api = TestApi::start().await;
    let (browser, _) = ready_browser(&api.base, &api.db.pool, "verifier").await;
    let req = AuthRequest::new(&oauth_support::client_id(), &loopback(51001), STATE);
    let (code, _) = authorize(&browser, &req).await;
    let dex = Dex::new(&api.base);

    let (other, _) = oauth_support::pkce();
    let why = oauth_error(
        dex.exchange(&req, &code, &other).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert!(why.contains("code_verifier"), "{why}");
    // Spent: the right verifier is too late.
    oauth_error(
        dex.exchange(&req, &code, &req.verifier).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    let grants: i64 = sqlx::query_scalar("SELECT count(*) FROM oauth_grants")
        .fetch_one(&api.db.pool)
        .await
        .unwrap();
    assert_eq!(grants, 0);
    api.stop().await;
}

#[tokio::test]
async fn a_reused_code_is_refused_and_revokes_what_it_gave() {
    let api = TestApi::start().await;
    let (browser, _) = ready_browser(&api.base, &api.db.pool, "reuse").await;
    let req = AuthRequest::new(&oauth_support::client_id(), &loopback(51002), STATE);
    let (code, _) = authorize(&browser, &req).await;
    let dex = Dex::new(&api.base);

    let pair = pair_of(dex.exchange(&req, &code, &req.verifier).await).await;
    assert_eq!(dex.me(&pair.access).await, StatusCode::OK);
    oauth_error(
        dex.exchange(&req, &code, &req.verifier).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(dex.me(&pair.access).await, StatusCode::UNAUTHORIZED);
    // The refresh token of that grant is dead too.
    oauth_error(
        dex.refresh(&req.client_id, &pair.refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    api.stop().await;
}

#[tokio::test]
async fn a_code_exchanged_twice_at_once_leaves_no_live_tokens() {
    let api = TestApi::start().await;
    let (browser, _) = ready_browser(&api.base, &api.db.pool, "race").await;
    let req = AuthRequest::new(&oauth_support::client_id(), &loopback(51004), STATE);
    let (code, _) = authorize(&browser, &req).await;
    let dex = Dex::new(&api.base);

    let (x, y) = tokio::join!(
        dex.exchange(&req, &code, &req.verifier),
        dex.exchange(&req, &code, &req.verifier)
    );
    let (won, lost) = if x.status() == StatusCode::OK {
        (x, y)
    } else {
        (y, x)
    };
    let pair = pair_of(won).await;
    oauth_error(lost, StatusCode::BAD_REQUEST, "invalid_grant").await;
    // The second use revoked what the first produced, whichever came first.
    assert_eq!(dex.me(&pair.access).await, StatusCode::UNAUTHORIZED);
    let live: i64 =
        sqlx::query_scalar("SELECT count(*) FROM oauth_grants WHERE revoked_at IS NULL")
            .fetch_one(&api.db.pool)
            .await
            .unwrap();
    assert_eq!(live, 0);
    api.stop().await;
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let api = TestApi::start().await;
    let (browser, _) = ready_browser(&api.base, &api.db.pool, "expired").await;
    let req = AuthRequest::new(&oauth_support::client_id(), &loopback(51003), STATE);
    let (code, _) = authorize(&browser, &req).await;
    sqlx::query("UPDATE oauth_codes SET expires_at = now() - interval '1 second' WHERE true")
        .execute(&api.db.pool)
        .await
        .unwrap();
    let why = oauth_error(
        Dex::new(&api.base)
            .exchange(&req, &code, &req.verifier)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert!(why.contains("expired"), "{why}");
    api.stop().await;
}

#[tokio::test]
async fn redirect_uris_must_match_exactly_but_for_the_loopback_port() {
    let api = TestApi::start().await;
    let (browser, _) = ready_browser(&api.base, &api.db.pool, "redirect").await;
    let client = oauth_support::client_id();
    let (p1, p2) = (52001, 52002);
    let dex = Dex::new(&api.base);

    // At the token endpoint, the URI must be the one of the authorization request.
    let first = AuthRequest::new(&client, &loopback(p1), STATE);
    let (code, _) = authorize(&browser, &first).await;
    let mut other = first.clone();
    other.redirect_uri = loopback(p2);
    let why = oauth_error(
        dex.exchange(&other, &code, &first.verifier).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert!(why.contains("redirect_uri"), "{why}");

    // The client is now recorded with P1. Another loopback port is fine.
    let moved = AuthRequest::new(&client, &loopback(p2), STATE);
    let (code, _) = authorize(&browser, &moved).await;
    pair_of(dex.exchange(&moved, &code, &moved.verifier).await).await;

    // Another path, or another host name, is shown an error page and never redirected to.
    for uri in [
        format!("http://127.0.0.1:{p1}/other"),
        format!("http://localhost:{p1}/callback"),
    ] {
        let req = AuthRequest::new(&client, &uri, STATE);
        let page = browser.get(&req.path()).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{uri}: {}", page.body);
        assert!(page.location().is_none(), "{uri} was redirected to");
        assert!(page.body.contains("redirect_uri"), "{}", page.body);
        assert!(
            page.header("content-type")
                .is_some_and(|c| c.starts_with("text/html")),
            "{uri}"
        );
    }
    api.stop().await;
}

#[tokio::test]
async fn http_redirects_must_be_loopback_and_https_is_accepted() {
    let api = TestApi::start().await;
    let (browser, _) = ready_browser(&api.base, &api.db.pool, "https").await;

    for uri in [
        "http://example.com/cb",
        "http://192.168.1.10:8080/cb",
        "ftp://127.0.0.1/cb",
    ] {
        let req = AuthRequest::new(&oauth_support::client_id(), uri, STATE);
        let page = browser.get(&req.path()).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(page.location().is_none(), "{uri} was redirected to");
    }
    // Nor does an unknown or malformed client_id get redirected.
    let mut req = AuthRequest::new("dex<script>", &loopback(52003), STATE);
    let page = browser.get(&req.path()).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.location().is_none());
    assert!(!page.body.contains("dex<script>"));
    req.client_id = oauth_support::client_id();
    req.redirect_uri = "https://dex.example.ts.net/cb".into();
    let page = consent_page(&browser, &req).await;
    assert!(page.body.contains("dex.example.ts.net"), "{}", page.body);
    api.stop().await;
}

#[tokio::test]
async fn only_s256_pkce_and_errors_go_back_with_the_state() {
    let api = TestApi::start().await;
    let (browser, _) = ready_browser(&api.base, &api.db.pool, "pkce").await;
    let client = oauth_support::client_id();
    let uri = loopback(52010);

    let mut plain = AuthRequest::new(&client, &uri, STATE);
    plain.method = Some("plain".into());
    plain.challenge = Some(plain.verifier.clone());
    let mut missing_challenge = AuthRequest::new(&client, &uri, STATE);
    missing_challenge.challenge = None;
    let mut missing_method = AuthRequest::new(&client, &uri, STATE);
    missing_method.method = None;

    for (what, req) in [
        ("plain", plain),
        ("no challenge", missing_challenge),
        ("no method", missing_method),
    ] {
        let page = browser.get(&req.path()).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{what}: {}", page.body);
        let location = page.location().unwrap();
        assert!(location.starts_with(&uri), "{what}: {location}");
        let q = query_of(location);
        assert_eq!(q["error"], "invalid_request", "{what}");
        assert_eq!(q["state"], STATE, "{what}");
        assert!(!q.contains_key("code"), "{what}");
    }
    // Nothing was issued.
    let codes: i64 = sqlx::query_scalar("SELECT count(*) FROM oauth_codes")
        .fetch_one(&api.db.pool)
        .await
        .unwrap();
    assert_eq!(codes, 0);
    api.stop().await;
}

#[tokio::test]
async fn the_token_endpoint_refuses_odd_requests() {
    let api = TestApi::start().await;
    let dex = Dex::new(&api.base);

    oauth_error(
        dex.token(&[("grant_type", "password"), ("username", "a")])
            .await,
        StatusCode::BAD_REQUEST,
        "unsupported_grant_type",
    )
    .await;
    oauth_error(
        dex.token(&[("grant_type", "client_credentials")]).await,
        StatusCode::BAD_REQUEST,
        "unsupported_grant_type",
    )
    .await;
    for fields in [
        &[][..],
        &[("grant_type", "authorization_code")][..],
        &[
            ("grant_type", "authorization_code"),
            ("code", "pdx_code_x"),
            ("redirect_uri", "http://127.0.0.1:1/callback"),
            ("client_id", "dex-12345678"),
        ][..],
        &[("grant_type", "refresh_token")][..],
        &[("grant_type", "refresh_token"), ("refresh_token", "")][..],
    ] {
        let why = oauth_error(
            dex.token(fields).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
        assert!(why.contains("required"), "{fields:?}: {why}");
    }
    // JSON is not a form.
    let res = dex
        .client
        .post(dex.url("/oauth/token"))
        .json(&json!({"grant_type": "refresh_token", "refresh_token": "x"}))
        .send()
        .await
        .unwrap();
    let no_store = res.headers().get("cache-control").cloned();
    oauth_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert_eq!(no_store.unwrap(), "no-store");
    // A repeated parameter is refused (RFC 6749 §3.2).
    oauth_error(
        dex.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "a"),
            ("refresh_token", "b"),
        ])
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    // An unknown refresh token is a bad grant, not a server error.
    oauth_error(
        dex.refresh("dex-12345678", "pdx_rt_nonsense").await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    api.stop().await;
}

#[tokio::test]
async fn refresh_rotates_the_pair() {
    let api = TestApi::start().await;
    let (_browser, req, first) = connected(&api).await;
    let dex = Dex::new(&api.base);

    let second = pair_of(dex.refresh(&req.client_id, &first.refresh).await).await;
    assert_ne!(second.access, first.access);
    assert_ne!(second.refresh, first.refresh);
    assert!((3590..=3600).contains(&second.expires_in));
    assert_eq!(dex.me(&second.access).await, StatusCode::OK);
    // By design an access token is not withdrawn by rotation: it works until it expires
    // (one hour), since a refresh may be retried or raced while requests are in flight.
    // Revocation, reuse detection or a disconnect end it at once.
    assert_eq!(dex.me(&first.access).await, StatusCode::OK);

    // The new refresh token rotates in turn; a refresh token naming another client fails.
    oauth_error(
        dex.refresh("dex-00000000", &second.refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    let third = pair_of(dex.refresh(&req.client_id, &second.refresh).await).await;
    assert_ne!(third.refresh, second.refresh);
    assert_eq!(dex.me(&third.access).await, StatusCode::OK);
    api.stop().await;
}

#[tokio::test]
async fn a_rotated_refresh_token_presented_after_the_grace_revokes_the_grant() {
    let api = TestApi::start().await;
    let (_browser, req, a) = connected(&api).await;
    let dex = Dex::new(&api.base);
    let b = pair_of(dex.refresh(&req.client_id, &a.refresh).await).await;
    assert_eq!(dex.me(&b.access).await, StatusCode::OK);

    // A's rotation was 31 s ago: beyond the 30 s grace, so A again is a stolen token.
    let rotated = sqlx::query(
        "UPDATE oauth_tokens SET rotated_at = now() - interval '31 seconds'
         WHERE rotated_at IS NOT NULL",
    )
    .execute(&api.db.pool)
    .await
    .unwrap();
    assert_eq!(rotated.rows_affected(), 1);
    let why = oauth_error(
        dex.refresh(&req.client_id, &a.refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert!(why.contains("already used"), "{why}");
    assert_eq!(dex.me(&b.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(dex.me(&a.access).await, StatusCode::UNAUTHORIZED);
    oauth_error(
        dex.refresh(&req.client_id, &b.refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    let reason: Option<String> =
        sqlx::query_scalar("SELECT revoked_reason FROM oauth_grants WHERE client_id = $1")
            .bind(&req.client_id)
            .fetch_one(&api.db.pool)
            .await
            .unwrap();
    assert!(reason.is_some_and(|r| r.contains("reused")));
    api.stop().await;
}

#[tokio::test]
async fn concurrent_refreshes_within_the_grace_get_the_same_pair() {
    let api = TestApi::start().await;
    let (_browser, req, first) = connected(&api).await;
    let dex = Dex::new(&api.base);

    let (x, y) = tokio::join!(
        dex.refresh(&req.client_id, &first.refresh),
        dex.refresh(&req.client_id, &first.refresh)
    );
    let (x, y) = (pair_of(x).await, pair_of(y).await);
    assert_eq!(x.access, y.access);
    assert_eq!(x.refresh, y.refresh);
    assert_ne!(x.refresh, first.refresh);
    // A retry a moment later (still within the grace) gets it too.
    let z = pair_of(dex.refresh(&req.client_id, &first.refresh).await).await;
    assert_eq!(z.refresh, x.refresh);

    assert_eq!(dex.me(&x.access).await, StatusCode::OK);
    let next = pair_of(dex.refresh(&req.client_id, &x.refresh).await).await;
    assert_eq!(dex.me(&next.access).await, StatusCode::OK);
    // Only one successor was stored for the three answers.
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM oauth_tokens")
        .fetch_one(&api.db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 3);
    api.stop().await;
}

#[tokio::test]
async fn revocation_ends_the_grant_and_always_answers_200() {
    let api = TestApi::start().await;
    let (_browser, req, pair) = connected(&api).await;
    let dex = Dex::new(&api.base);

    let res = dex
        .revoke(&[
            ("token", pair.refresh.as_str()),
            ("token_type_hint", "refresh_token"),
        ])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(dex.me(&pair.access).await, StatusCode::UNAUTHORIZED);
    oauth_error(
        dex.refresh(&req.client_id, &pair.refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;

    // Again, and unknown or garbage tokens: still 200, telling nothing.
    for token in [
        pair.refresh.as_str(),
        "pdx_rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "garbage",
        "pdx_at_",
    ] {
        let res = dex.revoke(&[("token", token)]).await;
        assert_eq!(res.status(), StatusCode::OK, "{token}");
    }
    for fields in [
        &[][..],
        &[("token", "")][..],
        &[("token_type_hint", "x")][..],
    ] {
        oauth_error(
            dex.revoke(fields).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
    }

    // Revoking by the access token works as well (a second connection).
    let (_b2, _r2, other) = connected(&api).await;
    assert_eq!(
        dex.revoke(&[("token", other.access.as_str())])
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(dex.me(&other.access).await, StatusCode::UNAUTHORIZED);
    api.stop().await;
}

#[tokio::test]
async fn the_proxy_takes_access_tokens_and_refuses_them_within_a_second_of_revocation() {
    let api = TestApi::start().await;
    let pool = api.db.pool.clone();
    let sandbox = ps::start_sandbox().await;
    let proxy = ps::RunningProxy::start(ps::options(&api.db.url, sandbox)).await;
    let (browser, user_id) = ready_browser(&api.base, &pool, "proxy").await;
    let req = AuthRequest::new(&oauth_support::client_id(), &loopback(53000), STATE);
    let (code, _) = authorize(&browser, &req).await;
    let dex = Dex::new(&api.base);
    let pair = pair_of(dex.exchange(&req, &code, &req.verifier).await).await;
    let grant_id: Uuid = sqlx::query_scalar("SELECT id FROM oauth_grants WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(&pool)
        .await
        .unwrap();

    let res = ps::post_chat(&proxy, &pair.access, "gpt-4o-mini", false).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let rows = ps::wait_usage(&pool, user_id, 1, Duration::from_secs(10)).await;
    assert_eq!(rows.len(), 1);
    let key_ids: Vec<Option<Uuid>> =
        sqlx::query_scalar("SELECT api_key_id FROM usage_events WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(key_ids, vec![Some(grant_id)]);

    // As the Anthropic SDK sends it.
    let res = ps::post_messages(
        &proxy,
        &pair.access,
        &json!({"model": "claude-sonnet-4-5", "max_tokens": 10,
                "messages": [{"role": "user", "content": "hello"}]}),
    )
    .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());

    let res = dex.revoke(&[("token", pair.access.as_str())]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let revoked = Instant::now();
    loop {
        let res = ps::post_chat(&proxy, &pair.access, "gpt-4o-mini", false).await;
        if res.status() == 401 {
            break;
        }
        assert_eq!(res.status(), 200);
        assert!(
            revoked.elapsed() < Duration::from_secs(1),
            "the proxy still served a revoked token after {:?}",
            revoked.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(revoked.elapsed() < Duration::from_secs(1));
    let res = ps::post_messages(
        &proxy,
        &pair.access,
        &json!({"model": "claude-sonnet-4-5", "max_tokens": 10,
                "messages": [{"role": "user", "content": "hello"}]}),
    )
    .await;
    assert_eq!(res.status(), 401);

    proxy.stop().await;
    api.stop().await;
}

#[tokio::test]
async fn cancelling_at_consent_sends_access_denied_with_the_state() {
    let api = TestApi::start().await;
    let (browser, _) = ready_browser(&api.base, &api.db.pool, "deny").await;
    let uri = loopback(53100);
    let req = AuthRequest::new(&oauth_support::client_id(), &uri, STATE);
    let consent = consent_page(&browser, &req).await;
    let back = decide(&browser, &consent, "deny").await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
    let location = back.location().unwrap();
    assert!(location.starts_with(&uri), "{location}");
    let q = query_of(location);
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], STATE);
    assert!(!q.contains_key("code"));
    let codes: i64 = sqlx::query_scalar("SELECT count(*) FROM oauth_codes")
        .fetch_one(&api.db.pool)
        .await
        .unwrap();
    assert_eq!(codes, 0);
    api.stop().await;
}

#[tokio::test]
async fn signing_up_inside_the_flow_approves_that_client_once() {
    let api = TestApi::start().await;
    let pool = &api.db.pool;
    let browser = oauth_support::Browser::new(&api.base);
    let client = oauth_support::client_id();
    let req = AuthRequest::new(&client, &loopback(53200), STATE);

    // Not logged in: to sign-up, which knows which instance is being connected.
    let to_signup = browser.get(&req.path()).await;
    assert_eq!(to_signup.status, StatusCode::SEE_OTHER);
    let signup_path = to_signup.location().unwrap().to_owned();
    assert!(signup_path.starts_with("/signup?next="), "{signup_path}");
    let signup = browser.get(&signup_path).await;
    assert_eq!(signup.status, StatusCode::OK);
    assert!(signup.body.contains(&client), "{}", signup.body);
    let address = oauth_support::email("inflow");
    let mut fields = oauth_support::form_fields(&signup.body, "/signup");
    fields.retain(|(k, _)| k == "csrf" || k == "next");
    fields.push(("email".into(), address.clone()));
    fields.push(("password".into(), oauth_support::PASSWORD.into()));
    let done = browser.post_pairs("/signup", &fields).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let back = done.location().unwrap().to_owned();
    assert!(back.starts_with("/oauth/authorize?"), "{back}");
    // No plan yet: the plans page, still inside the flow.
    let plans = browser.get(&back).await;
    assert_eq!(plans.status, StatusCode::OK);
    assert!(plans.body.contains("Choose your plan"), "{}", plans.body);

    // Paid and provisioned: straight back to Dex with a code, no consent page.
    let user = oauth_support::user_id(pool, &address).await;
    oauth_support::make_ready(pool, user).await;
    let auto = browser.get(&back).await;
    assert_eq!(auto.status, StatusCode::SEE_OTHER, "{}", auto.body);
    let q = query_of(auto.location().unwrap());
    assert_eq!(q["state"], STATE);
    let dex = Dex::new(&api.base);
    pair_of(dex.exchange(&req, &q["code"], &req.verifier).await).await;

    // Once only: the next request for that instance asks, and so does any other instance.
    consent_page(
        &browser,
        &AuthRequest::new(&client, &loopback(53201), STATE),
    )
    .await;
    consent_page(
        &browser,
        &AuthRequest::new(&oauth_support::client_id(), &loopback(53202), STATE),
    )
    .await;

    // Logging in (rather than signing up) inside the flow is no consent either.
    let other = oauth_support::Browser::new(&api.base);
    let csrf = other.csrf().await;
    let req = AuthRequest::new(&oauth_support::client_id(), &loopback(53203), STATE);
    let path = req.path();
    let res = other
        .post_form(
            "/login",
            &[
                ("csrf", &csrf),
                ("email", &address),
                ("password", oauth_support::PASSWORD),
                ("next", &path),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(res.location(), Some(path.as_str()));
    consent_page(&other, &req).await;
    api.stop().await;
}

/// Disconnect and revocation promise to cut a connected instance off at once, and consent
/// lists identity, messaging and AI only: so its access token must not mint an API key,
/// a credential that the grant's end would not touch.
#[tokio::test]
async fn a_connected_instance_cannot_mint_a_key_that_outlives_its_grant() {
    let api = TestApi::start().await;
    let (_browser, _req, pair) = connected(&api).await;
    let dex = Dex::new(&api.base);

    let res = api
        .post(
            "/v1/api-keys",
            Some(&pair.access),
            json!({"name": "made by dex"}),
        )
        .await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        dex.revoke(&[("token", pair.access.as_str())])
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(dex.me(&pair.access).await, StatusCode::UNAUTHORIZED);
    if let Some(key) = body["key"].as_str() {
        assert_eq!(
            dex.me(key).await,
            StatusCode::UNAUTHORIZED,
            "an API key made with the access token still works after the grant was revoked"
        );
    }
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    api.stop().await;
}
