//! `/billing`: plan and status, Stripe's billing portal (change plan, payment method and
//! invoices, cancel), and the monthly spending cap; without a subscription, the two plans.

use super::csrf_form::CsrfOnly;
use crate::error::{ApiError, ApiResult};
use crate::portal::browser::BrowserId;
use crate::portal::csrf::CsrfForm;
use crate::portal::format;
use crate::portal::page::{self, Chrome};
use crate::portal::{csrf, session::PortalUser};
use crate::routes::billing::spending_cap;
use crate::routes::oauth::plan_cards;
use crate::routes::oauth::PlanCard;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

pub struct SubView {
    plan: String,
    status: String,
    status_class: &'static str,
    price: String,
    included: String,
    renewal: String,
}

#[derive(Template)]
#[template(path = "billing.html")]
struct BillingPage {
    chrome: Chrome,
    notice: Option<&'static str>,
    error: Option<String>,
    sub: Option<SubView>,
    cap_now: String,
    cap_value: String,
    plans: Vec<PlanCard>,
    next: &'static str,
}

#[derive(serde::Deserialize)]
pub struct BillingQuery {
    saved: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    user: PortalUser,
    Query(q): Query<BillingQuery>,
) -> Response {
    let notice = q
        .saved
        .as_deref()
        .map(|_| "Spending cap saved. Every AI request is checked against it from now on.");
    match render(&state, &user, notice, None).await {
        Ok(p) => page::render(&p),
        Err(e) => e.into_response(),
    }
}

async fn render(
    state: &AppState,
    user: &PortalUser,
    notice: Option<&'static str>,
    error: Option<String>,
) -> ApiResult<BillingPage> {
    let sub = db::subscriptions::current(&state.pool, user.user.id)
        .await?
        .filter(|s| {
            db::subscriptions::is_live(&s.status) || db::subscriptions::is_delinquent(&s.status)
        });
    let cap = sub.as_ref().and_then(|s| s.spending_cap_microdollars);
    let view = sub.map(|s| {
        let plan = domain::Plan::parse(&s.plan).unwrap_or(domain::Plan::Basic);
        let renewal = match (s.cancel_at_period_end, s.current_period_end) {
            (true, Some(end)) => format!("Cancelled: it ends on {}.", format::date(end)),
            (false, Some(end)) => format!("Renews on {}.", format::date(end)),
            _ => String::new(),
        };
        SubView {
            plan: match plan {
                domain::Plan::Basic => "Basic".into(),
                domain::Plan::Pro => "Pro".into(),
            },
            status_class: if db::subscriptions::is_live(&s.status) {
                "badge-ok"
            } else {
                "badge-bad"
            },
            status: s.status,
            price: format::money(plan.monthly_price_microdollars()),
            included: format::tokens(plan.included_tokens()),
            renewal,
        }
    });
    Ok(BillingPage {
        chrome: Chrome {
            title: "Billing".into(),
            email: Some(user.user.email.clone()),
            active: "billing",
            csrf: csrf::token(state, &user.browser),
        },
        notice,
        error,
        sub: view,
        cap_now: match cap {
            Some(c) => format!("Current cap: {} a month.", format::money(c)),
            None => "No cap is set.".into(),
        },
        cap_value: cap.map(|c| (c / 1_000_000).to_string()).unwrap_or_default(),
        plans: plan_cards(),
        next: "/dashboard",
    })
}

#[derive(serde::Deserialize)]
pub struct CapForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    cap: String,
}

pub async fn set_cap(
    State(state): State<AppState>,
    user: PortalUser,
    CsrfForm(form): CsrfForm<CapForm>,
) -> Response {
    let raw = form.cap.trim().trim_start_matches('$').replace(',', "");
    let cents = if raw.is_empty() {
        Ok(None)
    } else {
        raw.parse::<i64>()
            .ok()
            .and_then(|d| d.checked_mul(100))
            .map(Some)
            .ok_or_else(|| ApiError::bad_field("cap", "enter a whole number of dollars"))
    };
    let result = match cents.and_then(spending_cap::parse_cap) {
        Ok(cap) => spending_cap::apply(&state, user.user.id, cap).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Redirect::to("/billing?saved=1").into_response(),
        Err(e) => {
            let status = e.status();
            let message = match &e {
                ApiError::BadRequest { .. } | ApiError::Conflict(_) => e.to_string(),
                _ => return e.into_response(),
            };
            match render(&state, &user, None, Some(capitalised(&message))).await {
                Ok(p) => page::render_status(status, &p),
                Err(e) => e.into_response(),
            }
        }
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Change plan, payment method and invoices, cancel: all in Stripe's billing portal.
pub async fn manage(
    State(state): State<AppState>,
    Extension(browser): Extension<BrowserId>,
    user: PortalUser,
    _: CsrfForm<CsrfOnly>,
) -> Response {
    let back = format!(
        "{}/billing",
        state.config.public_base_url.trim_end_matches('/')
    );
    match crate::routes::billing::portal::portal_url(&state, user.user.id, &back).await {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(e) => page::error(
            if e.status().is_server_error() {
                e.status()
            } else {
                StatusCode::CONFLICT
            },
            "The billing portal is not available",
            &e.to_string(),
            csrf::token(&state, &browser),
        ),
    }
}

impl crate::portal::csrf::WithCsrf for CapForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}
