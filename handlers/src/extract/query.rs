//! `ValidQuery<T>`: like axum's `Query`, but a malformed parameter is a 400 in the API's error
//! format naming the parameter.

use crate::error::ApiError;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

pub struct ValidQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ValidQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Self(v)),
            Err(rejection) => {
                // "Failed to deserialize query string: limit: invalid digit found in string"
                let text = rejection.body_text();
                let inner = text
                    .split_once("query string: ")
                    .map_or(text.as_str(), |(_, rest)| rest);
                let field = inner
                    .split_once(": ")
                    .map(|(path, _)| path)
                    .filter(|p| !p.contains(' '))
                    .map(str::to_owned);
                Err(ApiError::BadRequest {
                    field,
                    message: format!("bad query parameter: {inner}"),
                })
            }
        }
    }
}
