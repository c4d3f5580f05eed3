//! The whole flow against a fake of the server contract (metadata, authorize, token, revoke,
//! identity, chat) in one axum app: PKCE is checked, refresh tokens rotate, revocation ends the
//! grant. The "browser" is reqwest following the printed URL and the 302 to the loopback.

use super::args::Options;
use super::flow::{self, Failure};
use super::pkce;
use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Approve,
    Deny,
    ExpiredCode,
}

/// What the authorize request said, checked at the token request, and the live tokens.
#[derive(Default)]
struct Grant {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    access: Option<String>,
    refresh: Option<String>,
    issued: u32,
}

#[derive(Clone)]
struct Fake {
    base: String,
    mode: Mode,
    grant: Arc<Mutex<Grant>>,
}

type Params = HashMap<String, String>;

fn param<'a>(p: &'a Params, name: &str) -> &'a str {
    p.get(name).map(String::as_str).unwrap_or_default()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = json!({"error": error, "error_description": description});
    (status, Json(body)).into_response()
}

async fn metadata(State(f): State<Fake>) -> Json<Value> {
    Json(json!({
        "issuer": f.base,
        "authorization_endpoint": format!("{}/oauth/authorize", f.base),
        "token_endpoint": format!("{}/oauth/token", f.base),
        "revocation_endpoint": format!("{}/oauth/revoke", f.base),
        "code_challenge_methods_supported": ["S256"],
    }))
}

async fn authorize(State(f): State<Fake>, Query(p): Query<Params>) -> Response {
    assert_eq!(param(&p, "response_type"), "code");
    assert_eq!(param(&p, "code_challenge_method"), "S256");
    let mut g = f.grant.lock().unwrap();
    g.client_id = param(&p, "client_id").into();
    g.redirect_uri = param(&p, "redirect_uri").into();
    g.challenge = param(&p, "code_challenge").into();
    let state = param(&p, "state");
    let query = match f.mode {
        Mode::Deny => {
            format!("error=access_denied&error_description=the+user+said+no&state={state}")
        }
        _ => format!("code=the-code&state={state}"),
    };
    Redirect::to(&format!("{}?{query}", g.redirect_uri)).into_response()
}

async fn token(State(f): State<Fake>, Form(p): Form<Params>) -> Response {
    let mut g = f.grant.lock().unwrap();
    if param(&p, "client_id") != g.client_id {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client");
    }
    match param(&p, "grant_type") {
        "authorization_code" => {
            if param(&p, "code") != "the-code" || param(&p, "redirect_uri") != g.redirect_uri {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "wrong code or redirect_uri",
                );
            }
            if pkce::challenge_for(param(&p, "code_verifier")) != g.challenge {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "PKCE verification failed",
                );
            }
            if f.mode == Mode::ExpiredCode {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the code has expired",
                );
            }
        }
        "refresh_token" if g.refresh.as_deref() == Some(param(&p, "refresh_token")) => {}
        "refresh_token" => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "refresh token not live",
            )
        }
        _ => return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", ""),
    }
    g.issued += 1;
    let (access, refresh) = (
        format!("access-{}", g.issued),
        format!("refresh-{}", g.issued),
    );
    g.access = Some(access.clone());
    g.refresh = Some(refresh.clone());
    Json(
        json!({"access_token": access, "token_type": "Bearer", "expires_in": 3600,
                "refresh_token": refresh, "scope": "dex"}),
    )
    .into_response()
}

async fn revoke(State(f): State<Fake>, Form(p): Form<Params>) -> StatusCode {
    let mut g = f.grant.lock().unwrap();
    let token = Some(param(&p, "token"));
    if token == g.refresh.as_deref() || token == g.access.as_deref() {
        g.access = None;
        g.refresh = None;
    }
    StatusCode::OK
}

fn authorized(f: &Fake, headers: &HeaderMap) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    given.is_some() && given == f.grant.lock().unwrap().access.as_deref()
}

fn unauthorized() -> Response {
    let body = json!({"error": {"code": "unauthorized", "message": "invalid or expired token"}});
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

async fn identity(State(f): State<Fake>, headers: HeaderMap) -> Response {
    if !authorized(&f, &headers) {
        return unauthorized();
    }
    Json(
        json!({"email": "dex-0badcafe@poindexter.ai", "phone": "+15550100",
                "signal": {"registered": true, "status": "registered"}, "status": "active"}),
    )
    .into_response()
}

async fn chat(State(f): State<Fake>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if !authorized(&f, &headers) {
        return unauthorized();
    }
    assert_eq!(body["model"], "gpt-4o-mini");
    Json(json!({"object": "chat.completion", "model": "gpt-4o-mini",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello, Dex!"},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}}))
    .into_response()
}

struct Run {
    outcome: Result<(), Failure>,
    lines: Vec<String>,
    /// The status and body of the page the browser's tab ended on.
    page: (u16, String),
    base: String,
}

async fn connect(mode: Mode, revoke_at_end: bool) -> Run {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let fake = Fake {
        base: base.clone(),
        mode,
        grant: Arc::default(),
    };
    let app = Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/oauth/authorize", get(authorize))
        .route("/oauth/token", post(token))
        .route("/oauth/revoke", post(revoke))
        .route("/v1/identity", get(identity))
        .route("/v1/chat/completions", post(chat))
        .with_state(fake);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let opts = Options {
        api: base.clone(),
        proxy: base.clone(),
        client_id: Some("dex-0badcafe".into()),
        open_browser: false,
        revoke: revoke_at_end,
        timeout: Duration::from_secs(10),
    };
    let lines = Mutex::new(Vec::new());
    let (urls, mut url) = tokio::sync::mpsc::unbounded_channel::<String>();
    let browser = tokio::spawn(async move {
        let url = url.recv().await.unwrap();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let page = client.get(url).send().await.unwrap();
        (page.status().as_u16(), page.text().await.unwrap())
    });
    let say = |line: &str| {
        if line.starts_with("http") {
            urls.send(line.to_owned()).unwrap();
        }
        lines.lock().unwrap().push(line.to_owned());
    };
    let outcome = flow::run(&opts, &say).await;
    Run {
        outcome,
        lines: lines.into_inner().unwrap(),
        page: browser.await.unwrap(),
        base,
    }
}

#[tokio::test]
async fn connects_uses_refreshes_and_revokes() {
    let run = connect(Mode::Approve, true).await;
    if let Err(f) = &run.outcome {
        panic!("{} failed: {:#}", f.step, f.error);
    }
    let url_lines: Vec<&String> = run.lines.iter().filter(|l| l.starts_with("http")).collect();
    assert_eq!(url_lines.len(), 1);
    assert!(url_lines[0].starts_with(&format!("{}/oauth/authorize?", run.base)));
    assert_eq!(
        run.lines,
        [
            "Open this URL to connect Dex (dex-0badcafe) to Poindexter Cloud:",
            url_lines[0].as_str(),
            "Waiting for the browser to come back (up to 10 s)...",
            "Authorized: the browser came back with a code",
            "Connected: access token expires in 3600 s",
            "Identity: email dex-0badcafe@poindexter.ai, phone +15550100, Signal registered, status active",
            "AI (gpt-4o-mini): Hello, Dex!",
            "AI usage: 9 prompt + 3 completion = 12 tokens",
            "Refreshed: new access token works",
            "Revoked: the grant is closed",
        ]
    );
    assert_eq!(run.page.0, 200);
    assert!(run
        .page
        .1
        .contains("Poindexter Cloud is connected — you can close this tab"));
    // Tokens never reach the output.
    assert!(!run
        .lines
        .iter()
        .any(|l| l.contains("access-") || l.contains("refresh-")));
}

#[tokio::test]
async fn a_refused_code_is_said_in_the_terminal_and_the_tab() {
    let run = connect(Mode::ExpiredCode, false).await;
    let Err(f) = run.outcome else {
        panic!("an expired code was accepted");
    };
    assert_eq!(f.step, "token exchange");
    assert_eq!(
        format!("{:#}", f.error),
        "the server answered 400 Bad Request: invalid_grant (the code has expired)"
    );
    assert_eq!(run.page.0, 400);
    assert!(run.page.1.contains("invalid_grant (the code has expired)"));
    assert!(!run.lines.iter().any(|l| l.starts_with("Connected")));
}

#[tokio::test]
async fn a_denial_ends_at_the_authorization_step() {
    let run = connect(Mode::Deny, false).await;
    let Err(f) = run.outcome else {
        panic!("a denial connected");
    };
    assert_eq!(f.step, "authorization");
    assert_eq!(
        f.error.to_string(),
        "the authorization was refused: access_denied (the user said no)"
    );
    assert_eq!(run.page.0, 400);
    assert_eq!(
        run.lines.last().map(String::as_str),
        Some("Waiting for the browser to come back (up to 10 s)...")
    );
}
