//! What the proxy's black-box tests share: an in-process sandbox (the AI upstreams) and proxy
//! on port 0, users with keys and plans written straight into the test's database, and
//! polling of the usage the proxy recorded.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod pg;

use proxy::{Options, Target};
use sqlx::PgPool;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The test harness's sandbox (provider emulators, `common::sandbox`), by its address.
pub async fn start_sandbox() -> SocketAddr {
    let sb = crate::common::sandbox::start_sandbox(&[]).await;
    sb.url
        .trim_start_matches("http://")
        .parse()
        .expect("the sandbox's address")
}

/// Sets the sandbox's AI behaviour (`PUT /_sandbox/ai`).
pub async fn sandbox_ai(sandbox: SocketAddr, settings: serde_json::Value) {
    let res = reqwest::Client::new()
        .put(format!("http://{sandbox}/_sandbox/ai"))
        .json(&settings)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "sandbox refused {settings}");
}

/// What the sandbox saw (`GET /_sandbox/ai`).
pub async fn sandbox_seen(sandbox: SocketAddr) -> serde_json::Value {
    reqwest::get(format!("http://{sandbox}/_sandbox/ai"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub fn openai_target(sandbox: SocketAddr) -> Target {
    Target {
        base_url: format!("http://{sandbox}/openai/v1"),
        api_key: "sk-sandbox".into(),
    }
}

pub fn anthropic_target(sandbox: SocketAddr) -> Target {
    Target {
        base_url: format!("http://{sandbox}/anthropic"),
        api_key: "sk-ant-sandbox".into(),
    }
}

/// Options for a proxy in front of one sandbox, with generous rate limits.
pub fn options(database_url: &str, sandbox: SocketAddr) -> Options {
    Options {
        database_url: database_url.to_owned(),
        redis_url: None,
        openai: vec![openai_target(sandbox)],
        anthropic: vec![anthropic_target(sandbox)],
        rate_per_minute: 60_000,
        rate_burst: 1_000,
        upstream_ca_file: None,
        spill_path: std::env::temp_dir()
            .join(format!("pdx-proxy-test-{}", Uuid::new_v4().simple()))
            .join("usage.spill"),
        usage_refresh: Duration::from_millis(500),
        key_refresh: Duration::from_secs(60),
        batch_max: 500,
        batch_wait: Duration::from_millis(10),
        max_attempts: 3,
        upstream_timeouts: proxy::options::UpstreamTimeouts::default(),
        shutdown_grace: Duration::from_secs(20),
        client_idle_timeout: Duration::from_secs(60),
    }
}

/// A proxy serving on a free port; `stop` shuts it down the way the binary does.
pub struct RunningProxy {
    pub addr: SocketAddr,
    pub spill_path: PathBuf,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<proxy::App>,
}

async fn wait_listening(addr: SocketAddr) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the proxy did not start listening on {addr}");
}

impl RunningProxy {
    pub async fn start(options: Options) -> Self {
        let spill_path = options.spill_path.clone();
        let app = proxy::build_with(options).await.unwrap();
        // Served as the binary serves it: one runtime per core (proxy::per_core).
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            app.serve(addr, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
            app
        });
        wait_listening(addr).await;
        Self {
            addr,
            spill_path,
            stop,
            served,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops serving, then flushes usage (App::shutdown), then removes the spill directory.
    pub async fn stop(self) {
        let spill_path = self.spill_path.clone();
        self.stop_keeping_files().await;
        if let Some(dir) = spill_path.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// Stops serving and flushes usage, leaving the spill file where it is.
    pub async fn stop_keeping_files(self) {
        let _ = self.stop.send(());
        let app = self.served.await.unwrap();
        app.shutdown().await;
    }
}

pub struct TestUser {
    pub id: Uuid,
    pub key: String,
    pub key_id: Uuid,
}

/// A user with one API key and, when `plan` is given, a subscription in `status`.
pub async fn user(pool: &PgPool, plan: Option<(&str, &str)>, cap: Option<i64>) -> TestUser {
    let id = Uuid::new_v4();
    sqlx::query("INSERT INTO users (id, email, password_hash) VALUES ($1, $2, 'x')")
        .bind(id)
        .bind(format!("{}@example.test", id.simple()))
        .execute(pool)
        .await
        .unwrap();
    if let Some((plan, status)) = plan {
        sqlx::query(
            "INSERT INTO subscriptions (id, user_id, stripe_subscription_id, stripe_customer_id,
                plan, status, spending_cap_microdollars, stripe_state_at, current_period_start)
             VALUES ($1, $2, $3, $4, $5, $6, $7, now(), date_trunc('month', now()))",
        )
        .bind(Uuid::new_v4())
        .bind(id)
        .bind(format!("sub_{}", id.simple()))
        .bind(format!("cus_{}", id.simple()))
        .bind(plan)
        .bind(status)
        .bind(cap)
        .execute(pool)
        .await
        .unwrap();
    }
    let (key, key_id) = add_key(pool, id).await;
    TestUser { id, key, key_id }
}

pub async fn add_key(pool: &PgPool, user_id: Uuid) -> (String, Uuid) {
    let secret = domain::ApiKeySecret::generate();
    let key_id = Uuid::new_v4();
    db::api_keys::insert(pool, key_id, user_id, "test", &secret)
        .await
        .unwrap();
    (secret.expose().to_owned(), key_id)
}

/// Usage rows of a user, oldest first.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UsageRow {
    pub request_id: String,
    pub model: String,
    pub provider: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cost_microdollars: i64,
    pub status_code: i32,
    pub estimated: bool,
}

pub async fn usage(pool: &PgPool, user: Uuid) -> Vec<UsageRow> {
    sqlx::query_as(
        "SELECT request_id, model, provider, input_tokens, output_tokens, cache_read_tokens,
                cost_microdollars, status_code, estimated
         FROM usage_events WHERE user_id = $1 ORDER BY created_at, request_id",
    )
    .bind(user)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Waits until the user has at least `n` usage rows (the writer batches), then returns them.
pub async fn wait_usage(pool: &PgPool, user: Uuid, n: usize, within: Duration) -> Vec<UsageRow> {
    let deadline = Instant::now() + within;
    loop {
        let rows = usage(pool, user).await;
        if rows.len() >= n || Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// An OpenAI chat request for `model` with `key`, through `proxy`.
pub async fn post_chat(
    proxy: &RunningProxy,
    key: &str,
    model: &str,
    stream: bool,
) -> reqwest::Response {
    client()
        .post(proxy.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&chat_body(model, stream))
        .send()
        .await
        .unwrap()
}

/// An Anthropic Messages request through `proxy`, as the Anthropic SDK sends it.
pub async fn post_messages(
    proxy: &RunningProxy,
    key: &str,
    body: &serde_json::Value,
) -> reqwest::Response {
    client()
        .post(proxy.url("/v1/messages"))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Reads a streamed answer to its end: the text, and whether it broke off with an error
/// rather than ending. Bounded at 10 s, so that a stream left hanging fails the test.
pub async fn read_stream(res: reqwest::Response) -> (String, bool) {
    use futures::StreamExt;
    let mut stream = res.bytes_stream();
    let mut text = String::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) => text.push_str(&String::from_utf8_lossy(&c)),
                Err(_) => return true,
            }
        }
        false
    })
    .await;
    let broke = read.expect("the stream hung");
    (text, broke)
}

pub fn chat_body(model: &str, stream: bool) -> serde_json::Value {
    serde_json::json!({
        "model": model,
        "stream": stream,
        "messages": [{"role": "user", "content": "Say hello to the sandbox"}],
    })
}

pub use crate::common::ports::free_port;
