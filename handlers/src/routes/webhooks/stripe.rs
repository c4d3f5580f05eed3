//! `POST /webhooks/stripe`: verifies `Stripe-Signature` (5-minute tolerance), applies what the
//! event says about the subscription if it is newer than what we hold, hands the lifecycle step
//! it calls for to Restate, and records the event id. No network call runs inside a
//! transaction:
//!
//! 1. An event already recorded answers 200 and changes nothing. An invoice's subscription is
//!    read from Stripe now, before anything is locked or opened.
//! 2. The events of one subscription are processed one at a time, across replicas (a
//!    session-level advisory lock, not a transaction).
//! 3. What the event changes is worked out in a transaction that is rolled back, and the step
//!    it calls for is handed to Restate: provisioning and deprovisioning under the identity's
//!    workflow key, suspension and resumption with the event id as idempotency key, so a
//!    repeated hand-over runs once.
//! 4. One transaction then records the event id, applies the change and audits it.
//!
//! A failure anywhere before 4 commits (Restate unreachable, Postgres failing, the api dying
//! between the hand-over and the commit) leaves the event unrecorded and answers 5xx; Stripe's
//! redelivery works out the same step, hands it over again (Restate deduplicates it) and
//! commits. A redelivery of a committed event changes nothing.

use super::stripe_event::{self, Event, Step, Subject};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use chrono::{DateTime, Utc};
use db::subscriptions::{Applied, SubscriptionState};
use serde_json::{json, Value};
use sqlx::pool::PoolConnection;
use sqlx::{Connection, PgConnection, Postgres};
use std::time::{Duration, Instant};
use uuid::Uuid;

const PROVIDER: &str = "stripe";
/// How long a delivery waits for another event of its subscription to finish before answering
/// 503 (Stripe delivers it again later).
const LOCK_WAIT: Duration = Duration::from_secs(10);

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

    if db::webhook_events::seen(&state.pool, PROVIDER, &event.id).await? {
        return Ok(Json(json!({ "received": true, "duplicate": true })));
    }
    let change = read_change(&state, &event).await?;
    // Run to the end even if Stripe hangs up: a dropped future must not return a connection
    // that still holds the subscription's lock to the pool.
    let (id, kind) = (event.id.clone(), event.kind.clone());
    let created = event.created.timestamp();
    let outcome = tokio::spawn(async move { process(&state, &event, change).await })
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))??;
    if outcome == "duplicate" {
        return Ok(Json(json!({ "received": true, "duplicate": true })));
    }
    tracing::info!(event = %id, %kind, outcome, "stripe webhook processed");
    server::metrics::webhook_handled("stripe", &kind, created);
    Ok(Json(json!({ "received": true, "outcome": outcome })))
}

/// What an event says about a subscription, with what it takes to find the subscription's user.
struct Change {
    reported: stripe_event::Reported,
    /// The time the state is labelled with (no older event may overwrite it).
    at: DateTime<Utc>,
    customer: String,
    metadata_user: Option<String>,
}

/// Reads the event's subscription state; an invoice's from Stripe (no transaction is open).
async fn read_change(state: &AppState, event: &Event) -> ApiResult<Option<Change>> {
    if event.kind == "checkout.session.completed" {
        return Ok(None);
    }
    let cfg = &state.config.stripe;
    let Some(subject) = stripe_event::read(event, &cfg.price_basic, &cfg.price_pro) else {
        return Ok(None);
    };
    Ok(Some(match subject {
        Subject::Subscription(r) => Change {
            customer: r.customer.clone(),
            metadata_user: r.metadata_user.clone(),
            reported: r,
            at: event.created,
        },
        // The subscription as Stripe holds it now is at least as new as the event; it is
        // labelled with the later of the two times so no older event can overwrite it.
        Subject::Invoice {
            subscription,
            customer,
        } => {
            let info = state
                .stripe
                .subscription(&subscription)
                .await
                .map_err(crate::routes::billing::stripe_error)?;
            Change {
                reported: stripe_event::from_stripe(&info, &cfg.price_basic, &cfg.price_pro),
                at: Utc::now().max(event.created),
                customer,
                metadata_user: None,
            }
        }
    }))
}

async fn process(
    state: &AppState,
    event: &Event,
    change: Option<Change>,
) -> ApiResult<&'static str> {
    let Some(change) = change else {
        let mut tx = state.pool.begin().await?;
        if !db::webhook_events::record(&mut *tx, PROVIDER, &event.id, &event.kind).await? {
            return Ok("duplicate");
        }
        tx.commit().await?;
        return Ok(if event.kind == "checkout.session.completed" {
            "recorded"
        } else {
            "ignored"
        });
    };
    let subject = change.reported.subscription.clone();
    let mut conn = lock(state, &subject).await?;
    let result = locked(state, &mut conn, event, &change).await;
    if db::webhook_events::unlock_subject(&mut conn, PROVIDER, &subject)
        .await
        .is_err()
    {
        // Closing the session releases its lock.
        drop(conn.detach());
    }
    result
}

/// A pooled connection holding the subscription's lock.
async fn lock(state: &AppState, subject: &str) -> ApiResult<PoolConnection<Postgres>> {
    let deadline = Instant::now() + LOCK_WAIT;
    let mut pause = Duration::from_millis(10);
    loop {
        let mut conn = state.pool.acquire().await?;
        if db::webhook_events::try_lock_subject(&mut conn, PROVIDER, subject).await? {
            return Ok(conn);
        }
        // Waiting, the connection goes back to the pool for the holder's own work.
        drop(conn);
        if Instant::now() >= deadline {
            return Err(ApiError::Unavailable(
                "another event of this subscription is being processed; retry shortly".into(),
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// Steps 3 and 4 of the module comment, under the subscription's lock.
async fn locked(
    state: &AppState,
    conn: &mut PgConnection,
    event: &Event,
    change: &Change,
) -> ApiResult<&'static str> {
    // A delivery of the same event may have finished while this one waited for the lock.
    if db::webhook_events::seen(&mut *conn, PROVIDER, &event.id).await? {
        return Ok("duplicate");
    }
    let planned = {
        let mut tx = conn.begin().await?;
        let decided = decide(&mut tx, event, change).await?;
        tx.rollback().await?;
        decided
    };
    if let Some(d) = &planned.step {
        hand_over(state, d.user_id, d.step, &event.id).await?;
    }
    let mut tx = conn.begin().await?;
    if !db::webhook_events::record(&mut *tx, PROVIDER, &event.id, &event.kind).await? {
        return Ok("duplicate");
    }
    let decided = decide(&mut tx, event, change).await?;
    if decided.step != planned.step {
        // Only a change made without this subscription's lock can get here; the redelivery
        // works the step out again.
        tracing::warn!(event = %event.id, "subscription changed while its event was handed over");
        return Err(ApiError::Unavailable(
            "the subscription changed meanwhile; retry shortly".into(),
        ));
    }
    if let Some(d) = &decided.step {
        db::audit::record(
            &mut *tx,
            "stripe",
            Some(d.user_id),
            "billing.lifecycle",
            json!({ "event": event.id, "step": format!("{:?}", d.step), "status": d.status }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(decided.label)
}

#[derive(Debug, PartialEq, Eq)]
struct Decided {
    label: &'static str,
    step: Option<Lifecycle>,
}

#[derive(Debug, PartialEq, Eq)]
struct Lifecycle {
    user_id: Uuid,
    step: Step,
    status: String,
}

/// Applies the change to the subscription row and says which lifecycle step it calls for.
async fn decide(conn: &mut PgConnection, event: &Event, change: &Change) -> ApiResult<Decided> {
    let none = |label| Ok(Decided { label, step: None });
    let user = match db::stripe_customers::user_of(&mut *conn, &change.customer).await? {
        Some(u) => Some(u),
        None => change
            .metadata_user
            .as_deref()
            .and_then(|u| Uuid::parse_str(u).ok()),
    };
    let Some(user_id) = user else {
        tracing::warn!(event = %event.id, "stripe event for a customer we do not know");
        return none("unknown customer");
    };
    let reported = &change.reported;
    let applied = db::subscriptions::apply(
        &mut *conn,
        &SubscriptionState {
            stripe_subscription_id: reported.subscription.clone(),
            stripe_customer_id: reported.customer.clone(),
            user_id,
            plan: reported.plan,
            status: reported.status.clone(),
            current_period_start: reported.period.0,
            current_period_end: reported.period.1,
            cancel_at_period_end: reported.cancel_at_period_end,
            at: change.at,
        },
    )
    .await?;
    let (previous, current, plan) = match applied {
        Applied::Stale => return none("stale"),
        Applied::Unknown => return none("unknown subscription"),
        Applied::Changed {
            previous,
            current,
            plan,
        } => (previous, current, plan),
    };
    let plan = domain::Plan::parse(&plan).map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?;
    let Some(step) = stripe_event::step(previous.as_deref(), &current, plan) else {
        return none("updated");
    };
    Ok(Decided {
        label: match step {
            Step::Provision(_) => "provisioning",
            Step::Suspend => "suspending",
            Step::Resume => "resuming",
            Step::Deprovision => "deprovisioning",
        },
        step: Some(Lifecycle {
            user_id,
            step,
            status: current,
        }),
    })
}

/// Hands the step to Restate; repeated for the same event, it runs once.
async fn hand_over(state: &AppState, user_id: Uuid, step: Step, event_id: &str) -> ApiResult<()> {
    match step {
        Step::Provision(plan) => {
            state
                .restate
                .start_provisioning(user_id, plan, event_id)
                .await?;
        }
        Step::Suspend => {
            state.restate.suspend(user_id, event_id).await?;
        }
        Step::Resume => {
            state.restate.resume(user_id, event_id).await?;
        }
        Step::Deprovision => {
            state.restate.deprovision(user_id, event_id).await?;
        }
    }
    Ok(())
}
