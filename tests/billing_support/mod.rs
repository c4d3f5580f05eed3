//! Billing test support: a fresh database, the sandbox and the api in-process on free ports
//! wired to each other (the api's Stripe base is the sandbox, the sandbox's webhooks go to the
//! api), optionally a real restate-server with the real `poindexter workflows` process.
//!
//! Every other provider setting points at the same sandbox (dev's defaults), so the real
//! workflows provision against it.
#![allow(dead_code)]

use crate::common::api::{api_env, Session, ADMIN_TOKEN};
use crate::common::db::TestDb;
use crate::common::ports::free_port;
use crate::common::process::{wait_healthy, Proc};
use crate::common::restate::Restate;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const WEBHOOK_SECRET: &str = "whsec_test_billing_0123456789";
pub const STRIPE_KEY: &str = "sk_test_billing_0123456789";
pub const PRICE_BASIC: &str = "price_basic_sandbox";
pub const PRICE_PRO: &str = "price_pro_sandbox";

pub struct Stack {
    pub db: TestDb,
    pub api: String,
    pub sandbox: String,
    pub client: Client,
    pub restate: Option<Restate>,
    pub workflows: Option<Proc>,
    pub workflows_port: u16,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Environment shared by the api, the sandbox and the workflows process.
pub fn env(
    db_url: &str,
    api: &str,
    sandbox: &str,
    ingress: Option<&str>,
) -> HashMap<String, String> {
    // Dev's defaults for everything (all providers at this sandbox), then this test's values.
    let addrs: HashMap<String, String> = [
        ("API_ADDR", api.trim_start_matches("http://")),
        ("SANDBOX_ADDR", sandbox.trim_start_matches("http://")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let mut env: HashMap<String, String> = config::apply_dev_defaults(&addrs)
        .into_iter()
        .map(|d| (d.name.to_owned(), d.value))
        .collect();
    env.extend(api_env(db_url));
    for (k, v) in [
        ("STRIPE_SECRET_KEY", STRIPE_KEY),
        ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("STRIPE_PRICE_BASIC", PRICE_BASIC),
        ("STRIPE_PRICE_PRO", PRICE_PRO),
    ] {
        env.insert(k.into(), v.into());
    }
    env.insert("STRIPE_API_BASE".into(), format!("{sandbox}/stripe"));
    env.insert("SANDBOX_WEBHOOK_BASE".into(), api.into());
    env.insert("PUBLIC_BASE_URL".into(), api.into());
    // Without a Restate of its own, the api points at a port nobody listens on (never at a
    // Restate some other process runs on the default port).
    let ingress = ingress
        .map(str::to_owned)
        .unwrap_or_else(|| format!("http://127.0.0.1:{}", free_port()));
    env.insert("RESTATE_INGRESS_URL".into(), ingress);
    env
}

impl Stack {
    /// Database, sandbox and api; with `restate`, also restate-server, the workflows process
    /// and the stand-in lifecycle services, all registered.
    pub async fn start(restate: bool) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("warn")
            .try_init();
        let db = TestDb::new().await;
        let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sandbox_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = format!("http://{}", api_listener.local_addr().unwrap());
        let sandbox = format!("http://{}", sandbox_listener.local_addr().unwrap());
        let restate = if restate {
            Some(Restate::start().await)
        } else {
            None
        };
        let env = env(
            &db.url,
            &api,
            &sandbox,
            restate.as_ref().map(|r| r.ingress.as_str()),
        );

        let sandbox_config = config::Config::load(config::Component::Sandbox, &env).unwrap();
        let sandbox_router = sandbox::build(&sandbox_config);
        let api_config = config::Config::load(config::Component::Api, &env).unwrap();
        let app = handlers::build(api_config).await.unwrap();
        let api_router = app.router.clone();
        let tasks = vec![
            tokio::spawn(async move {
                server::serve(sandbox_listener, sandbox_router, std::future::pending())
                    .await
                    .unwrap();
            }),
            tokio::spawn(async move {
                server::serve(api_listener, api_router, std::future::pending())
                    .await
                    .unwrap();
            }),
        ];
        let mut stack = Self {
            db,
            api,
            sandbox,
            client: Client::new(),
            restate,
            workflows: None,
            workflows_port: free_port(),
            tasks,
        };
        if stack.restate.is_some() {
            stack.start_workflows().await;
            let r = stack.restate.as_ref().unwrap();
            r.register(&format!("http://127.0.0.1:{}", stack.workflows_port))
                .await;
        }
        stack
    }

    fn env(&self) -> HashMap<String, String> {
        env(
            &self.db.url,
            &self.api,
            &self.sandbox,
            self.restate.as_ref().map(|r| r.ingress.as_str()),
        )
    }

    /// Starts (or restarts) the real `poindexter workflows` process on its fixed port.
    pub async fn start_workflows(&mut self) {
        let mut env = self.env();
        env.insert(
            "WORKFLOWS_ADDR".into(),
            format!("127.0.0.1:{}", self.workflows_port),
        );
        self.workflows = Some(Proc::poindexter("workflows", &env));
        wait_healthy(
            &format!("http://127.0.0.1:{}/healthz", self.workflows_port),
            Duration::from_secs(30),
        )
        .await;
    }

    pub async fn stop(self) {
        for t in &self.tasks {
            t.abort();
        }
        drop(self.workflows);
        drop(self.restate);
        self.db.drop().await;
    }

    pub async fn register(&self, email: &str) -> Session {
        let res = self
            .client
            .post(format!("{}/v1/auth/register", self.api))
            .json(&json!({"email": email, "password": "correct horse 42"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        Session::from(res.json::<Value>().await.unwrap())
    }

    pub async fn api_post(&self, path: &str, token: &str, body: Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.api))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn api_get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.api))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn admin_post(&self, path: &str) -> reqwest::Response {
        self.api_post(path, ADMIN_TOKEN, json!({})).await
    }

    pub async fn control(&self, path: &str, body: Value) -> Value {
        let res = self
            .client
            .post(format!("{}/stripe/_sandbox{path}", self.sandbox))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let v: Value = res.json().await.unwrap();
        assert!(status.is_success(), "sandbox {path}: {status} {v}");
        v
    }

    pub async fn stripe_resources(&self) -> Value {
        self.client
            .get(format!("{}/stripe/_sandbox/resources", self.sandbox))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn events(&self) -> Vec<Value> {
        let v: Value = self
            .client
            .get(format!("{}/stripe/_sandbox/events", self.sandbox))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["data"].as_array().cloned().unwrap_or_default()
    }

    /// The id of the last event of `kind` the sandbox created.
    pub async fn last_event(&self, kind: &str) -> Value {
        self.events()
            .await
            .into_iter()
            .rev()
            .find(|e| e["event"]["type"] == kind)
            .map(|e| e["event"].clone())
            .unwrap_or_else(|| panic!("no {kind} event"))
    }

    /// Total of meter `event_name` for `customer` in the sandbox.
    pub async fn meter_total(&self, customer: &str, event_name: &str) -> i64 {
        let r = self.stripe_resources().await;
        r["meter_totals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["customer"] == customer && t["event_name"] == event_name)
            .map(|t| t["value"].as_i64().unwrap())
            .unwrap_or(0)
    }

    /// subscribe → open the checkout URL ("pay") → webhooks delivered. Returns the Stripe
    /// subscription id.
    pub async fn subscribe_and_pay(&self, s: &Session, plan: &str) -> String {
        let res = self
            .api_post("/v1/billing/subscribe", &s.access, json!({"plan": plan}))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let url = res.json::<Value>().await.unwrap()["checkout_url"]
            .as_str()
            .unwrap()
            .to_owned();
        let page = self.client.get(&url).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let body = page.text().await.unwrap();
        let sub = body
            .split("Subscription ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .unwrap()
            .to_owned();
        sub
    }

    pub async fn customer_of(&self, user_id: &str) -> String {
        let (c,): (Option<String>,) =
            sqlx::query_as("SELECT stripe_customer_id FROM users WHERE id = $1::uuid")
                .bind(user_id)
                .fetch_one(&self.db.pool)
                .await
                .unwrap();
        c.expect("user has a Stripe customer")
    }

    /// (plan, status) of the user's subscription row.
    pub async fn subscription_row(&self, user_id: &str) -> Option<(String, String)> {
        sqlx::query_as("SELECT plan, status FROM subscriptions WHERE user_id = $1::uuid")
            .bind(user_id)
            .fetch_optional(&self.db.pool)
            .await
            .unwrap()
    }

    /// Restate invocations whose target starts with `prefix`, as (target, status).
    pub async fn invocations(&self, prefix: &str) -> Vec<(String, String)> {
        let r = self.restate.as_ref().expect("stack started with restate");
        r.query(&format!(
            "SELECT target, status FROM sys_invocation WHERE target LIKE '{prefix}%' ORDER BY created_at"
        ))
        .await
        .into_iter()
        .map(|row| {
            (
                row["target"].as_str().unwrap_or_default().to_owned(),
                row["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
    }

    /// Inserts proxied requests for the user (what the proxy's metering writes), `at` apart by
    /// a millisecond each so their serving order is the given order.
    pub async fn insert_usage(
        &self,
        user_id: &str,
        at: chrono::DateTime<chrono::Utc>,
        requests: &[(i64, i64)],
    ) {
        for (n, (i, o)) in requests.iter().enumerate() {
            sqlx::query(
                "INSERT INTO usage_events (request_id, user_id, model, provider, input_tokens,
                     output_tokens, cost_microdollars, created_at)
                 VALUES ($1, $2::uuid, 'claude-sonnet-4', 'anthropic', $3, $4, $5, $6)",
            )
            .bind(format!("req_{}", uuid::Uuid::new_v4().simple()))
            .bind(user_id)
            .bind(i)
            .bind(o)
            .bind((i + o) / 100)
            .bind(at + chrono::Duration::milliseconds(n as i64))
            .execute(&self.db.pool)
            .await
            .unwrap();
        }
    }
}

/// Names of the services Restate knows.
async fn services(admin: &str) -> Vec<String> {
    let v: Value = reqwest::get(format!("{admin}/services"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str().map(str::to_owned))
        .collect()
}

/// Polls `f` until it returns Some, failing after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
