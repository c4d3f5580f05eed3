//! `ValidJson<T>`: like axum's `Json`, but malformed JSON, wrong types, missing and unknown
//! fields become 400 naming the field, a wrong content type 400, and an oversized body 413.
//! The field comes from `serde_path_to_error`'s path, never from parsing an error's text: a
//! value the caller sent can contain any text.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

pub struct ValidJson<T>(pub T);

impl<S, T> FromRequest<S> for ValidJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::BadRequest {
                field: None,
                message: "expected a JSON body with `Content-Type: application/json`".into(),
            });
        }
        let body = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge("request body is too large".into())
            } else {
                ApiError::BadRequest {
                    field: None,
                    message: rejection.body_text(),
                }
            }
        })?;
        parse(&body).map(Self)
    }
}

/// `application/json`, or any `application/…+json`, with or without parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Reads a whole JSON document into `T`; on failure, the 400 names the field at fault.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(rejection)?;
    // Trailing characters after the document are malformed JSON too.
    de.end().map_err(|e| malformed(&e))?;
    Ok(value)
}

fn malformed(e: &serde_json::Error) -> ApiError {
    ApiError::BadRequest {
        field: None,
        message: format!("malformed JSON: {e}"),
    }
}

fn rejection(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    if e.inner().classify() != Category::Data {
        return malformed(e.inner());
    }
    super::field::bad_request(e.path(), e.inner().to_string(), "")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        cap_cents: Option<i64>,
        inner: Option<Inner>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        name: String,
    }

    fn field_of(body: &str) -> Option<String> {
        match parse::<Outer>(body.as_bytes()) {
            Err(ApiError::BadRequest { field, .. }) => field,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn names_the_field_from_the_path() {
        assert_eq!(
            field_of(r#"{"cap_cents": "x"}"#).as_deref(),
            Some("cap_cents")
        );
        assert_eq!(field_of(r#"{"inner": {}}"#).as_deref(), Some("inner.name"));
        assert_eq!(
            field_of(r#"{"inner": {"name": 1}}"#).as_deref(),
            Some("inner.name")
        );
        assert_eq!(field_of(r#"{"bogus": 1}"#).as_deref(), Some("bogus"));
        assert_eq!(
            field_of(r#"{"inner": {"name": "a", "x": 1}}"#).as_deref(),
            Some("inner.x")
        );
    }

    #[test]
    fn a_value_that_reads_like_an_error_does_not_name_the_field() {
        let body = r#"{"cap_cents": "missing field `password`"}"#;
        assert_eq!(field_of(body).as_deref(), Some("cap_cents"));
    }

    #[test]
    fn syntax_errors_and_trailing_text_are_malformed() {
        for body in [r#"{"cap_cents": "#, r#"{} {}"#, "nul"] {
            match parse::<Outer>(body.as_bytes()) {
                Err(ApiError::BadRequest {
                    field: None,
                    message,
                }) => {
                    assert!(message.starts_with("malformed JSON"), "{message}")
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }
}
