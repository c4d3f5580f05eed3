//! `POST /webhooks/telnyx`: Telnyx messaging events, signed with Ed25519
//! (`telnyx-signature-ed25519`, `telnyx-timestamp`). It answers within Telnyx's 2 s budget, so
//! it never calls a provider: it verifies, records the event id and hands the work over.
//!
//! A `message.received` carrying a Signal code for a number whose Signal registration is
//! pending resolves that registration's promise through the Restate ingress
//! (`SignalRegistration/{number}/submit_code`, idempotency key = the event id); any other SMS
//! is stored in `incoming_sms`. The event id is recorded in the same transaction as that
//! work, so when the hand-over fails (503) nothing is recorded and Telnyx's redelivery is
//! processed afresh; a redelivery of a processed event changes nothing.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use providers::signal::verification_code;
use providers::telnyx::{verify_webhook_request, InboundMessage};
use std::time::Duration;
use utoipa::ToSchema;
use workflows::contract;

const PROVIDER: &str = "telnyx";
/// The longest the hand-over to Restate may take inside Telnyx's 2 s budget.
const HANDOVER_TIMEOUT: Duration = Duration::from_millis(1500);

#[derive(serde::Serialize, ToSchema)]
pub struct WebhookAck {
    /// duplicate, ignored, stored, signal_code
    result: &'static str,
}

#[utoipa::path(post, path = "/webhooks/telnyx", tag = "webhooks",
    request_body(content = String, description = "a Telnyx v2 webhook event (JSON), signed"),
    responses((status = 200, body = WebhookAck),
        (status = 400, description = "bad or stale signature; nothing recorded"),
        (status = 503, description = "not configured, or the hand-over failed: Telnyx retries")))]
pub async fn telnyx(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<WebhookAck>> {
    let key = state.config.telnyx.public_key.ok_or_else(|| {
        ApiError::Unavailable("Telnyx webhooks are not configured (TELNYX_PUBLIC_KEY)".into())
    })?;
    let event = verify_webhook_request(&key, &headers, &body, chrono::Utc::now().timestamp())
        .map_err(|e| {
            tracing::warn!(reason = %e, "telnyx webhook refused");
            ApiError::BadRequest {
                field: None,
                message: format!("invalid Telnyx webhook: {e}"),
            }
        })?;
    let mut tx = state.pool.begin().await?;
    if !db::webhook_events::record(&mut *tx, PROVIDER, &event.id, &event.event_type).await? {
        tracing::info!(event_id = %event.id, "telnyx webhook redelivered; already processed");
        return Ok(Json(WebhookAck {
            result: "duplicate",
        }));
    }
    let result = match event.inbound_message() {
        Some(sms) => inbound(&state, &mut tx, &event.id, &sms).await?,
        None => "ignored",
    };
    tx.commit().await?;
    tracing::info!(event_id = %event.id, event_type = %event.event_type, result, "telnyx webhook");
    Ok(Json(WebhookAck { result }))
}

async fn inbound(
    state: &AppState,
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    event_id: &str,
    sms: &InboundMessage,
) -> ApiResult<&'static str> {
    let identity = db::identities::find_by_phone(&mut **tx, &sms.to).await?;
    let awaiting_code = identity
        .as_ref()
        .is_some_and(|i| i.signal_status.in_progress());
    if awaiting_code {
        if let Some(code) = verification_code(&sms.text) {
            hand_over_code(state, &sms.to, event_id, &code).await?;
            return Ok("signal_code");
        }
    }
    db::incoming_sms::insert(
        &mut **tx,
        &db::incoming_sms::NewSms {
            identity_id: identity.map(|i| i.id),
            to_number: &sms.to,
            from_number: &sms.from,
            body: &sms.text,
            provider_message_id: &sms.message_id,
        },
    )
    .await?;
    Ok("stored")
}

/// Resolves the registration's code promise; any failure is a 503 so Telnyx delivers again.
async fn hand_over_code(
    state: &AppState,
    number: &str,
    event_id: &str,
    code: &str,
) -> ApiResult<()> {
    let submit = contract::submit_signal_code(number, code);
    match tokio::time::timeout(
        HANDOVER_TIMEOUT,
        state.restate.send(&submit, Some(event_id)),
    )
    .await
    {
        Ok(Ok(_)) => {
            // The number's receiver waits for the registration to finish, then receives from
            // signal-cli on its own timer (a no-op when it already runs).
            let receiver = contract::start_receiver(number);
            let start = state.restate.send(&receiver, None);
            match tokio::time::timeout(HANDOVER_TIMEOUT, start).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "starting the Signal receiver failed"),
                Err(_) => tracing::warn!("starting the Signal receiver timed out"),
            }
            Ok(())
        }
        Ok(Err(e)) => Err(e.into()),
        Err(_) => {
            tracing::error!(event_id, "handing the Signal code to Restate timed out");
            Err(ApiError::Unavailable(
                "could not hand the code over; retry shortly".into(),
            ))
        }
    }
}
