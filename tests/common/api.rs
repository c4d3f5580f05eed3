//! The api started in-process on a free port against a fresh database.

use super::db::TestDb;
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef0123";

pub struct TestApi {
    pub base: String,
    pub db: TestDb,
    pub client: Client,
    server: ApiServer,
}

/// The api serving in-process; it stops serving when this is dropped.
pub struct ApiServer(tokio::task::JoinHandle<()>);

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Builds the api from exactly `vars` (its whole environment) and serves it on `listener`.
/// Tests that must know the api's address before configuring it (webhook targets) bind the
/// listener first.
pub async fn serve_api(
    listener: tokio::net::TcpListener,
    vars: &HashMap<String, String>,
) -> ApiServer {
    let config = config::Config::load(config::Component::Api, vars).expect("api config");
    let app = handlers::build(config).await.expect("build api");
    let router = app.router.clone();
    ApiServer(tokio::spawn(async move {
        server::serve(listener, router, std::future::pending())
            .await
            .unwrap();
    }))
}

/// Environment for an api pointed at `db_url` (other values at their defaults).
pub fn api_env(db_url: &str) -> HashMap<String, String> {
    [
        ("DATABASE_URL", db_url),
        (
            "ENCRYPTION_KEY",
            "abababababababababababababababababababababababababababababababab",
        ),
        ("JWT_SECRET", JWT_SECRET),
        ("ADMIN_TOKEN", ADMIN_TOKEN),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// `api_env` plus dev's defaults for everything else (provider credentials pointing at a
/// sandbox at `SANDBOX_ADDR`'s default), as the workflows process needs them.
pub fn full_env(db_url: &str) -> HashMap<String, String> {
    let mut env = api_env(db_url);
    for d in config::apply_dev_defaults(&env) {
        env.entry(d.name.to_string()).or_insert(d.value);
    }
    env
}

impl TestApi {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Like [`TestApi::start`], with `env` added to (and overriding) the api's environment,
    /// e.g. the provider settings of a sandbox.
    pub async fn start_with(env: &[(&str, &str)]) -> Self {
        let db = TestDb::new().await;
        let mut vars = api_env(&db.url);
        for (k, v) in env {
            vars.insert(k.to_string(), v.to_string());
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = serve_api(listener, &vars).await;
        Self {
            base,
            db,
            client: Client::new(),
            server,
        }
    }

    /// Stops serving and drops the database.
    pub async fn stop(self) {
        drop(self.server);
        self.db.drop().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        let mut req = self.client.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.client.delete(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// Registers a user and returns the session response.
    pub async fn register(&self, email: &str) -> Session {
        let res = self
            .post(
                "/v1/auth/register",
                None,
                json!({"email": email, "password": "correct horse 42", "name": "Test"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        Session::from(res.json::<Value>().await.unwrap())
    }

    pub async fn create_key(&self, token: &str, name: &str) -> (String, String) {
        let res = self
            .post("/v1/api-keys", Some(token), json!({"name": name}))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let v: Value = res.json().await.unwrap();
        (
            v["id"].as_str().unwrap().to_owned(),
            v["key"].as_str().unwrap().to_owned(),
        )
    }
}

pub struct Session {
    pub user_id: String,
    pub access: String,
    pub refresh: String,
}

impl From<Value> for Session {
    fn from(v: Value) -> Self {
        Self {
            user_id: v["user"]["id"].as_str().unwrap().to_owned(),
            access: v["access_token"].as_str().unwrap().to_owned(),
            refresh: v["refresh_token"].as_str().unwrap().to_owned(),
        }
    }
}

/// Asserts the error envelope and returns it.
pub async fn expect_error(res: Response, status: StatusCode) -> Value {
    assert_eq!(res.status(), status, "unexpected status");
    let v: Value = res.json().await.expect("error body is JSON");
    assert!(v["error"]["code"].is_string(), "error.code missing in {v}");
    assert!(
        v["error"]["message"].is_string(),
        "error.message missing in {v}"
    );
    v
}
