//! `/dashboard`: the identity (with copy buttons), this month's usage and bill so far, a
//! chart of tokens per day, and recent activity — the seed's mock-up.

use crate::error::ApiResult;
use crate::portal::activity_rows::{self, Row};
use crate::portal::format;
use crate::portal::page::{self, Chrome};
use crate::portal::{chart, csrf, session::PortalUser};
use crate::routes::billing::usage::bill;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use chrono::Datelike;
use db::status::{IdentityStatus, SignalStatus};

pub struct IdentityView {
    pub email: String,
    pub email_raw: String,
    pub phone: String,
    pub phone_raw: String,
    pub signal_label: &'static str,
    pub signal_class: &'static str,
    pub status_label: &'static str,
    pub status_class: &'static str,
    pub failure: Option<String>,
}

impl IdentityView {
    pub fn new(i: &db::identities::Identity) -> Self {
        let (status_label, status_class) = match i.status {
            IdentityStatus::Active => ("Active", "badge-ok"),
            IdentityStatus::Pending | IdentityStatus::Provisioning => ("Setting up…", "badge-warn"),
            IdentityStatus::Suspended => ("Suspended", "badge-bad"),
            IdentityStatus::Failed => ("Setup failed", "badge-bad"),
            IdentityStatus::Deprovisioning => ("Closing", "badge-warn"),
            IdentityStatus::Deleted => ("Closed", ""),
        };
        let (signal_label, signal_class) = match i.signal_status {
            SignalStatus::Registered => ("Registered ✓", "badge-ok"),
            SignalStatus::Pending => ("Registering…", "badge-warn"),
            SignalStatus::CaptchaRequired => ("Waiting for verification", "badge-warn"),
            SignalStatus::Failed => ("Registration failed", "badge-bad"),
            SignalStatus::Unregistered => ("Unregistered", ""),
            SignalStatus::None => ("Not set up", ""),
        };
        let email_raw = i.email.clone().unwrap_or_default();
        let phone_raw = i.phone_number.clone().unwrap_or_default();
        Self {
            email: if email_raw.is_empty() {
                "—".into()
            } else {
                email_raw.clone()
            },
            phone: if phone_raw.is_empty() {
                "—".into()
            } else {
                format::phone(&phone_raw)
            },
            email_raw,
            phone_raw,
            signal_label,
            signal_class,
            status_label,
            status_class,
            failure: i
                .failure_reason
                .as_deref()
                .filter(|_| i.status == IdentityStatus::Failed)
                .map(format::reason),
        }
    }
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    name: Option<String>,
    notice: Option<&'static str>,
    identity: Option<IdentityView>,
    period: String,
    tokens_in: String,
    tokens_out: String,
    included_left: String,
    ai_cost: String,
    emails_sent: String,
    signals_sent: String,
    bill_base: String,
    bill_overage: String,
    bill_total: String,
    chart: String,
    activity: Vec<Row>,
}

#[derive(serde::Deserialize)]
pub struct DashboardQuery {
    checkout: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    user: PortalUser,
    Query(q): Query<DashboardQuery>,
) -> Response {
    match render(&state, &user, q).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn render(state: &AppState, user: &PortalUser, q: DashboardQuery) -> ApiResult<Response> {
    let user_id = user.user.id;
    let (month, from, to) = crate::routes::usage::this_period();
    let identity = db::identities::find_by_user(&state.pool, user_id)
        .await?
        .filter(|i| i.status != IdentityStatus::Deleted);
    let totals = db::usage::totals(&state.pool, user_id, month).await?;
    let b = bill(state, user_id, month, false).await?;
    let used = totals.input_tokens + totals.output_tokens;
    let (emails, signals) = db::activity::sent_counts(&state.pool, user_id, from).await?;
    let daily = db::activity::daily_tokens(&state.pool, user_id, from, to).await?;
    let days: Vec<_> = from
        .date_naive()
        .iter_days()
        .take_while(|d| *d < to.date_naive())
        .map(|d| {
            let (i, o) = daily
                .iter()
                .find(|(day, _, _)| *day == d)
                .map(|(_, i, o)| (*i, *o))
                .unwrap_or((0, 0));
            (d, i, o)
        })
        .collect();
    let notice = match q.checkout.as_deref() {
        Some("success") => Some("Payment received. Your identity is being set up; this page shows it as soon as it is ready."),
        Some("cancelled") => Some("Checkout was cancelled; nothing was charged."),
        _ => None,
    };
    let page = DashboardPage {
        chrome: Chrome {
            title: "Dashboard".into(),
            email: Some(user.user.email.clone()),
            active: "dashboard",
            csrf: csrf::token(state, &user.browser),
        },
        name: user.user.name.clone(),
        notice,
        identity: identity.as_ref().map(IdentityView::new),
        period: format!("{} {}", from.format("%B"), from.year()),
        tokens_in: format::tokens(totals.input_tokens),
        tokens_out: format::tokens(totals.output_tokens),
        included_left: format::tokens((b.included_tokens - used).max(0)),
        ai_cost: format::money(totals.cost_microdollars),
        emails_sent: format::int(emails),
        signals_sent: format::int(signals),
        bill_base: format::money(b.base_price_microdollars),
        bill_overage: format::money(b.overage_cost_microdollars),
        bill_total: format::money(b.total_microdollars),
        chart: chart::daily_bars(&days),
        activity: activity_rows::merged(state, user_id, from, 8).await?,
    };
    Ok(page::render(&page))
}
