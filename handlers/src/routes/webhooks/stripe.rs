//! `POST /webhooks/stripe`: verifies `Stripe-Signature` (5-minute tolerance), records the event
//! id (a duplicate answers 200 and changes nothing), applies what the event says about the
//! subscription if it is newer than what we hold, and hands the lifecycle step to Restate with
//! the event id as idempotency key. Everything happens in one transaction that commits only
//! after Restate accepted the work, so a failure leaves no trace and Stripe's retry redoes it.

use super::stripe_event::{self, Event, Step, Subject};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use db::subscriptions::{Applied, SubscriptionState};
use serde_json::{json, Value};
use uuid::Uuid;

const PROVIDER: &str = "stripe";

#[utoipa::path(post, path = "/webhooks/stripe", tag = "webhooks",
    request_body(content = String, description = "A Stripe event, signed", content_type = "application/json"),
    params(("Stripe-Signature" = String, Header, description = "t=<unix>,v1=<hex HMAC-SHA256>")),
    responses((status = 200, description = "Processed, or a duplicate"), (status = 400, description = "Bad or stale signature, or not an event"),
              (status = 503, description = "Could not hand the work on; Stripe will retry")))]
pub async fn stripe_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let secret = state.config.stripe.webhook_secret.expose();
    if secret.is_empty() {
        return Err(ApiError::Unavailable(
            "Stripe webhooks are not configured".into(),
        ));
    }
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::bad_field("Stripe-Signature", "missing Stripe-Signature header")
        })?;
    billing::signature::verify(
        header,
        &body,
        secret,
        chrono::Utc::now().timestamp(),
        billing::signature::TOLERANCE_SECS,
    )
    .map_err(|e| ApiError::bad_field("Stripe-Signature", e.to_string()))?;
    let event = Event::parse(&body).ok_or_else(|| ApiError::BadRequest {
        field: None,
        message: "not a Stripe event".into(),
    })?;

    let mut tx = state.pool.begin().await?;
    if !db::webhook_events::record(&mut *tx, PROVIDER, &event.id, &event.kind).await? {
        return Ok(Json(json!({ "received": true, "duplicate": true })));
    }
    let outcome = apply(&state, &mut tx, &event).await?;
    tx.commit().await?;
    tracing::info!(event = %event.id, kind = %event.kind, outcome, "stripe webhook processed");
    Ok(Json(json!({ "received": true, "outcome": outcome })))
}

async fn apply(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    event: &Event,
) -> ApiResult<&'static str> {
    if event.kind == "checkout.session.completed" {
        return Ok("recorded");
    }
    let cfg = &state.config.stripe;
    let Some(subject) = stripe_event::read(event, &cfg.price_basic, &cfg.price_pro) else {
        return Ok("ignored");
    };
    let (customer, metadata_user) = match &subject {
        Subject::Subscription(r) => (r.customer.clone(), r.metadata_user.clone()),
        Subject::Invoice { customer, .. } => (customer.clone(), None),
    };
    let user = match db::stripe_customers::user_of(&mut *tx, &customer).await? {
        Some(u) => Some(u),
        None => metadata_user
            .as_deref()
            .and_then(|u| Uuid::parse_str(u).ok()),
    };
    let Some(user_id) = user else {
        tracing::warn!(event = %event.id, "stripe event for a customer we do not know");
        return Ok("unknown customer");
    };
    let (reported, at) = match subject {
        Subject::Subscription(r) => (r, event.created),
        // The subscription as Stripe holds it now is at least as new as the event; it is
        // labelled with the later of the two times so no older event can overwrite it.
        Subject::Invoice { subscription, .. } => {
            let info = state
                .stripe
                .subscription(&subscription)
                .await
                .map_err(crate::routes::billing::stripe_error)?;
            let now = chrono::Utc::now().max(event.created);
            (
                stripe_event::from_stripe(&info, &cfg.price_basic, &cfg.price_pro),
                now,
            )
        }
    };
    let applied = db::subscriptions::apply(
        &mut *tx,
        &SubscriptionState {
            stripe_subscription_id: reported.subscription.clone(),
            stripe_customer_id: reported.customer.clone(),
            user_id,
            plan: reported.plan,
            status: reported.status.clone(),
            current_period_start: reported.period.0,
            current_period_end: reported.period.1,
            cancel_at_period_end: reported.cancel_at_period_end,
            at,
        },
    )
    .await?;
    let (previous, current, plan) = match applied {
        Applied::Stale => return Ok("stale"),
        Applied::Unknown => return Ok("unknown subscription"),
        Applied::Changed {
            previous,
            current,
            plan,
        } => (previous, current, plan),
    };
    let plan = domain::Plan::parse(&plan).map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?;
    let Some(step) = stripe_event::step(previous.as_deref(), &current, plan) else {
        return Ok("updated");
    };
    db::audit::record(
        &mut *tx,
        "stripe",
        Some(user_id),
        "billing.lifecycle",
        json!({ "event": event.id, "step": format!("{step:?}"), "status": current }),
    )
    .await?;
    let key = event.id.as_str();
    match step {
        Step::Provision(plan) => {
            state.restate.start_provisioning(user_id, plan, key).await?;
        }
        Step::Suspend => {
            state.restate.suspend(user_id, key).await?;
        }
        Step::Resume => {
            state.restate.resume(user_id, key).await?;
        }
        Step::Deprovision => {
            state.restate.deprovision(user_id, key).await?;
        }
    }
    Ok(match step {
        Step::Provision(_) => "provisioning",
        Step::Suspend => "suspending",
        Step::Resume => "resuming",
        Step::Deprovision => "deprovisioning",
    })
}
