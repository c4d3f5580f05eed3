//! A UUID path parameter; anything else is a 400 naming the parameter.

use crate::error::ApiError;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use uuid::Uuid;

pub struct PathId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::bad_field("id", "missing id"))?;
        Uuid::parse_str(&raw)
            .map(Self)
            .map_err(|_| ApiError::bad_field("id", "id must be a UUID"))
    }
}
