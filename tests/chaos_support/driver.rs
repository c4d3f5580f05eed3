//! What users do during the chaos run, through whichever api and proxy replica answers: sign
//! up, check out on the sandbox's hosted page (sometimes with a declined card first), wait for
//! the identity, make a key, and send AI traffic (OpenAI and Anthropic formats, streamed and
//! not, some clients leaving mid-stream), while some change plan, fail a payment and recover,
//! or cancel. Every answered AI request goes into the ledger with the tokens its answer
//! reported, which the end of the run compares with what was metered.

use crate::common::stack::{PRICE_BASIC, PRICE_PRO, STRIPE_KEY};
use rand::Rng;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A request the proxy answered in full: its id and the tokens its answer reported.
#[derive(Debug, Clone)]
pub struct Answered {
    pub request_id: String,
    pub user_id: String,
    pub input: i64,
    pub output: i64,
}

#[derive(Default)]
pub struct Ledger {
    pub answered: Mutex<Vec<Answered>>,
    /// Requests the proxy took (it gave a request id) whose answer did not arrive whole: a
    /// client that left, a proxy killed mid-answer, an error status. Metered at most once.
    pub partial: Mutex<Vec<String>>,
    /// Every AI answer's status, by status.
    pub statuses: Mutex<std::collections::BTreeMap<u16, u64>>,
    pub no_answer: AtomicU64,
    /// 401s for keys that should work: who, and how long after the key was made.
    pub unauthorized: Mutex<Vec<String>>,
    pub signups: AtomicU64,
    pub paid: Mutex<Vec<Persona>>,
    pub active: AtomicU64,
    pub plan_changes: AtomicU64,
    pub payment_failures: AtomicU64,
    pub cancellations: AtomicU64,
    pub usage_syncs: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Big prompts: goes over the plan's included tokens (overage to bill).
    Heavy,
    /// Basic to Pro and back.
    ChangesPlan,
    /// A failed payment (suspension), then a successful one (resumption).
    PaymentFails,
    /// Cancels the subscription (deprovisioning).
    Cancels,
    /// A declined card first, then a good one.
    Declined,
}

const KINDS: [Kind; 5] = [
    Kind::Heavy,
    Kind::ChangesPlan,
    Kind::PaymentFails,
    Kind::Cancels,
    Kind::Declined,
];

#[derive(Debug, Clone)]
pub struct Persona {
    pub email: String,
    pub user_id: String,
    pub kind: Kind,
    pub subscription: String,
}

pub struct Driver {
    pub apis: Vec<String>,
    pub proxies: Vec<String>,
    pub sandbox: String,
    pub admin_token: String,
    pub ledger: Arc<Ledger>,
    pub http: reqwest::Client,
}

/// Picks one of `urls` at random.
fn any(urls: &[String]) -> &str {
    &urls[rand::thread_rng().gen_range(0..urls.len())]
}

impl Driver {
    /// Starts a persona every few seconds until `signups_end`; each runs until `end`.
    pub async fn run(self: Arc<Self>, signups_end: Instant, end: Instant) {
        let mut tasks = Vec::new();
        let mut n = 0;
        // The usage sync an operator (or the hourly schedule) runs, at random moments.
        let me = self.clone();
        tasks.push(tokio::spawn(async move { me.usage_syncs(end).await }));
        while Instant::now() < signups_end {
            let me = self.clone();
            let kind = KINDS[n % KINDS.len()];
            n += 1;
            tasks.push(tokio::spawn(async move { me.persona(n, kind, end).await }));
            let gap = rand::thread_rng().gen_range(1500..3500);
            tokio::time::sleep(Duration::from_millis(gap)).await;
        }
        for t in tasks {
            t.await.expect("a persona panicked");
        }
    }

    async fn persona(&self, n: usize, kind: Kind, end: Instant) {
        let email = format!("chaos-{n}-{}@example.com", uuid::Uuid::new_v4().simple());
        let Some((token, user_id)) = self.sign_up(&email, end).await else {
            return;
        };
        self.ledger.signups.fetch_add(1, Ordering::Relaxed);
        let Some(subscription) = self.check_out(&token, kind, end).await else {
            return;
        };
        let persona = Persona {
            email,
            user_id,
            kind,
            subscription,
        };
        self.ledger.paid.lock().unwrap().push(persona.clone());
        if !self.wait_active(&token, end).await {
            return;
        }
        self.ledger.active.fetch_add(1, Ordering::Relaxed);
        let Some(key) = self.create_key(&token, end).await else {
            return;
        };
        let key_made = Instant::now();
        let started = Instant::now();
        let span = end.saturating_duration_since(started);
        let mut done = [false; 2];
        while Instant::now() < end {
            let at = started.elapsed().as_secs_f64() / span.as_secs_f64().max(0.001);
            let sub = &persona.subscription;
            match kind {
                Kind::ChangesPlan if at > 0.3 && !done[0] => {
                    done[0] = self
                        .stripe_control(
                            &format!("subscriptions/{sub}/plan"),
                            json!({"price": PRICE_PRO}),
                        )
                        .await;
                    self.ledger
                        .plan_changes
                        .fetch_add(u64::from(done[0]), Ordering::Relaxed);
                }
                Kind::ChangesPlan if at > 0.65 && !done[1] => {
                    done[1] = self
                        .stripe_control(
                            &format!("subscriptions/{sub}/plan"),
                            json!({"price": PRICE_BASIC}),
                        )
                        .await;
                    self.ledger
                        .plan_changes
                        .fetch_add(u64::from(done[1]), Ordering::Relaxed);
                }
                Kind::PaymentFails if at > 0.3 && !done[0] => {
                    done[0] = self
                        .stripe_control(&format!("subscriptions/{sub}/payment_failed"), json!({}))
                        .await;
                    self.ledger
                        .payment_failures
                        .fetch_add(u64::from(done[0]), Ordering::Relaxed);
                }
                Kind::PaymentFails if at > 0.6 && !done[1] => {
                    done[1] = self
                        .stripe_control(
                            &format!("subscriptions/{sub}/payment_succeeded"),
                            json!({}),
                        )
                        .await;
                }
                Kind::Cancels if at > 0.5 && !done[0] => {
                    done[0] = self
                        .stripe_control(&format!("subscriptions/{sub}/cancel"), json!({}))
                        .await;
                    self.ledger
                        .cancellations
                        .fetch_add(u64::from(done[0]), Ordering::Relaxed);
                }
                _ => {}
            }
            let cancelled = kind == Kind::Cancels && done[0];
            let wait = self.ai_request(&persona, &key, key_made, cancelled).await;
            // Light users pause between requests; heavy ones keep going, as told by 429s.
            let pause = if kind == Kind::Heavy {
                0
            } else {
                rand::thread_rng().gen_range(100..600)
            };
            tokio::time::sleep(wait.max(Duration::from_millis(pause))).await;
        }
    }

    /// POST to a random api, trying again (on another replica) while they are down or 5xx.
    async fn api_call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        end: Instant,
    ) -> Option<(u16, Value)> {
        while Instant::now() < end + Duration::from_secs(30) {
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", any(&self.apis)))
                .timeout(Duration::from_secs(15));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            if let Some(b) = &body {
                req = req.json(b);
            }
            if let Ok(res) = req.send().await {
                let status = res.status().as_u16();
                if status < 500 {
                    let v = res.json::<Value>().await.unwrap_or(Value::Null);
                    return Some((status, v));
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        None
    }

    /// Registers (or, when an earlier attempt's answer was lost, logs in): the access token
    /// and the user's id.
    async fn sign_up(&self, email: &str, end: Instant) -> Option<(String, String)> {
        let creds = json!({"email": email, "password": "correct horse 42", "name": "Chaos"});
        loop {
            let (status, v) = self
                .api_call(
                    reqwest::Method::POST,
                    "/v1/auth/register",
                    None,
                    Some(creds.clone()),
                    end,
                )
                .await?;
            let (status, v) = if status == 409 {
                self.api_call(
                    reqwest::Method::POST,
                    "/v1/auth/login",
                    None,
                    Some(creds.clone()),
                    end,
                )
                .await?
            } else {
                (status, v)
            };
            if let (Some(t), Some(id)) = (v["access_token"].as_str(), v["user"]["id"].as_str()) {
                return Some((t.to_owned(), id.to_owned()));
            }
            assert!(
                status == 429 || status == 409,
                "sign-up refused: {status} {v}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Subscribe, then pay on the hosted page; the Stripe subscription.
    async fn check_out(&self, token: &str, kind: Kind, end: Instant) -> Option<String> {
        let plan = if kind == Kind::ChangesPlan || rand::thread_rng().gen_bool(0.7) {
            "basic"
        } else {
            "pro"
        };
        let url = loop {
            let (status, v) = self
                .api_call(
                    reqwest::Method::POST,
                    "/v1/billing/subscribe",
                    Some(token),
                    Some(json!({"plan": plan})),
                    end,
                )
                .await?;
            if let Some(u) = v["checkout_url"].as_str() {
                break u.to_owned();
            }
            // 502 from a Stripe fault is retried; anything else is a bug.
            assert!(
                status == 502 || status == 503 || status == 429,
                "subscribe: {status} {v}"
            );
            if Instant::now() > end {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        let no_redirects = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let pay = |card: &'static str| {
            no_redirects
                .post(&url)
                .form(&[
                    ("card_number", card),
                    ("exp", "12/34"),
                    ("cvc", "123"),
                    ("name", "Chaos"),
                ])
                .send()
        };
        if kind == Kind::Declined {
            let res = pay("4000000000000002").await.ok()?;
            assert_eq!(res.status(), 402, "the declined card was not declined");
        }
        let res = pay("4242424242424242").await.ok()?;
        assert_eq!(res.status(), 303, "the test card did not pay");
        let session_id = url.rsplit('/').next().unwrap();
        // Stripe's API is faulted like any provider's: asked again until it answers.
        let session: Value = loop {
            let res = self
                .http
                .get(format!(
                    "{}/stripe/v1/checkout/sessions/{session_id}",
                    self.sandbox
                ))
                .bearer_auth(STRIPE_KEY)
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            if let Some(r) = res.ok().filter(|r| r.status().is_success()) {
                if let Ok(v) = r.json().await {
                    break v;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        session["subscription"].as_str().map(str::to_owned)
    }

    async fn wait_active(&self, token: &str, end: Instant) -> bool {
        while Instant::now() < end {
            if let Some((200, v)) = self
                .api_call(
                    reqwest::Method::GET,
                    "/v1/identity/status",
                    Some(token),
                    None,
                    end,
                )
                .await
            {
                if v["status"] == "active" {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        false
    }

    async fn create_key(&self, token: &str, end: Instant) -> Option<String> {
        let (_, v) = self
            .api_call(
                reqwest::Method::POST,
                "/v1/api-keys",
                Some(token),
                Some(json!({"name": "chaos"})),
                end,
            )
            .await?;
        v["key"].as_str().map(str::to_owned)
    }

    /// A Stripe dashboard action on the sandbox (never faulted: faults are on `/v1/*`).
    async fn stripe_control(&self, path: &str, body: Value) -> bool {
        self.http
            .post(format!("{}/stripe/_sandbox/{path}", self.sandbox))
            .json(&body)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    async fn usage_syncs(&self, end: Instant) {
        let month = domain::Month::containing(chrono::Utc::now().date_naive());
        while Instant::now() < end {
            let pause = rand::thread_rng().gen_range(3000..8000);
            tokio::time::sleep(Duration::from_millis(pause)).await;
            let user = {
                let paid = self.ledger.paid.lock().unwrap();
                if paid.is_empty() {
                    continue;
                }
                paid[rand::thread_rng().gen_range(0..paid.len())]
                    .user_id
                    .clone()
            };
            let res = self
                .http
                .post(format!(
                    "{}/v1/admin/usage-sync/{user}/{month}",
                    any(&self.apis)
                ))
                .bearer_auth(&self.admin_token)
                .json(&json!({}))
                .timeout(Duration::from_secs(20))
                .send()
                .await;
            if res.is_ok_and(|r| r.status().is_success()) {
                self.ledger.usage_syncs.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// One AI request through a random proxy, in one of four shapes; recorded in the ledger.
    /// How long to wait before the next (a 429's Retry-After, or a moment after no answer).
    async fn ai_request(
        &self,
        persona: &Persona,
        key: &str,
        key_made: Instant,
        cancelled: bool,
    ) -> Duration {
        let (anthropic, stream, leave) = {
            let mut r = rand::thread_rng();
            let stream = r.gen_bool(0.6);
            (r.gen_bool(0.4), stream, stream && r.gen_bool(0.15))
        };
        // Heavy users send long prompts (the sandbox counts a token a word).
        let words = if persona.kind == Kind::Heavy {
            120_000
        } else {
            30
        };
        let prompt = "word ".repeat(words);
        let (path, body) = if anthropic {
            (
                "/v1/messages",
                json!({"model": "claude-sonnet-4", "max_tokens": 64, "stream": stream,
                       "messages": [{"role": "user", "content": prompt}]}),
            )
        } else {
            let mut b = json!({"model": "gpt-4o-mini", "stream": stream,
                               "messages": [{"role": "user", "content": prompt}]});
            if stream {
                b["stream_options"] = json!({"include_usage": true});
            }
            ("/v1/chat/completions", b)
        };
        let sent = self
            .http
            .post(format!("{}{path}", any(&self.proxies)))
            .bearer_auth(key)
            .json(&body)
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        let Ok(res) = sent else {
            self.ledger.no_answer.fetch_add(1, Ordering::Relaxed);
            return Duration::from_millis(100);
        };
        let status = res.status().as_u16();
        *self
            .ledger
            .statuses
            .lock()
            .unwrap()
            .entry(status)
            .or_default() += 1;
        let Some(id) = res
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
        else {
            self.ledger.no_answer.fetch_add(1, Ordering::Relaxed);
            return Duration::from_millis(100);
        };
        if matches!(status, 401 | 402 | 429) {
            // Refused at the door (suspended, cancelled, rate): never went upstream, or did
            // and failed; either way at most one event.
            let retry_after = res
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            // A cancelled subscription's keys end with its identity; any other 401 is a key
            // the proxies should know.
            if status == 401 && !cancelled {
                let age = key_made.elapsed();
                self.ledger.unauthorized.lock().unwrap().push(format!(
                    "{} got 401 {age:.1?} after its key was made",
                    persona.email
                ));
            }
            self.ledger.partial.lock().unwrap().push(id);
            return Duration::from_secs(retry_after).max(Duration::from_millis(100));
        }
        let tokens = if status != 200 {
            None
        } else if leave {
            read_first_chunk(res).await;
            None
        } else if stream {
            read_stream_usage(res, anthropic).await
        } else {
            res.json::<Value>()
                .await
                .ok()
                .and_then(|v| usage_of(&v, anthropic))
        };
        match tokens {
            Some((input, output)) => self.ledger.answered.lock().unwrap().push(Answered {
                request_id: id,
                user_id: persona.user_id.clone(),
                input,
                output,
            }),
            None => self.ledger.partial.lock().unwrap().push(id),
        }
        Duration::ZERO
    }
}

fn usage_of(v: &Value, anthropic: bool) -> Option<(i64, i64)> {
    let u = &v["usage"];
    if anthropic {
        Some((u["input_tokens"].as_i64()?, u["output_tokens"].as_i64()?))
    } else {
        Some((
            u["prompt_tokens"].as_i64()?,
            u["completion_tokens"].as_i64()?,
        ))
    }
}

async fn read_first_chunk(mut res: reqwest::Response) {
    let _ = res.chunk().await;
    drop(res); // the client leaves mid-stream
}

/// The usage a whole stream reported: OpenAI's last chunk (`include_usage`), or Anthropic's
/// `message_start` (input) and `message_delta` (output). None if the stream broke off.
async fn read_stream_usage(mut res: reqwest::Response, anthropic: bool) -> Option<(i64, i64)> {
    let mut text = Vec::new();
    loop {
        match res.chunk().await {
            Ok(Some(c)) => text.extend_from_slice(&c),
            Ok(None) => break,
            Err(_) => return None,
        }
    }
    let text = String::from_utf8(text).ok()?;
    let mut usage = None;
    let (mut input, mut output, mut done) = (None, None, false);
    for line in text.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            done = true;
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            continue;
        };
        if anthropic {
            match v["type"].as_str() {
                Some("message_start") => input = v["message"]["usage"]["input_tokens"].as_i64(),
                Some("message_delta") => output = v["usage"]["output_tokens"].as_i64(),
                Some("message_stop") => done = true,
                _ => {}
            }
        } else if v["usage"].is_object() {
            usage = usage_of(&v, false);
        }
    }
    if !done {
        return None;
    }
    if anthropic {
        Some((input?, output?))
    } else {
        usage
    }
}
