//! Reads a Stripe event into what it says about a subscription. Only the fields we use are
//! read, from Stripe's documented shapes (the period on the subscription for older API
//! versions, on its items for newer ones; the invoice's subscription under
//! `parent.subscription_details` or, older, `subscription`).

use chrono::{DateTime, TimeZone, Utc};
use domain::Plan;
use serde_json::Value;

#[derive(Debug)]
pub struct Event {
    pub id: String,
    pub kind: String,
    pub created: DateTime<Utc>,
    pub object: Value,
}

impl Event {
    pub fn parse(body: &[u8]) -> Option<Self> {
        let v: Value = serde_json::from_slice(body).ok()?;
        Some(Self {
            id: v["id"].as_str()?.to_owned(),
            kind: v["type"].as_str()?.to_owned(),
            created: Utc.timestamp_opt(v["created"].as_i64()?, 0).single()?,
            object: v["data"]["object"].clone(),
        })
    }
}

/// What an event is about.
#[derive(Debug)]
pub enum Subject {
    /// A subscription event: its object is the subscription as of the event.
    Subscription(Reported),
    /// An invoice event: it names the subscription but not its state, which is read from
    /// Stripe (a failed first invoice leaves a subscription `incomplete`, a final invoice is
    /// paid after cancellation: the invoice alone cannot say).
    Invoice {
        subscription: String,
        customer: String,
    },
}

/// A subscription's state.
#[derive(Debug)]
pub struct Reported {
    pub subscription: String,
    pub customer: String,
    /// user id from the object's metadata (set at checkout), if present.
    pub metadata_user: Option<String>,
    pub plan: Option<Plan>,
    pub status: Option<String>,
    pub period: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    pub cancel_at_period_end: Option<bool>,
}

fn ts(v: &Value) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(v.as_i64()?, 0).single()
}

/// The plan of a subscription: its base price is one of ours (by configured id or by our
/// lookup key), or the checkout's metadata says so.
pub fn plan_of<'a>(
    prices: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    metadata_plan: Option<&str>,
    price_basic: &str,
    price_pro: &str,
) -> Option<Plan> {
    for (id, lookup_key) in prices {
        if !id.is_empty() && id == price_basic {
            return Some(Plan::Basic);
        }
        if !id.is_empty() && id == price_pro {
            return Some(Plan::Pro);
        }
        if let Some(p) = lookup_key
            .filter(|k| k.ends_with("_base"))
            .and_then(billing::catalog::plan_of_lookup_key)
        {
            return Some(p);
        }
    }
    metadata_plan.and_then(|p| Plan::parse(p).ok())
}

pub fn read(event: &Event, price_basic: &str, price_pro: &str) -> Option<Subject> {
    let o = &event.object;
    match event.kind.as_str() {
        k if k.starts_with("customer.subscription.") => {
            let items = o["items"]["data"].as_array().cloned().unwrap_or_default();
            let first = items.first().cloned().unwrap_or(Value::Null);
            let prices = items.iter().map(|i| {
                (
                    i["price"]["id"].as_str().unwrap_or_default(),
                    i["price"]["lookup_key"].as_str(),
                )
            });
            Some(Subject::Subscription(Reported {
                subscription: o["id"].as_str()?.to_owned(),
                customer: o["customer"].as_str()?.to_owned(),
                metadata_user: o["metadata"]["user_id"].as_str().map(str::to_owned),
                plan: plan_of(
                    prices,
                    o["metadata"]["plan"].as_str(),
                    price_basic,
                    price_pro,
                ),
                status: o["status"].as_str().map(str::to_owned),
                period: (
                    ts(&o["current_period_start"]).or_else(|| ts(&first["current_period_start"])),
                    ts(&o["current_period_end"]).or_else(|| ts(&first["current_period_end"])),
                ),
                cancel_at_period_end: o["cancel_at_period_end"].as_bool(),
            }))
        }
        "invoice.payment_failed" | "invoice.paid" => {
            let sub = o["parent"]["subscription_details"]["subscription"]
                .as_str()
                .or_else(|| o["subscription"].as_str())?;
            Some(Subject::Invoice {
                subscription: sub.to_owned(),
                customer: o["customer"].as_str()?.to_owned(),
            })
        }
        _ => None,
    }
}

/// The state Stripe holds now for a subscription.
pub fn from_stripe(
    info: &billing::client::SubscriptionInfo,
    price_basic: &str,
    price_pro: &str,
) -> Reported {
    let prices = info
        .prices
        .iter()
        .map(|(id, key)| (id.as_str(), key.as_deref()));
    Reported {
        subscription: info.id.clone(),
        customer: info.customer.clone(),
        metadata_user: info.metadata.get("user_id").cloned(),
        plan: plan_of(
            prices,
            info.metadata.get("plan").map(String::as_str),
            price_basic,
            price_pro,
        ),
        status: Some(info.status.clone()),
        period: (
            info.current_period
                .and_then(|p| Utc.timestamp_opt(p.0, 0).single()),
            info.current_period
                .and_then(|p| Utc.timestamp_opt(p.1, 0).single()),
        ),
        cancel_at_period_end: Some(info.cancel_at_period_end),
    }
}

/// The lifecycle step a status change calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Provision(Plan),
    Suspend,
    Resume,
    Deprovision,
}

pub fn step(previous: Option<&str>, current: &str, plan: Plan) -> Option<Step> {
    use db::subscriptions::{is_delinquent, is_live};
    let ended = |s: &str| matches!(s, "canceled" | "incomplete_expired");
    match previous {
        _ if previous == Some(current) => None,
        _ if ended(current) => Some(Step::Deprovision),
        Some(p) if is_delinquent(p) && is_live(current) => Some(Step::Resume),
        Some(p) if is_live(p) && is_delinquent(current) => Some(Step::Suspend),
        Some(p) if ended(p) => None,
        _ if is_live(current) => Some(Step::Provision(plan)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_changes_map_to_lifecycle_steps() {
        let b = Plan::Basic;
        assert_eq!(step(None, "active", b), Some(Step::Provision(b)));
        assert_eq!(
            step(Some("incomplete"), "active", b),
            Some(Step::Provision(b))
        );
        assert_eq!(step(Some("active"), "past_due", b), Some(Step::Suspend));
        assert_eq!(step(Some("past_due"), "active", b), Some(Step::Resume));
        assert_eq!(step(Some("active"), "canceled", b), Some(Step::Deprovision));
        assert_eq!(step(Some("active"), "active", b), None);
        assert_eq!(step(Some("canceled"), "active", b), None);
        assert_eq!(step(None, "incomplete", b), None);
    }

    #[test]
    fn the_base_price_names_the_plan() {
        let prices = [
            ("price_x", Some("poindexter_pro_overage_input")),
            ("price_y", Some("poindexter_pro_base")),
        ];
        assert_eq!(plan_of(prices, None, "pb", "pp"), Some(Plan::Pro));
        assert_eq!(
            plan_of([("pb", None)], Some("pro"), "pb", "pp"),
            Some(Plan::Basic)
        );
        assert_eq!(plan_of([], Some("pro"), "pb", "pp"), Some(Plan::Pro));
        assert_eq!(plan_of([], None, "pb", "pp"), None);
    }
}
