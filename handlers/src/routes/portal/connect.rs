//! The connect flow's own actions: `/connect` (the seed's entry URL, same as the
//! authorization endpoint), choosing a plan (to Stripe Checkout and back), the progress the
//! page polls, and retrying a failed provisioning.

use crate::error::ApiError;
use crate::portal::browser::BrowserId;
use crate::portal::connect_state::{standing, Phase, StepView};
use crate::portal::csrf;
use crate::portal::csrf::CsrfForm;
use crate::portal::page;
use crate::portal::session::{safe_next, PortalUser};
use crate::routes::billing::subscribe::{start_checkout, ReturnUrls};
use crate::state::AppState;
use axum::extract::{Extension, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;

pub async fn start(RawQuery(query): RawQuery) -> Redirect {
    Redirect::to(&format!("/oauth/authorize?{}", query.unwrap_or_default()))
}

#[derive(serde::Deserialize)]
pub struct PlanForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    plan: String,
    #[serde(default)]
    next: String,
}

/// Where to come back to, with the marker that makes the page wait for Stripe's webhook.
fn with_marker(base: &str, next: &str) -> String {
    let sep = if next.contains('?') { '&' } else { '?' };
    format!(
        "{base}{next}{sep}{}",
        crate::routes::oauth::BACK_FROM_CHECKOUT
    )
}

pub async fn choose_plan(
    State(state): State<AppState>,
    Extension(browser): Extension<BrowserId>,
    user: PortalUser,
    CsrfForm(form): CsrfForm<PlanForm>,
) -> Response {
    let Ok(plan) = domain::Plan::parse(&form.plan) else {
        return page::error(
            StatusCode::BAD_REQUEST,
            "Unknown plan",
            "Choose Basic or Pro.",
            csrf::token(&state, &browser),
        );
    };
    let next = safe_next(Some(&form.next)).unwrap_or_else(|| "/dashboard".into());
    let base = state
        .config
        .public_base_url
        .trim_end_matches('/')
        .to_owned();
    let success = with_marker(&base, &next);
    let cancel = format!("{base}{next}");
    match start_checkout(
        &state,
        user.user.id,
        plan,
        &ReturnUrls {
            success: &success,
            cancel: &cancel,
        },
    )
    .await
    {
        Ok(url) => Redirect::to(&url).into_response(),
        // Already subscribed (a second tab, say): carry on where the flow is.
        Err(ApiError::Conflict(_)) => Redirect::to(&next).into_response(),
        Err(e) => page::error(
            e.status(),
            "Checkout is not available right now",
            &e.to_string(),
            csrf::token(&state, &browser),
        ),
    }
}

#[derive(serde::Deserialize)]
pub struct StatusQuery {
    checkout: Option<String>,
}

#[derive(serde::Serialize)]
pub struct Status {
    phase: &'static str,
    steps: Vec<StepView>,
    failure_reason: Option<String>,
}

/// What the progress page polls (the session cookie authenticates; read-only).
pub async fn status(
    State(state): State<AppState>,
    user: Option<PortalUser>,
    Query(q): Query<StatusQuery>,
) -> Result<Json<Status>, ApiError> {
    let user = user.ok_or_else(|| ApiError::Unauthorized("log in again".into()))?;
    let s = standing(&state, user.user.id, q.checkout.as_deref() == Some("done")).await?;
    Ok(Json(Status {
        phase: s.phase.as_str(),
        steps: s.steps,
        failure_reason: s
            .identity
            .filter(|_| s.phase == Phase::Failed)
            .and_then(|i| i.failure_reason),
    }))
}

/// A failed provisioning starts over (a new generation, nothing left from the first one).
pub async fn retry(
    State(state): State<AppState>,
    Extension(browser): Extension<BrowserId>,
    user: PortalUser,
    CsrfForm(form): CsrfForm<PlanForm>,
) -> Response {
    let next = safe_next(Some(&form.next)).unwrap_or_else(|| "/dashboard".into());
    match restart(&state, &user).await {
        Ok(()) => Redirect::to(&next).into_response(),
        Err(e) => page::error(
            e.status(),
            "Setup cannot be retried now",
            &e.to_string(),
            csrf::token(&state, &browser),
        ),
    }
}

async fn restart(state: &AppState, user: &PortalUser) -> Result<(), ApiError> {
    let identity = db::identities::find_by_user(&state.pool, user.user.id)
        .await?
        .ok_or_else(|| ApiError::NotFound("there is no identity to retry".into()))?;
    if identity.status != db::status::IdentityStatus::Failed {
        // Already retried (a double click): nothing to do.
        return Ok(());
    }
    let live = db::subscriptions::current(&state.pool, user.user.id)
        .await?
        .filter(|s| db::subscriptions::is_live(&s.status))
        .ok_or_else(|| ApiError::Conflict("there is no active subscription".into()))?;
    let plan = domain::Plan::parse(&live.plan).unwrap_or(domain::Plan::Basic);
    let key = format!(
        "user-retry:{}",
        crate::orchestration::workflow_key(&identity)
    );
    state
        .restate
        .start_provisioning(user.user.id, plan, &key)
        .await?;
    db::audit::record(
        &state.pool,
        "user",
        Some(user.user.id),
        "identity.retry",
        serde_json::json!({"identity_id": identity.id}),
    )
    .await?;
    Ok(())
}

impl crate::portal::csrf::WithCsrf for PlanForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}
