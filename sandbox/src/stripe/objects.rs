//! Stripe's JSON shapes (API version 2025-x "basil"-era fields, plus the legacy ones some
//! clients still read, e.g. `current_period_*` on the subscription and `subscription` on the
//! invoice). Fields we do not emulate are present with Stripe's empty values so strict clients
//! (async-stripe, stripe-python) parse them. Shapes follow Stripe's API reference; a few
//! rarely-read nested objects are simplified, marked "simplified" where so.

use serde_json::{json, Value};

pub fn error(kind: &str, message: &str, param: Option<&str>) -> Value {
    let mut e = json!({ "error": { "type": kind, "message": message } });
    if let Some(p) = param {
        e["error"]["param"] = json!(p);
    }
    e
}

pub fn list(url: &str, data: Vec<Value>) -> Value {
    json!({ "object": "list", "data": data, "has_more": false, "url": url })
}

pub fn customer(
    id: &str,
    email: Option<&str>,
    name: Option<&str>,
    metadata: Value,
    created: i64,
) -> Value {
    json!({
        "id": id, "object": "customer", "address": null, "balance": 0, "created": created,
        "currency": null, "default_source": null, "delinquent": false, "description": null,
        "discount": null, "email": email, "invoice_prefix": id.trim_start_matches("cus_").chars().take(8).collect::<String>().to_uppercase(),
        "invoice_settings": { "custom_fields": null, "default_payment_method": null, "footer": null, "rendering_options": null },
        "livemode": false, "metadata": metadata, "name": name, "next_invoice_sequence": 1,
        "phone": null, "preferred_locales": [], "shipping": null, "tax_exempt": "none", "test_clock": null,
    })
}

pub fn product(id: &str, name: &str, created: i64) -> Value {
    json!({
        "id": id, "object": "product", "active": true, "created": created, "default_price": null,
        "description": null, "images": [], "livemode": false, "marketing_features": [],
        "metadata": {}, "name": name, "package_dimensions": null, "shippable": null,
        "statement_descriptor": null, "tax_code": null, "type": "service", "unit_label": null,
        "updated": created, "url": null,
    })
}

pub fn price(
    id: &str,
    product: &str,
    lookup_key: &str,
    unit_amount: Option<i64>,
    unit_amount_decimal: Option<&str>,
    meter: Option<&str>,
) -> Value {
    let decimal = unit_amount_decimal
        .map(str::to_owned)
        .or_else(|| unit_amount.map(|a| a.to_string()));
    json!({
        "id": id, "object": "price", "active": true, "billing_scheme": "per_unit", "created": 0,
        "currency": "usd", "custom_unit_amount": null, "livemode": false, "lookup_key": lookup_key,
        "metadata": {}, "nickname": null, "product": product,
        "recurring": {
            "interval": "month", "interval_count": 1, "meter": meter, "trial_period_days": null,
            "usage_type": if meter.is_some() { "metered" } else { "licensed" },
        },
        "tax_behavior": "unspecified", "tiers_mode": null, "transform_quantity": null,
        "type": "recurring", "unit_amount": unit_amount, "unit_amount_decimal": decimal,
    })
}

pub fn meter(id: &str, event_name: &str, display_name: &str, created: i64) -> Value {
    json!({
        "id": id, "object": "billing.meter", "created": created,
        "customer_mapping": { "event_payload_key": "stripe_customer_id", "type": "by_id" },
        "default_aggregation": { "formula": "sum" }, "display_name": display_name,
        "event_name": event_name, "event_time_window": null, "livemode": false,
        "status": "active", "status_transitions": { "deactivated_at": null }, "updated": created,
        "value_settings": { "event_payload_key": "value" },
    })
}

pub struct SessionSpec<'a> {
    pub id: &'a str,
    pub url: &'a str,
    pub customer: Option<&'a str>,
    pub client_reference_id: Option<&'a str>,
    pub success_url: Option<&'a str>,
    pub cancel_url: Option<&'a str>,
    pub payment_method_types: Vec<String>,
    pub metadata: Value,
    pub subscription_metadata: Value,
    pub billing_cycle_anchor: Option<i64>,
    pub line_items: Vec<(String, Option<u64>)>,
    pub created: i64,
}

pub fn checkout_session(s: &SessionSpec<'_>) -> Value {
    json!({
        "id": s.id, "object": "checkout.session", "after_expiration": null,
        "allow_promotion_codes": null, "amount_subtotal": null, "amount_total": null,
        "automatic_tax": { "enabled": false, "liability": null, "provider": null, "status": null },
        "billing_address_collection": null, "cancel_url": s.cancel_url,
        "client_reference_id": s.client_reference_id, "created": s.created, "currency": "usd",
        "custom_fields": [], "custom_text": { "after_submit": null, "shipping_address": null, "submit": null, "terms_of_service_acceptance": null },
        "customer": s.customer, "customer_creation": null, "customer_email": null,
        "expires_at": s.created + 24 * 3600, "invoice": null, "livemode": false, "locale": null,
        "metadata": s.metadata, "mode": "subscription", "payment_intent": null,
        "payment_method_types": s.payment_method_types, "payment_status": "unpaid",
        "shipping_options": [], "status": "open", "subscription": null,
        "success_url": s.success_url, "ui_mode": "hosted_page", "url": s.url,
        // Not part of Stripe's object: kept so "paying" can build the subscription.
        "x_sandbox": { "line_items": s.line_items.iter().map(|(p, q)| json!({"price": p, "quantity": q})).collect::<Vec<_>>(), "subscription_metadata": s.subscription_metadata, "billing_cycle_anchor": s.billing_cycle_anchor },
    })
}

pub fn portal_session(
    id: &str,
    customer: &str,
    url: &str,
    return_url: Option<&str>,
    created: i64,
) -> Value {
    json!({
        "id": id, "object": "billing_portal.session", "configuration": "bpc_sandbox",
        "created": created, "customer": customer, "flow": null, "livemode": false,
        "locale": null, "on_behalf_of": null, "return_url": return_url, "url": url,
    })
}

/// The legacy `plan` view of a recurring price, which Stripe still embeds in subscription items.
fn plan_of(price: &Value) -> Value {
    json!({
        "id": price["id"], "object": "plan", "active": price["active"],
        "amount": price["unit_amount"], "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": price["billing_scheme"], "created": price["created"],
        "currency": price["currency"], "interval": price["recurring"]["interval"],
        "interval_count": price["recurring"]["interval_count"], "livemode": false,
        "metadata": {}, "meter": price["recurring"]["meter"], "nickname": price["nickname"],
        "product": price["product"], "tiers_mode": null, "transform_usage": null,
        "trial_period_days": null, "usage_type": price["recurring"]["usage_type"],
    })
}

/// A subscription item for `price` (the full price object is embedded, as Stripe does).
pub fn subscription_item(
    id: &str,
    subscription: &str,
    price: &Value,
    quantity: Option<u64>,
    start: i64,
    end: i64,
) -> Value {
    json!({
        "id": id, "object": "subscription_item", "created": start,
        "current_period_start": start, "current_period_end": end, "discounts": [],
        "metadata": {}, "plan": plan_of(price), "price": price, "quantity": quantity,
        "subscription": subscription, "tax_rates": [],
    })
}

pub struct SubscriptionSpec<'a> {
    pub id: &'a str,
    pub customer: &'a str,
    pub items: Vec<Value>,
    pub metadata: Value,
    pub status: &'a str,
    pub start: i64,
    pub end: i64,
}

pub fn subscription(s: SubscriptionSpec<'_>) -> Value {
    json!({
        "id": s.id, "object": "subscription", "application": null,
        "automatic_tax": { "disabled_reason": null, "enabled": false, "liability": null },
        "billing_cycle_anchor": s.start, "billing_mode": { "type": "classic" },
        "billing_schedules": [],
        "cancel_at": null, "cancel_at_period_end": false, "canceled_at": null,
        "collection_method": "charge_automatically", "created": s.start, "currency": "usd",
        // Legacy (pre-2025) placement of the period; newer API versions carry it per item.
        "current_period_start": s.start, "current_period_end": s.end,
        "customer": s.customer, "days_until_due": null, "default_payment_method": null,
        "description": null, "discounts": [], "ended_at": null,
        "invoice_settings": { "account_tax_ids": null, "issuer": { "type": "self" } },
        "items": { "object": "list", "data": s.items, "has_more": false, "url": format!("/v1/subscription_items?subscription={}", s.id) },
        "latest_invoice": null, "livemode": false, "metadata": s.metadata,
        "pending_setup_intent": null, "pending_update": null, "schedule": null,
        "start_date": s.start, "status": s.status, "test_clock": null, "trial_end": null,
        "trial_start": null,
    })
}

pub fn invoice(
    id: &str,
    customer: &str,
    subscription: &str,
    amount: i64,
    paid: bool,
    created: i64,
) -> Value {
    json!({
        "id": id, "object": "invoice", "amount_due": amount,
        "amount_paid": if paid { amount } else { 0 },
        "amount_remaining": if paid { 0 } else { amount }, "attempt_count": 1,
        "billing_reason": "subscription_cycle", "collection_method": "charge_automatically",
        "created": created, "currency": "usd", "customer": customer, "livemode": false,
        "parent": { "type": "subscription_details", "quote_details": null,
                    "subscription_details": { "metadata": {}, "subscription": subscription } },
        // Legacy field, still read by older integrations.
        "subscription": subscription,
        "status": if paid { "paid" } else { "open" },
    })
}

pub fn meter_event(
    event_name: &str,
    identifier: &str,
    payload: Value,
    timestamp: i64,
    created: i64,
) -> Value {
    json!({
        "object": "billing.meter_event", "created": created, "event_name": event_name,
        "identifier": identifier, "livemode": false, "payload": payload, "timestamp": timestamp,
    })
}

pub fn event(id: &str, kind: &str, object: Value, previous: Option<Value>, created: i64) -> Value {
    let mut data = json!({ "object": object });
    if let Some(p) = previous {
        data["previous_attributes"] = p;
    }
    json!({
        "id": id, "object": "event", "api_version": "2025-03-31.basil", "created": created,
        "data": data, "livemode": false, "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null }, "type": kind,
    })
}
