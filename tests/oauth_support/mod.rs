//! What the OAuth and portal black-box tests share: a browser (a reqwest client that follows
//! no redirects, with a cookie jar kept by hand), scraping of forms out of the portal's HTML,
//! accounts made ready for consent by writing their subscription and identity straight into
//! the test's database, and the connect flow up to an authorization code.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use reqwest::header::{HeaderMap, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{StatusCode, Url};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::sync::Mutex;
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse 42";

/// One answer, read whole.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> Option<&str> {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok())
    }

    /// The `Set-Cookie` header that sets `name`, if any.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }

    /// The value of the form field `csrf` on this page.
    pub fn csrf(&self) -> String {
        inputs(&self.body)
            .into_iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v)
            .unwrap_or_else(|| {
                panic!(
                    "no csrf field on the page ({}):\n{}",
                    self.status, self.body
                )
            })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A browser: keeps the cookies the server sets and sends them back, follows no redirects.
pub struct Browser {
    pub base: String,
    client: reqwest::Client,
    jar: Mutex<BTreeMap<String, String>>,
}

impl Browser {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar.lock().unwrap().get(name).cloned()
    }

    pub fn set_cookie(&self, name: &str, value: &str) {
        self.jar
            .lock()
            .unwrap()
            .insert(name.to_owned(), value.to_owned());
    }

    pub fn remove_cookie(&self, name: &str) {
        self.jar.lock().unwrap().remove(name);
    }

    fn cookie_header(&self) -> Option<String> {
        let jar = self.jar.lock().unwrap();
        (!jar.is_empty()).then(|| {
            jar.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Page {
        let req = match self.cookie_header() {
            Some(c) => req.header(COOKIE, c),
            None => req,
        };
        let res = req.send().await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        {
            let mut jar = self.jar.lock().unwrap();
            for v in headers.get_all(SET_COOKIE) {
                let v = v.to_str().unwrap();
                let pair = v.split(';').next().unwrap_or_default();
                let Some((name, value)) = pair.split_once('=') else {
                    continue;
                };
                let expired = v
                    .split(';')
                    .any(|a| a.trim().eq_ignore_ascii_case("Max-Age=0"));
                if expired || value.is_empty() {
                    jar.remove(name.trim());
                } else {
                    jar.insert(name.trim().to_owned(), value.trim().to_owned());
                }
            }
        }
        let body = res.text().await.unwrap();
        Page {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        self.send(self.client.get(self.url(path))).await
    }

    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.send(self.client.post(self.url(path)).form(fields))
            .await
    }

    /// Posts owned pairs (e.g. fields scraped from a form).
    pub async fn post_pairs(&self, path: &str, fields: &[(String, String)]) -> Page {
        self.send(self.client.post(self.url(path)).form(fields))
            .await
    }

    /// Signs up through the portal's form (no `next`): the browser is then logged in.
    /// Returns the new user's id.
    pub async fn sign_up(&self, pool: &PgPool, name: &str, email: &str) -> Uuid {
        let form = self.get("/signup").await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let csrf = form.csrf();
        let done = self
            .post_form(
                "/signup",
                &[
                    ("csrf", &csrf),
                    ("name", name),
                    ("email", email),
                    ("password", PASSWORD),
                    ("next", ""),
                ],
            )
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        assert!(
            self.cookie("pdx_session").is_some(),
            "no session after sign-up"
        );
        user_id(pool, email).await
    }

    /// Logs in through the portal's form; the answer (303 on success).
    pub async fn log_in(&self, email: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        let csrf = form.csrf();
        self.post_form(
            "/login",
            &[
                ("csrf", &csrf),
                ("email", email),
                ("password", password),
                ("next", ""),
            ],
        )
        .await
    }

    /// A CSRF token valid for this browser, from a page every browser can see.
    pub async fn csrf(&self) -> String {
        // /login shows its form to a browser without a session and redirects one with a
        // session; every logged-in page carries the token in its log-out form.
        let p = self.get("/login").await;
        if p.status == StatusCode::OK {
            return p.csrf();
        }
        let p = self.get("/dashboard").await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.body);
        p.csrf()
    }
}

pub async fn user_id(pool: &PgPool, email: &str) -> Uuid {
    sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(email.to_lowercase())
        .fetch_one(pool)
        .await
        .unwrap()
}

/// An email address unique to this call.
pub fn email(tag: &str) -> String {
    format!("{tag}-{}@example.com", Uuid::new_v4().simple())
}

/// A live subscription (basic, active) for the user.
pub async fn subscribe(pool: &PgPool, user_id: Uuid) {
    sqlx::query(
        "INSERT INTO subscriptions (id, user_id, stripe_subscription_id, stripe_customer_id,
            plan, status, stripe_state_at, current_period_start)
         VALUES ($1, $2, $3, $4, 'basic', 'active', now(), date_trunc('month', now()))",
    )
    .bind(Uuid::new_v4())
    .bind(user_id)
    .bind(format!("sub_{}", user_id.simple()))
    .bind(format!("cus_{}", user_id.simple()))
    .execute(pool)
    .await
    .unwrap();
}

/// A live subscription and an active identity: the connect flow goes straight to consent.
pub async fn make_ready(pool: &PgPool, user_id: Uuid) {
    subscribe(pool, user_id).await;
    activate_identity(pool, user_id).await;
}

/// An active identity (email, phone, Signal) for the user.
pub async fn activate_identity(pool: &PgPool, user_id: Uuid) {
    // User ids are UUIDv7 (time first): the unique values come from a random one.
    let random = Uuid::new_v4().simple().to_string();
    let short = &random[..12];
    let phone: String = random[12..19]
        .bytes()
        .map(|b| (b % 10 + b'0') as char)
        .collect();
    sqlx::query(
        "INSERT INTO identities (id, user_id, short_id, status, plan, email, phone_number,
            signal_status)
         VALUES ($1, $2, $3, 'active', 'basic', $4, $5, 'registered')",
    )
    .bind(Uuid::new_v4())
    .bind(user_id)
    .bind(short)
    .bind(format!("dex-{short}@agents.example.com"))
    .bind(format!("+1555{phone}"))
    .execute(pool)
    .await
    .unwrap();
}

/// Every `<input>` on a page as (name, value), values unescaped as a browser would.
pub fn inputs(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find("<input") {
        let tag_start = &rest[at..];
        let end = tag_start.find('>').unwrap_or(tag_start.len());
        let tag = &tag_start[..end];
        if let Some(name) = attribute(tag, "name") {
            let value = attribute(tag, "value").unwrap_or_default();
            out.push((unescape(&name), unescape(&value)));
        }
        rest = &tag_start[end..];
    }
    out
}

/// The hidden fields of the first form posting to `action` (with its submit buttons left out).
pub fn form_fields(html: &str, action: &str) -> Vec<(String, String)> {
    let marker = format!("action=\"{action}\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no form posting to {action} in:\n{html}"));
    let form = &html[start..];
    let end = form.find("</form>").unwrap_or(form.len());
    inputs(&form[..end])
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let at = tag.find(&needle)? + needle.len();
    let end = tag[at..].find('"')?;
    Some(tag[at..at + end].to_owned())
}

/// Undoes the HTML escaping of attribute values (named and numeric character references),
/// as a browser does before submitting a form.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest.find(';').and_then(|end| {
            let entity = &rest[1..end];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A PKCE verifier (43 to 128 characters) and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let challenge = challenge_of(&verifier);
    (verifier, challenge)
}

pub fn challenge_of(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A client id of the form Dex instances use.
pub fn client_id() -> String {
    format!("dex-{}", &Uuid::new_v4().simple().to_string()[..8])
}

/// The parameters of one authorization request.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub verifier: String,
    pub challenge: Option<String>,
    pub method: Option<String>,
}

impl AuthRequest {
    pub fn new(client_id: &str, redirect_uri: &str, state: &str) -> Self {
        let (verifier, challenge) = pkce();
        Self {
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            state: Some(state.to_owned()),
            verifier,
            challenge: Some(challenge),
            method: Some("S256".into()),
        }
    }

    /// `/oauth/authorize?…` with every present parameter, URL-encoded.
    pub fn path(&self) -> String {
        let mut url = Url::parse("http://x/oauth/authorize").unwrap();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code");
            q.append_pair("client_id", &self.client_id);
            q.append_pair("redirect_uri", &self.redirect_uri);
            if let Some(s) = &self.state {
                q.append_pair("state", s);
            }
            if let Some(c) = &self.challenge {
                q.append_pair("code_challenge", c);
            }
            if let Some(m) = &self.method {
                q.append_pair("code_challenge_method", m);
            }
        }
        format!("{}?{}", url.path(), url.query().unwrap_or_default())
    }
}

/// The query parameters of a redirect's `Location`.
pub fn query_of(location: &str) -> BTreeMap<String, String> {
    Url::parse(location)
        .unwrap_or_else(|e| panic!("Location {location:?} is not a URL: {e}"))
        .query_pairs()
        .into_owned()
        .collect()
}

/// The consent page of `req` (asserted to be one).
pub async fn consent_page(browser: &Browser, req: &AuthRequest) -> Page {
    let page = browser.get(&req.path()).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("Authorize Poindexter instance"),
        "not the consent page:\n{}",
        page.body
    );
    page
}

/// Answers the consent page as the person would, with `decision`; the answer.
pub async fn decide(browser: &Browser, consent: &Page, decision: &str) -> Page {
    let mut fields = form_fields(&consent.body, "/oauth/authorize");
    fields.push(("decision".into(), decision.into()));
    browser.post_pairs("/oauth/authorize", &fields).await
}

/// The connect flow up to the redirect back to Dex: consent page, Authorize. Returns the
/// code and the state as Dex receives them.
pub async fn authorize(browser: &Browser, req: &AuthRequest) -> (String, Option<String>) {
    let consent = consent_page(browser, req).await;
    let back = decide(browser, &consent, "approve").await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
    let location = back.location().expect("a Location back to Dex").to_owned();
    assert!(
        location.starts_with(&req.redirect_uri),
        "{location} does not go back to {}",
        req.redirect_uri
    );
    let q = query_of(&location);
    let code = q
        .get("code")
        .unwrap_or_else(|| panic!("no code in {location}"))
        .clone();
    (code, q.get("state").cloned())
}

/// What Dex does with the endpoints it calls directly.
pub struct Dex {
    pub base: String,
    pub client: reqwest::Client,
}

impl Dex {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn token(&self, fields: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url("/oauth/token"))
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    pub async fn exchange(
        &self,
        req: &AuthRequest,
        code: &str,
        verifier: &str,
    ) -> reqwest::Response {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &req.redirect_uri),
            ("client_id", &req.client_id),
            ("code_verifier", verifier),
        ])
        .await
    }

    pub async fn refresh(&self, client_id: &str, refresh_token: &str) -> reqwest::Response {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
        ])
        .await
    }

    pub async fn revoke(&self, fields: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url("/oauth/revoke"))
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// `GET /v1/me` with an access token: the status.
    pub async fn me(&self, access_token: &str) -> StatusCode {
        self.client
            .get(self.url("/v1/me"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
            .status()
    }
}

/// A token endpoint success, checked and read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub access: String,
    pub refresh: String,
    pub expires_in: i64,
}

pub async fn pair_of(res: reqwest::Response) -> Pair {
    let status = res.status();
    let cache = res
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    assert_eq!(v["token_type"], "Bearer", "{v}");
    Pair {
        access: v["access_token"].as_str().expect("access_token").to_owned(),
        refresh: v["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_owned(),
        expires_in: v["expires_in"].as_i64().expect("expires_in"),
    }
}

/// A token endpoint error: asserts the status and the RFC 6749 `error`, returns the
/// description.
pub async fn oauth_error(res: reqwest::Response, status: StatusCode, error: &str) -> String {
    let got = res.status();
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(got, status, "{v}");
    assert_eq!(v["error"], error, "{v}");
    v["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A logged-in browser whose account is ready for consent, and its user id.
pub async fn ready_browser(base: &str, pool: &PgPool, tag: &str) -> (Browser, Uuid) {
    let browser = Browser::new(base);
    let id = browser.sign_up(pool, "Ada", &email(tag)).await;
    make_ready(pool, id).await;
    (browser, id)
}
