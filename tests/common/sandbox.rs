//! The provider sandbox started in-process on a free port, with the dev configuration aimed at
//! it, plus clients with short timeouts and a small receiver that records the webhooks the
//! sandbox sends.

use axum::body::Bytes;
use axum::http::HeaderMap;
use config::{Component, Config};
use providers::{GoogleClient, HttpOptions, SignalClient, TelnyxClient};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;

pub struct TestSandbox {
    pub url: String,
    pub config: Config,
    pub http: reqwest::Client,
}

/// The total of meter `event_name` for `customer` in the sandbox Stripe's resources
/// (`/stripe/_sandbox/resources`); 0 when nothing was reported.
pub fn meter_total(resources: &Value, customer: &str, event_name: &str) -> i64 {
    resources["meter_totals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["customer"] == customer && t["event_name"] == event_name)
        .map(|t| t["value"].as_i64().unwrap())
        .unwrap_or(0)
}

/// Timeouts short enough for fault tests, backoff short enough to keep them fast.
pub fn fast_options() -> HttpOptions {
    HttpOptions {
        timeout: Duration::from_millis(1500),
        connect_timeout: Duration::from_millis(500),
        max_retries: 3,
        min_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
    }
}

/// Starts a sandbox; `env` overrides the dev defaults (e.g. `SANDBOX_WEBHOOK_BASE`).
pub async fn start_sandbox(env: &[(&str, &str)]) -> TestSandbox {
    start_sandbox_with(env, |_| {}).await
}

/// Like [`start_sandbox`], with a last change to the sandbox's configuration (for values the
/// dev defaults would fill in).
pub async fn start_sandbox_with(
    env: &[(&str, &str)],
    adjust: impl FnOnce(&mut Config),
) -> TestSandbox {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut vars: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    vars.insert("SANDBOX_ADDR".into(), addr.to_string());
    for d in config::apply_dev_defaults(&vars) {
        vars.entry(d.name.to_string()).or_insert(d.value);
    }
    let config = Config::load(Component::Sandbox, &vars).expect("sandbox config");
    let mut sandbox_config = config.clone();
    adjust(&mut sandbox_config);
    let app = sandbox::build(&sandbox_config);
    tokio::spawn(async move { server::serve(listener, app, std::future::pending()).await });
    TestSandbox {
        url: format!("http://{addr}"),
        config,
        http: reqwest::Client::new(),
    }
}

impl TestSandbox {
    pub fn google(&self) -> GoogleClient {
        GoogleClient::from_config(&self.config.google, fast_options()).unwrap()
    }

    pub fn telnyx(&self) -> TelnyxClient {
        TelnyxClient::from_config(&self.config.telnyx, fast_options()).unwrap()
    }

    pub fn signal(&self) -> SignalClient {
        SignalClient::from_config(&self.config, fast_options()).unwrap()
    }

    /// `POST /_sandbox/faults`; returns the rule id.
    pub async fn fault(&self, spec: Value) -> String {
        let resp = self
            .http
            .post(format!("{}/_sandbox/faults", self.url))
            .json(&spec)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "fault {spec} refused");
        resp.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// `GET` a sandbox path (e.g. `/_sandbox/faults`) as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        super::json_of(self.http.get(format!("{}{path}", self.url))).await
    }

    /// How often the fault rule with this id fired.
    pub async fn fired(&self, id: &str) -> u64 {
        let v = self.get_json("/_sandbox/faults").await;
        v["faults"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .map(|f| f["fired"].as_u64().unwrap())
            .unwrap_or(0)
    }

    pub async fn clear_faults(&self) {
        self.http
            .delete(format!("{}/_sandbox/faults", self.url))
            .send()
            .await
            .unwrap();
    }

    pub async fn resources(&self) -> Value {
        self.get_json("/_sandbox/resources").await
    }

    /// The Signal accounts (registered or pending) the sandbox holds for `number`.
    pub async fn signal_accounts(&self, number: &str) -> Vec<Value> {
        let r = self.resources().await;
        r["signal"]["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["number"] == number)
            .cloned()
            .collect()
    }

    pub async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> reqwest::Response {
        self.http
            .request(method, format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

/// A webhook as the receiver got it.
#[derive(Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    }
}

/// A server that answers 200 to every POST and hands what it got to the returned channel.
pub async fn start_receiver() -> (String, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().fallback(axum::routing::post(
        move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(Received { headers, body });
                "ok"
            }
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), rx)
}

/// The next webhook, or a failure after `secs` seconds.
pub async fn next_webhook(rx: &mut mpsc::UnboundedReceiver<Received>, secs: u64) -> Received {
    tokio::time::timeout(Duration::from_secs(secs), rx.recv())
        .await
        .expect("no webhook arrived in time")
        .expect("receiver closed")
}
