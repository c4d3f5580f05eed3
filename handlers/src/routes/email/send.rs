//! `POST /v1/email/send` {to, subject, body}: a plain-text mail from the identity's address.

use crate::comms::{google_error, ActiveIdentity};
use crate::error::{ApiError, ApiResult};
use crate::extract::ValidJson;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use providers::google::OutgoingMail;
use utoipa::ToSchema;

/// RFC 5322's line limit.
pub const MAX_SUBJECT_CHARS: usize = 998;
pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const MAX_RECIPIENTS: usize = 50;

#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendEmail {
    /// One address, or a list of at most 50.
    #[schema(value_type = Object, example = json!("someone@example.com"))]
    to: Recipients,
    /// At most 998 characters, one line.
    subject: String,
    /// Plain text, at most 64 KiB (the request itself is limited to 64 KiB too).
    body: String,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Recipients {
    One(String),
    Many(Vec<String>),
}

#[derive(serde::Serialize, ToSchema)]
pub struct SentEmail {
    /// Id of the sent copy in the identity's mailbox.
    id: String,
    thread_id: String,
    from: String,
    to: Vec<String>,
}

fn recipients(to: Recipients) -> ApiResult<Vec<String>> {
    let raw = match to {
        Recipients::One(a) => vec![a],
        Recipients::Many(list) => list,
    };
    if raw.is_empty() {
        return Err(ApiError::bad_field("to", "name at least one recipient"));
    }
    if raw.len() > MAX_RECIPIENTS {
        return Err(ApiError::bad_field(
            "to",
            format!("at most {MAX_RECIPIENTS} recipients"),
        ));
    }
    raw.iter()
        .map(|a| {
            domain::Email::parse(a)
                .map(|e| e.as_str().to_owned())
                .map_err(|e| ApiError::bad_field("to", e.0))
        })
        .collect()
}

fn check(subject: &str, body: &str) -> ApiResult<()> {
    if subject.chars().count() > MAX_SUBJECT_CHARS {
        return Err(ApiError::bad_field(
            "subject",
            format!("at most {MAX_SUBJECT_CHARS} characters"),
        ));
    }
    if subject.contains(['\r', '\n']) {
        return Err(ApiError::bad_field(
            "subject",
            "must be a single line (no line breaks)",
        ));
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::bad_field(
            "body",
            format!("at most {MAX_BODY_BYTES} bytes"),
        ));
    }
    Ok(())
}

#[utoipa::path(post, path = "/v1/email/send", tag = "email", security(("bearer" = [])),
    request_body = SendEmail,
    responses((status = 200, body = SentEmail), (status = 400), (status = 401),
        (status = 409, description = "the identity is not active"), (status = 503)))]
pub async fn send(
    State(state): State<AppState>,
    caller: ActiveIdentity,
    ValidJson(req): ValidJson<SendEmail>,
) -> ApiResult<Json<SentEmail>> {
    let to = recipients(req.to)?;
    check(&req.subject, &req.body)?;
    let from = caller.mailbox()?;
    let mail = OutgoingMail {
        to: to.clone(),
        cc: vec![],
        subject: req.subject,
        body: req.body,
    };
    let sent = state
        .providers
        .google()?
        .send_mail(from, &mail)
        .await
        .map_err(|e| google_error(e, "message"))?;
    tracing::info!(recipients = to.len(), "mail sent");
    crate::comms::record_sent(&state, &caller, "email.sent", to.len()).await;
    Ok(Json(SentEmail {
        id: sent.id,
        thread_id: sent.thread_id,
        from: from.to_owned(),
        to,
    }))
}
