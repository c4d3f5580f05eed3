//! Creating an account, the same way for the API and the portal's sign-up: validated email,
//! password policy and name, argon2id hash, a taken email refused, the audit entry.

use super::password;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use uuid::Uuid;

/// A new user; 400 naming the field for bad input, 409 when the email is taken.
pub async fn create(
    state: &AppState,
    email: &str,
    password: &str,
    name: Option<&str>,
    via: &str,
) -> ApiResult<db::users::User> {
    let email = domain::Email::parse(email).map_err(|e| ApiError::bad_field("email", e.0))?;
    let password =
        domain::Password::parse(password).map_err(|e| ApiError::bad_field("password", e.0))?;
    let name = name
        .map(domain::UserName::parse)
        .transpose()
        .map_err(|e| ApiError::bad_field("name", e.0))?;
    let hash = password::hash(password).await?;
    let user = match db::users::insert(
        &state.pool,
        Uuid::now_v7(),
        &email,
        &hash,
        name.as_ref().map(|n| n.as_str()),
    )
    .await
    {
        Ok(u) => u,
        Err(e) if db::is_unique_violation(&e) => {
            return Err(ApiError::Conflict(
                "an account with this email already exists; log in instead".into(),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    db::audit::record(
        &state.pool,
        "user",
        Some(user.id),
        "user.registered",
        serde_json::json!({ "via": via }),
    )
    .await?;
    tracing::info!(user_id = %user.id, via, "user registered");
    Ok(user)
}
