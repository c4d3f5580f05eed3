//! The sandbox's Stripe account: every object in memory, the idempotency-key cache, the
//! meter events deduplicated on `identifier`, and the webhook log.

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

pub struct Stripe {
    pub(super) secret_key: String,
    pub(super) webhook_secret: String,
    pub(super) webhook_url: String,
    pub(super) http: reqwest::Client,
    pub(super) inner: Mutex<Account>,
    /// The account as it started (the seeded catalogue), for `reset`.
    initial: Account,
    seq: AtomicU64,
    prefix: String,
}

/// A fault on one route. With `status`, the request is refused with that status in Stripe's
/// error format before anything happens (5xx: Stripe trouble, retry; 4xx: a refusal). Without,
/// the request is processed and the response waits `delay_ms` (Stripe did the work but
/// answered late).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct Fault {
    /// Path below `/stripe`, e.g. `/v1/billing/meter_events`.
    pub path: String,
    pub status: Option<u16>,
    #[serde(default)]
    pub delay_ms: u64,
    /// How many requests it applies to; absent means all.
    pub count: Option<u32>,
}

#[derive(Default, Clone)]
pub struct Account {
    pub customers: BTreeMap<String, Value>,
    pub products: BTreeMap<String, Value>,
    pub prices: BTreeMap<String, Value>,
    pub meters: BTreeMap<String, Value>,
    pub sessions: BTreeMap<String, Value>,
    pub subscriptions: BTreeMap<String, Value>,
    pub invoices: BTreeMap<String, Value>,
    /// identifier → meter event
    pub meter_events: BTreeMap<String, Value>,
    /// Idempotency-Key → (status, response body)
    pub idempotency: HashMap<String, (u16, Value)>,
    /// Every event created, in order, with its deliveries.
    pub events: Vec<Value>,
    /// While true, new events are queued instead of delivered.
    pub holding: bool,
    pub held: Vec<String>,
    pub faults: Vec<Fault>,
    last_created: i64,
}

impl Stripe {
    pub fn new(config: &config::Config) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap_or_default();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let mut account = Account::default();
        // With STRIPE_PRICE_* set (as `poindexter dev` does), the catalogue exists from the
        // start; without, the account is empty, as a fresh Stripe account before stripe-setup.
        if !config.stripe.price_basic.is_empty() || !config.stripe.price_pro.is_empty() {
            seed_prices(&mut account, config);
        }
        Self {
            secret_key: config.stripe.secret_key.expose().to_owned(),
            webhook_secret: config.stripe.webhook_secret.expose().to_owned(),
            webhook_url: format!(
                "{}/webhooks/stripe",
                config.sandbox.webhook_base.trim_end_matches('/')
            ),
            http,
            initial: account.clone(),
            inner: Mutex::new(account),
            seq: AtomicU64::new(1),
            // Ids differ between sandbox runs, like Stripe's never repeat.
            prefix: format!("{:x}", (nanos % 0xff_ffff) as u64),
        }
    }

    /// Back to the account as it started: the seeded catalogue, nothing else.
    pub fn reset(&self) {
        *self.lock() = self.initial.clone();
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Account> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new id like Stripe's: `cus_…`, `sub_…`.
    pub(super) fn id(&self, prefix: &str) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}_sbx{}{n:08}", self.prefix)
    }

    /// What `GET /_sandbox/resources` shows under `"stripe"`.
    pub fn resources(&self) -> Value {
        let a = self.lock();
        let mut totals: BTreeMap<(String, String), i64> = BTreeMap::new();
        for e in a.meter_events.values() {
            let customer = e["payload"]["stripe_customer_id"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            let name = e["event_name"].as_str().unwrap_or("").to_owned();
            let value = e["payload"]["value"]
                .as_str()
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0);
            *totals.entry((customer, name)).or_default() += value;
        }
        json!({
            "customers": a.customers.values().collect::<Vec<_>>(),
            "subscriptions": a.subscriptions.values().collect::<Vec<_>>(),
            "meter_totals": totals.into_iter().map(|((customer, event_name), value)| json!({
                "customer": customer, "event_name": event_name, "value": value,
            })).collect::<Vec<_>>(),
            // Each event as taken, for a test that must say which ones made a total.
            "meter_events": a.meter_events.values().map(|e| json!({
                "identifier": e["identifier"], "customer": e["payload"]["stripe_customer_id"],
                "event_name": e["event_name"], "value": e["payload"]["value"],
                "created": e["created"],
            })).collect::<Vec<_>>(),
        })
    }
}

impl Account {
    /// Event `created` times strictly increase, so "newer" is well defined even within one
    /// second (Stripe's own timestamps are seconds).
    pub fn next_created(&mut self) -> i64 {
        let now = now_unix();
        self.last_created = now.max(self.last_created + 1);
        self.last_created
    }
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The prices `poindexter dev` configures by default (STRIPE_PRICE_BASIC/PRO), with their
/// metered overage prices and meters, so the dev sandbox sells both plans without
/// `stripe-setup`.
fn seed_prices(a: &mut Account, config: &config::Config) {
    let plans = [
        (
            "basic",
            config.stripe.price_basic.as_str(),
            5_000,
            ["0.0003", "0.0015"],
        ),
        (
            "pro",
            config.stripe.price_pro.as_str(),
            25_000,
            ["0.00025", "0.0012"],
        ),
    ];
    for (plan, base_id, cents, overage) in plans {
        let product = format!("poindexter_{plan}");
        // Named as `poindexter stripe-setup` names them, which is what Checkout shows.
        let title = match plan {
            "basic" => "Poindexter Basic",
            _ => "Poindexter Pro",
        };
        a.products
            .insert(product.clone(), super::objects::product(&product, title, 0));
        let base_id = if base_id.is_empty() {
            format!("price_{plan}_sandbox")
        } else {
            base_id.to_owned()
        };
        a.prices.insert(
            base_id.clone(),
            super::objects::price(
                &base_id,
                &product,
                &format!("poindexter_{plan}_base"),
                Some(cents),
                None,
                None,
            ),
        );
        for (kind, amount) in ["input", "output"].iter().zip(overage) {
            let id = format!("price_{plan}_overage_{kind}_sandbox");
            a.prices.insert(
                id.clone(),
                super::objects::price(
                    &id,
                    &product,
                    &format!("poindexter_{plan}_overage_{kind}"),
                    None,
                    Some(amount),
                    Some(&format!("mtr_sandbox_{kind}")),
                ),
            );
        }
    }
    for kind in ["input", "output"] {
        let id = format!("mtr_sandbox_{kind}");
        a.meters.insert(
            id.clone(),
            super::objects::meter(
                &id,
                &format!("poindexter_overage_{kind}_tokens"),
                &format!("Overage {kind} tokens"),
                0,
            ),
        );
    }
}
