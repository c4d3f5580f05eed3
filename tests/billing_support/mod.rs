//! Billing test support on the shared stack (`common::stack`): the api's Stripe base is the
//! sandbox, the sandbox's webhooks go to the api, and with `restate` the real workflows
//! process provisions against the same sandbox.
#![allow(dead_code)]

#[allow(unused_imports)]
pub use crate::common::stack::{Stack, PRICE_BASIC, PRICE_PRO, STRIPE_KEY, WEBHOOK_SECRET};

use crate::common::api::Session;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Database, sandbox and api; with `restate`, also restate-server and the workflows process.
pub async fn billing_stack(restate: bool) -> Stack {
    Stack::start_with(&[], None, restate).await
}

impl Stack {
    pub async fn register(&self, email: &str) -> Session {
        let res = self
            .http
            .post(format!("{}/v1/auth/register", self.api))
            .json(&json!({"email": email, "password": "correct horse 42"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        Session::from(res.json::<Value>().await.unwrap())
    }

    pub async fn api_post(&self, path: &str, token: &str, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.api))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn api_get(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.api))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn control(&self, path: &str, body: Value) -> Value {
        let res = self
            .http
            .post(format!("{}/stripe/_sandbox{path}", self.sandbox.url))
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
        self.sandbox.get_json("/stripe/_sandbox/resources").await
    }

    pub async fn events(&self) -> Vec<Value> {
        let v = self.sandbox.get_json("/stripe/_sandbox/events").await;
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

    /// Asserts that the api has finished with every event the sandbox created: each was
    /// answered 200 and is recorded in `webhook_events`. The api answers only after it has
    /// handed any work to Restate, so this is the positive marker to wait for before
    /// asserting that an event started nothing.
    pub async fn all_events_processed(&self) {
        for e in self.events().await {
            let id = e["event"]["id"].as_str().unwrap().to_owned();
            let answered = e["deliveries"]
                .as_array()
                .is_some_and(|d| d.iter().any(|s| s == 200));
            assert!(answered, "event {id} not answered 200: {e}");
            assert!(
                db::webhook_events::seen(&self.db.pool, "stripe", &id)
                    .await
                    .unwrap(),
                "event {id} answered but not recorded"
            );
        }
    }

    /// Total of meter `event_name` for `customer` in the sandbox.
    pub async fn meter_total(&self, customer: &str, event_name: &str) -> i64 {
        let r = self.stripe_resources().await;
        crate::common::sandbox::meter_total(&r, customer, event_name)
    }

    /// subscribe → pay on the hosted checkout page with the test card → webhooks delivered.
    /// Returns the Stripe subscription id.
    pub async fn subscribe_and_pay(&self, s: &Session, plan: &str) -> String {
        let res = self
            .api_post("/v1/billing/subscribe", &s.access, json!({"plan": plan}))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let url = res.json::<Value>().await.unwrap()["checkout_url"]
            .as_str()
            .unwrap()
            .to_owned();
        let paid = pay_checkout(&url).await;
        assert_eq!(paid.status(), StatusCode::SEE_OTHER, "the test card pays");
        let session_id = url.rsplit('/').next().unwrap();
        let session: Value = self
            .http
            .get(format!(
                "{}/stripe/v1/checkout/sessions/{session_id}",
                self.sandbox.url
            ))
            .bearer_auth(STRIPE_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        session["subscription"]
            .as_str()
            .unwrap_or_else(|| panic!("checkout not paid: {session}"))
            .to_owned()
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
        self.restate()
            .query(&format!(
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

/// Submits the hosted checkout page at `url` with Stripe's test card, as a person would; the
/// answer is the page's own (a 303 to the success URL when paid), not followed.
pub async fn pay_checkout(url: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(url)
        .form(&[
            ("card_number", "4242424242424242"),
            ("exp", "12/34"),
            ("cvc", "123"),
            ("name", "Test"),
        ])
        .send()
        .await
        .unwrap()
}
