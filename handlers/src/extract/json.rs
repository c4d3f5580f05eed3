//! `ValidJson<T>`: like axum's `Json`, but malformed JSON, wrong types, missing and unknown
//! fields become 400 naming the field, a wrong content type 415-as-400, and an oversized body 413.

use crate::error::ApiError;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

pub struct ValidJson<T>(pub T);

impl<S, T> FromRequest<S> for ValidJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(map_rejection(rejection)),
        }
    }
}

fn map_rejection(rejection: JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::PayloadTooLarge("request body is too large".into());
    }
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::BadRequest {
            field: None,
            message: "expected a JSON body with `Content-Type: application/json`".into(),
        },
        JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest {
            field: None,
            message: format!("malformed JSON: {}", inner_message(&e.body_text())),
        },
        JsonRejection::JsonDataError(e) => {
            let text = e.body_text();
            ApiError::BadRequest {
                field: field_of(&text),
                message: inner_message(&text),
            }
        }
        other => ApiError::BadRequest {
            field: None,
            message: other.body_text(),
        },
    }
}

/// serde_path_to_error's text looks like `Failed to deserialize the JSON body into the target
/// type: email: invalid type: ...`; keep the part after the axum preamble.
fn inner_message(text: &str) -> String {
    text.split_once("target type: ")
        .map(|(_, rest)| rest)
        .unwrap_or(text)
        .to_owned()
}

fn field_of(text: &str) -> Option<String> {
    let inner = inner_message(text);
    if let Some(rest) = inner.split_once("missing field `") {
        return rest.1.split('`').next().map(str::to_owned);
    }
    if let Some(rest) = inner.split_once("unknown field `") {
        return rest.1.split('`').next().map(str::to_owned);
    }
    let (path, _) = inner.split_once(": ")?;
    (!path.contains(' ') && path != ".").then(|| path.to_owned())
}

/// An absent body (no content type, or empty) is `None`; anything else must be valid JSON.
impl<S, T> axum::extract::OptionalFromRequest<S> for ValidJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let headers = req.headers();
        let no_type = !headers.contains_key(axum::http::header::CONTENT_TYPE);
        let empty = headers
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() == "0");
        if no_type || empty {
            return Ok(None);
        }
        <Self as FromRequest<S>>::from_request(req, state)
            .await
            .map(Some)
    }
}
