//! `ActiveIdentity`: the authenticated caller whose identity is `active`. Any other state is a
//! 409 saying why and what to do, including "no identity yet" (409 rather than 404, so Dex
//! never mistakes it for a missing route or message).

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use db::status::{IdentityStatus, SignalStatus};

pub struct ActiveIdentity {
    pub auth: AuthUser,
    pub identity: db::identities::Identity,
}

impl FromRequestParts<AppState> for ActiveIdentity {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let auth = AuthUser::from_request_parts(parts, state).await?;
        let identity = db::identities::find_by_user(&state.pool, auth.user_id)
            .await?
            .ok_or_else(|| {
                ApiError::Conflict(
                    "you have no identity yet: subscribe to a plan to get one".into(),
                )
            })?;
        if identity.status != IdentityStatus::Active {
            return Err(ApiError::Conflict(not_active(identity.status)));
        }
        Ok(Self { auth, identity })
    }
}

fn not_active(status: IdentityStatus) -> String {
    use IdentityStatus::*;
    let what = match status {
        Pending | Provisioning => {
            "is still being set up; try again when GET /v1/identity shows it active"
        }
        Suspended => "is suspended; settle the subscription in the billing portal to resume it",
        Failed => "could not be provisioned; an operator has to retry it",
        Deprovisioning | Deleted => "has been shut down; subscribe again to get a new one",
        Active => "is not active",
    };
    format!("identity is not active (status: {status}): your identity {what}")
}

impl ActiveIdentity {
    /// The identity's Workspace address (email and calendar act as it).
    pub fn mailbox(&self) -> Result<&str, ApiError> {
        self.identity.email.as_deref().ok_or_else(|| {
            ApiError::Conflict("identity is not active: it has no mailbox yet".into())
        })
    }

    /// The identity's phone number (SMS and Signal).
    pub fn number(&self) -> Result<&str, ApiError> {
        self.identity.phone_number.as_deref().ok_or_else(|| {
            ApiError::Conflict("identity is not active: it has no phone number yet".into())
        })
    }

    /// The phone number, once Signal is registered on it.
    pub fn signal_number(&self) -> Result<&str, ApiError> {
        let number = self.number()?;
        if self.identity.signal_status != SignalStatus::Registered {
            return Err(ApiError::Conflict(format!(
                "Signal is not registered on your number (status: {}); see GET /v1/identity/signal",
                self.identity.signal_status
            )));
        }
        Ok(number)
    }
}
