//! The hosted Checkout page a session's `url` opens (`/stripe/c/pay/{id}`): a person sees the
//! plan and its price and pays with a test card. Opening the page pays nothing; submitting the
//! card form does (see `card` for which cards pay). A paid session then sends its customer to
//! the session's `success_url` (with `{CHECKOUT_SESSION_ID}` replaced by the id, as Stripe
//! does); the Cancel link goes to its `cancel_url`. Tests that only need a paid session use the
//! control route `POST /stripe/_sandbox/checkout/{id}/pay` instead.

mod card;
mod html;

use super::S;
use crate::stripe::form::Form;
use crate::stripe::state::Account;
use crate::stripe::webhooks::complete_checkout;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use card::{Entered, Outcome};
use chrono::Datelike;
use serde_json::Value;

/// What the page shows of one session.
struct Checkout {
    id: String,
    complete: bool,
    /// `success_url` with the session id in place of `{CHECKOUT_SESSION_ID}`, if usable.
    success_url: Option<String>,
    cancel_url: Option<String>,
    customer_email: Option<String>,
    /// The subscribed product's name.
    title: String,
    lines: Vec<Line>,
    /// Licensed items' total, in the currency's minor unit.
    total: i64,
    currency: String,
    /// "month", "3 months", …
    interval: String,
}

struct Line {
    name: String,
    detail: String,
    /// Formatted, for licensed items; metered items are billed later.
    amount: Option<String>,
}

/// What the page says after a refused submission.
#[derive(Default)]
struct Problem {
    /// A message for the whole form (a declined card).
    alert: Option<String>,
    fields: Vec<card::FieldError>,
}

pub async fn show(State(s): S, Path(id): Path<String>) -> Response {
    let Some(c) = checkout(&s.lock(), &id) else {
        return page(StatusCode::NOT_FOUND, html::not_found());
    };
    if c.complete {
        return page(StatusCode::OK, html::complete(&c));
    }
    let entered = Entered {
        email: c.customer_email.clone().unwrap_or_default(),
        ..Entered::default()
    };
    page(
        StatusCode::OK,
        html::form(&c, &entered, &Problem::default()),
    )
}

/// The card form's submission: a card test mode accepts pays the session and redirects (303)
/// to its success URL; anything else shows the form again with what was wrong (400 for a
/// malformed field, 402 for a declined card) and pays nothing. Submitting a paid session again
/// only redirects.
pub async fn submit(State(s): S, Path(id): Path<String>, body: Bytes) -> Response {
    let Some(c) = checkout(&s.lock(), &id) else {
        return page(StatusCode::NOT_FOUND, html::not_found());
    };
    if c.complete {
        return finished(&c);
    }
    let form = Form::parse(&body);
    let field = |k: &str| form.get(k).unwrap_or_default().to_owned();
    let entered = Entered {
        email: field("email"),
        number: field("card_number"),
        exp: field("exp"),
        cvc: field("cvc"),
        name: field("name"),
    };
    let today = chrono::Utc::now().date_naive();
    let refused = |status, problem: Problem| {
        // The security code is never written back into the page.
        let shown = Entered {
            cvc: String::new(),
            ..entered.clone()
        };
        page(status, html::form(&c, &shown, &problem))
    };
    match card::check(&entered, (today.year(), today.month())) {
        Err(fields) => refused(
            StatusCode::BAD_REQUEST,
            Problem {
                alert: None,
                fields,
            },
        ),
        Ok(Outcome::Declined { message, .. }) => refused(
            StatusCode::PAYMENT_REQUIRED,
            Problem {
                alert: Some(message.to_owned()),
                fields: Vec::new(),
            },
        ),
        Ok(Outcome::Approved) => match complete_checkout(&s, &id).await {
            Ok(_) => {
                let paid = checkout(&s.lock(), &id);
                paid.map_or_else(
                    || page(StatusCode::NOT_FOUND, html::not_found()),
                    |p| finished(&p),
                )
            }
            Err(message) => refused(
                StatusCode::BAD_REQUEST,
                Problem {
                    alert: Some(format!(
                        "The sandbox could not complete this checkout: {message}."
                    )),
                    fields: Vec::new(),
                },
            ),
        },
    }
}

/// After payment: to the success URL, or a confirmation when the session has none.
fn finished(c: &Checkout) -> Response {
    let location = c
        .success_url
        .as_deref()
        .and_then(|u| HeaderValue::from_str(u).ok());
    match location {
        Some(to) => (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response(),
        None => page(StatusCode::OK, html::complete(c)),
    }
}

/// An HTML page with the headers a card form deserves: nothing loaded from elsewhere, no
/// framing, no caching, no referrer.
fn page(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; frame-ancestors 'none'",
            ),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

fn checkout(a: &Account, id: &str) -> Option<Checkout> {
    let session = a.sessions.get(id)?;
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let customer_email = session["customer"]
        .as_str()
        .and_then(|c| a.customers.get(c))
        .and_then(|c| text(&c["email"]))
        .or_else(|| text(&session["customer_email"]));
    let mut lines = Vec::new();
    let mut total = 0;
    let mut title = None;
    let mut interval = None;
    let currency = session["currency"].as_str().unwrap_or("usd").to_owned();
    for item in session["x_sandbox"]["line_items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let Some(price) = item["price"].as_str().and_then(|p| a.prices.get(p)) else {
            continue;
        };
        let product = price["product"]
            .as_str()
            .and_then(|p| a.products.get(p))
            .and_then(|p| text(&p["name"]));
        let every = every(&price["recurring"]);
        match price["unit_amount"].as_i64() {
            Some(unit) if price["recurring"]["usage_type"] != "metered" => {
                let quantity = item["quantity"].as_i64().unwrap_or(1);
                let name = product
                    .or_else(|| text(&price["nickname"]))
                    .unwrap_or_else(|| "Subscription".into());
                title.get_or_insert_with(|| name.clone());
                interval.get_or_insert_with(|| every.clone());
                total += unit * quantity;
                let mut detail = format!("Billed {}", billed(&every));
                if quantity > 1 {
                    detail = format!("Qty {quantity} · {detail}");
                }
                lines.push(Line {
                    name,
                    detail,
                    amount: Some(money(unit * quantity, &currency)),
                });
            }
            _ => {
                let name = price["recurring"]["meter"]
                    .as_str()
                    .and_then(|m| a.meters.get(m))
                    .and_then(|m| text(&m["display_name"]))
                    .or_else(|| text(&price["nickname"]))
                    .or(product)
                    .unwrap_or_else(|| "Usage".into());
                let rate = price["unit_amount_decimal"]
                    .as_str()
                    .and_then(|d| d.parse::<f64>().ok())
                    .map(|minor_per_unit| {
                        // Per million units, in major units (cents → dollars).
                        let per_million = minor_per_unit * 1_000_000.0 / 100.0;
                        format!("{} per million, ", money_major(per_million, &currency))
                    })
                    .unwrap_or_default();
                lines.push(Line {
                    name,
                    detail: format!("Usage-based: {rate}billed {}", billed(&every)),
                    amount: None,
                });
            }
        }
    }
    Some(Checkout {
        id: id.to_owned(),
        complete: session["status"] == "complete",
        success_url: text(&session["success_url"])
            .filter(|u| web_url(u))
            .map(|u| u.replace("{CHECKOUT_SESSION_ID}", id)),
        cancel_url: text(&session["cancel_url"]).filter(|u| web_url(u)),
        customer_email,
        title: title.unwrap_or_else(|| "a subscription".into()),
        lines,
        total,
        currency,
        interval: interval.unwrap_or_else(|| "month".into()),
    })
}

/// Only http(s) URLs become links or redirects.
fn web_url(u: &str) -> bool {
    let lower = u.to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// "month" or "3 months", from a price's `recurring`.
fn every(recurring: &Value) -> String {
    let unit = recurring["interval"].as_str().unwrap_or("month");
    match recurring["interval_count"].as_u64().unwrap_or(1) {
        1 => unit.to_owned(),
        n => format!("{n} {unit}s"),
    }
}

/// "monthly", "every 3 months".
fn billed(every: &str) -> String {
    match every {
        "day" => "daily".into(),
        "week" => "weekly".into(),
        "month" => "monthly".into(),
        "year" => "yearly".into(),
        other => format!("every {other}"),
    }
}

fn symbol(currency: &str) -> Option<&'static str> {
    match currency {
        "usd" => Some("$"),
        "eur" => Some("€"),
        "gbp" => Some("£"),
        _ => None,
    }
}

/// An amount in the currency's minor unit (cents), as "$50.00".
fn money(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let m = minor.unsigned_abs();
    let number = format!("{}.{:02}", thousands(m / 100), m % 100);
    match symbol(currency) {
        Some(s) => format!("{sign}{s}{number}"),
        None => format!("{sign}{number} {}", currency.to_uppercase()),
    }
}

fn money_major(major: f64, currency: &str) -> String {
    money((major * 100.0).round() as i64, currency)
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_as_on_a_price_tag() {
        assert_eq!(money(5_000, "usd"), "$50.00");
        assert_eq!(money(123_456_789, "usd"), "$1,234,567.89");
        assert_eq!(money(5, "eur"), "€0.05");
        assert_eq!(money(2_500, "chf"), "25.00 CHF");
        assert_eq!(money_major(0.0003 * 10_000.0, "usd"), "$3.00");
        assert_eq!(
            billed(&every(
                &serde_json::json!({"interval": "month", "interval_count": 3})
            )),
            "every 3 months"
        );
    }
}
