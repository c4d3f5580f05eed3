//! Events: created with strictly increasing `created`, logged, and delivered to the api
//! signed with `Stripe-Signature` (or held, to be released later in any order).

use super::objects::{self, SubscriptionSpec};
use super::state::{now_unix, Account, Stripe};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// Like Stripe, a delivery that is not answered 2xx is retried later, with growing delays
/// (Stripe's own schedule spans three days; the sandbox's is shorter).
const RETRY_DELAYS: [Duration; 4] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
];

/// One month of service, as the sandbox counts it.
const PERIOD_SECS: i64 = 30 * 24 * 3600;

impl Stripe {
    /// Creates an event; delivers it now unless deliveries are held. Returns its id.
    pub(super) async fn emit(
        self: &Arc<Self>,
        kind: &str,
        object: Value,
        previous: Option<Value>,
    ) -> String {
        let id = self.id("evt");
        let deliver = {
            let mut a = self.lock();
            let created = a.next_created();
            let event = objects::event(&id, kind, object, previous, created);
            a.events.push(json!({ "event": event, "deliveries": [] }));
            if a.holding {
                a.held.push(id.clone());
                false
            } else {
                true
            }
        };
        if deliver {
            let status = self.deliver(&id).await;
            if !(200..300).contains(&status) {
                let me = self.clone();
                let retry = id.clone();
                tokio::spawn(async move {
                    for delay in RETRY_DELAYS {
                        tokio::time::sleep(delay).await;
                        if (200..300).contains(&me.deliver(&retry).await) {
                            break;
                        }
                    }
                });
            }
        }
        id
    }

    /// POSTs the logged event `id` to the api, freshly signed; returns the HTTP status (0 when
    /// the api could not be reached).
    pub(super) async fn deliver(&self, id: &str) -> u16 {
        let Some(event) = self.event(id) else {
            return 0;
        };
        let body = event.to_string();
        let t = now_unix();
        let signature = billing::signature::sign(&self.webhook_secret, t, body.as_bytes());
        let status = match self
            .http
            .post(&self.webhook_url)
            .header("content-type", "application/json; charset=utf-8")
            .header("stripe-signature", signature)
            .body(body)
            .send()
            .await
        {
            Ok(r) => r.status().as_u16(),
            Err(e) => {
                tracing::warn!(event = id, error = %e, "stripe webhook delivery failed");
                0
            }
        };
        let mut a = self.lock();
        if let Some(entry) = a.events.iter_mut().find(|e| e["event"]["id"] == id) {
            if let Some(d) = entry["deliveries"].as_array_mut() {
                d.push(json!(status));
            }
        }
        status
    }

    pub(super) fn event(&self, id: &str) -> Option<Value> {
        self.lock()
            .events
            .iter()
            .find(|e| e["event"]["id"] == id)
            .map(|e| e["event"].clone())
    }
}

/// Pays the Checkout Session `id`: creates the active subscription and its paid invoice and
/// sends the three events Stripe sends. Paying twice changes nothing.
pub async fn complete_checkout(stripe: &Arc<Stripe>, id: &str) -> Result<String, String> {
    let (session, sub, invoice) = {
        let mut a = stripe.lock();
        let Some(session) = a.sessions.get(id).cloned() else {
            return Err(format!("No such checkout session: {id}"));
        };
        if let Some(sub) = session["subscription"].as_str() {
            return Ok(sub.to_owned());
        }
        let Some(customer) = session["customer"].as_str().map(str::to_owned) else {
            return Err("the sandbox needs sessions created with `customer`".into());
        };
        let sub_id = stripe.id("sub");
        let start = now_unix();
        // A `billing_cycle_anchor` ends the first (prorated) period there.
        let end = session["x_sandbox"]["billing_cycle_anchor"]
            .as_i64()
            .filter(|a| *a > start)
            .unwrap_or(start + PERIOD_SECS);
        let mut amount = 0;
        let mut items = Vec::new();
        for li in session["x_sandbox"]["line_items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let Some(price) = li["price"].as_str().and_then(|p| a.prices.get(p)).cloned() else {
                continue;
            };
            let qty = li["quantity"].as_u64();
            amount += price["unit_amount"].as_i64().unwrap_or(0) * qty.unwrap_or(0) as i64;
            items.push(objects::subscription_item(
                &stripe.id("si"),
                &sub_id,
                &price,
                qty,
                start,
                end,
            ));
        }
        let sub = objects::subscription(SubscriptionSpec {
            id: &sub_id,
            customer: &customer,
            items,
            metadata: session["x_sandbox"]["subscription_metadata"].clone(),
            status: "active",
            start,
            end,
        });
        let inv = objects::invoice(&stripe.id("in"), &customer, &sub_id, amount, true, start);
        a.subscriptions.insert(sub_id.clone(), sub.clone());
        a.invoices.insert(
            inv["id"].as_str().unwrap_or_default().to_owned(),
            inv.clone(),
        );
        let s = a.sessions.get_mut(id).ok_or("session vanished")?;
        s["status"] = json!("complete");
        s["payment_status"] = json!("paid");
        s["subscription"] = json!(sub_id);
        let mut public = s.clone();
        if let Some(o) = public.as_object_mut() {
            o.remove("x_sandbox");
        }
        (public, sub, inv)
    };
    let sub_id = sub["id"].as_str().unwrap_or_default().to_owned();
    stripe
        .emit("checkout.session.completed", session, None)
        .await;
    stripe
        .emit("customer.subscription.created", sub, None)
        .await;
    stripe.emit("invoice.paid", invoice, None).await;
    Ok(sub_id)
}

/// What a control action did: the events it created, in order.
pub type Emitted = Vec<String>;

fn with_sub<T>(
    stripe: &Stripe,
    id: &str,
    f: impl FnOnce(&mut Account, &mut Value) -> T,
) -> Result<T, String> {
    let mut a = stripe.lock();
    let mut sub = a
        .subscriptions
        .get(id)
        .cloned()
        .ok_or_else(|| format!("No such subscription: '{id}'"))?;
    let out = f(&mut a, &mut sub);
    a.subscriptions.insert(id.to_owned(), sub);
    Ok(out)
}

/// A renewal payment fails: `invoice.payment_failed`, then the subscription goes `past_due`.
pub async fn payment_failed(stripe: &Arc<Stripe>, id: &str) -> Result<Emitted, String> {
    let invoice_id = stripe.id("in");
    let (sub, prev, inv) = with_sub(stripe, id, |a, sub| {
        let prev = sub["status"].clone();
        sub["status"] = json!("past_due");
        let customer = sub["customer"].as_str().unwrap_or_default().to_owned();
        let inv = objects::invoice(&invoice_id, &customer, id, 5_000, false, now_unix());
        a.invoices.insert(invoice_id.clone(), inv.clone());
        (sub.clone(), prev, inv)
    })?;
    Ok(vec![
        stripe.emit("invoice.payment_failed", inv, None).await,
        stripe
            .emit(
                "customer.subscription.updated",
                sub,
                Some(json!({"status": prev})),
            )
            .await,
    ])
}

/// The customer pays again: `invoice.paid`, then the subscription is `active` again.
pub async fn payment_succeeded(stripe: &Arc<Stripe>, id: &str) -> Result<Emitted, String> {
    let invoice_id = stripe.id("in");
    let (sub, prev, inv) = with_sub(stripe, id, |a, sub| {
        let prev = sub["status"].clone();
        sub["status"] = json!("active");
        let customer = sub["customer"].as_str().unwrap_or_default().to_owned();
        let inv = objects::invoice(&invoice_id, &customer, id, 5_000, true, now_unix());
        a.invoices.insert(invoice_id.clone(), inv.clone());
        (sub.clone(), prev, inv)
    })?;
    Ok(vec![
        stripe.emit("invoice.paid", inv, None).await,
        stripe
            .emit(
                "customer.subscription.updated",
                sub,
                Some(json!({"status": prev})),
            )
            .await,
    ])
}

/// Switches the subscription to the plan of `price` (its base price): the base item and, for
/// our catalogue (lookup keys `poindexter_{plan}_…`), the metered overage items are replaced.
pub async fn change_plan(stripe: &Arc<Stripe>, id: &str, price: &str) -> Result<Emitted, String> {
    let outcome = with_sub(stripe, id, |a, sub| {
        let Some(base) = a.prices.get(price).cloned() else {
            return Err(format!("No such price: '{price}'"));
        };
        let plan_prefix = base["lookup_key"]
            .as_str()
            .and_then(|k| k.strip_suffix("_base"))
            .map(str::to_owned);
        let mut prices = vec![(base, Some(1))];
        if let Some(prefix) = &plan_prefix {
            for kind in ["input", "output"] {
                let key = format!("{prefix}_overage_{kind}");
                if let Some(p) = a.prices.values().find(|p| p["lookup_key"] == key.as_str()) {
                    prices.push((p.clone(), None));
                }
            }
        }
        let start = sub["current_period_start"]
            .as_i64()
            .unwrap_or_else(now_unix);
        let end = sub["current_period_end"]
            .as_i64()
            .unwrap_or(start + PERIOD_SECS);
        let previous = json!({ "items": sub["items"].clone() });
        let items: Vec<Value> = prices
            .into_iter()
            .map(|(p, q)| objects::subscription_item(&stripe.id("si"), id, &p, q, start, end))
            .collect();
        sub["items"]["data"] = json!(items);
        Ok((sub.clone(), previous))
    })??;
    Ok(vec![
        stripe
            .emit("customer.subscription.updated", outcome.0, Some(outcome.1))
            .await,
    ])
}

/// Cancels now: `customer.subscription.deleted` with status `canceled`, then the final
/// invoice (the period's metered usage) is paid: `invoice.paid`, as Stripe does.
pub async fn cancel(stripe: &Arc<Stripe>, id: &str) -> Result<Emitted, String> {
    let invoice_id = stripe.id("in");
    let (sub, inv) = with_sub(stripe, id, |a, sub| {
        let now = now_unix();
        sub["status"] = json!("canceled");
        sub["canceled_at"] = json!(now);
        sub["ended_at"] = json!(now);
        let customer = sub["customer"].as_str().unwrap_or_default().to_owned();
        let mut inv = objects::invoice(&invoice_id, &customer, id, 0, true, now);
        inv["billing_reason"] = json!("subscription_cycle");
        a.invoices.insert(invoice_id.clone(), inv.clone());
        (sub.clone(), inv)
    })?;
    Ok(vec![
        stripe
            .emit("customer.subscription.deleted", sub, None)
            .await,
        stripe.emit("invoice.paid", inv, None).await,
    ])
}
