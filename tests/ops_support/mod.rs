//! For the operator-facing tests (metrics, dashboard, fuzzing): a paying user with an active
//! identity on a `poindexter dev` stack, and a reader of Prometheus text.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Stripe's test card, typed into the sandbox's hosted checkout page.
const CARD_NUMBER: &str = "4242424242424242";

pub struct PaidUser {
    pub token: String,
    pub user_id: uuid::Uuid,
    pub identity: Value,
}

/// Sends `req`; its answer must be a success, read as JSON.
pub async fn ok_json(req: reqwest::RequestBuilder) -> Value {
    let res = req.send().await.unwrap();
    let status = res.status();
    let v: Value = res.json().await.unwrap_or_default();
    assert!(status.is_success(), "{status}: {v}");
    v
}

/// Signs up, subscribes to `basic`, pays on the hosted checkout page, and waits until the
/// Stripe webhooks have provisioned an active identity with Signal registered.
pub async fn paid_user(api: &str, email: &str) -> PaidUser {
    let http = reqwest::Client::new();
    let session = ok_json(
        http.post(format!("{api}/v1/auth/register"))
            .json(&json!({"email": email, "password": "ops-Pw-4e2b77 long enough"})),
    )
    .await;
    let token = session["access_token"].as_str().unwrap().to_owned();
    let user_id = session["user"]["id"].as_str().unwrap().parse().unwrap();
    let checkout = ok_json(
        http.post(format!("{api}/v1/billing/subscribe"))
            .bearer_auth(&token)
            .json(&json!({"plan": "basic"})),
    )
    .await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let paid = browser
        .post(checkout["checkout_url"].as_str().unwrap())
        .form(&[
            ("card_number", CARD_NUMBER),
            ("exp", "12/34"),
            ("cvc", "123"),
            ("name", "Test"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 303, "paid, and sent on to the success URL");
    let deadline = Instant::now() + Duration::from_secs(90);
    let identity = loop {
        let v: Value = http
            .get(format!("{api}/v1/identity"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or_default();
        if v["status"] == "active" && v["signal"]["registered"] == true {
            break v;
        }
        assert!(Instant::now() < deadline, "identity not ready: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    PaidUser {
        token,
        user_id,
        identity,
    }
}

/// One sample of Prometheus text: `name{labels} value`.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

pub fn parse_samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').expect("label=value");
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().unwrap_or(f64::NAN),
            }
        })
        .collect()
}

/// The sum of `name`'s samples whose labels include every pair of `with`.
pub fn total(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name && with.iter().all(|(k, v)| s.label(k) == Some(v)))
        .map(|s| s.value)
        .sum()
}

pub async fn scrape(base: &str) -> String {
    let res = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert!(res.status().is_success());
    res.text().await.unwrap()
}
