//! How an identity is shown to its owner.

use crate::error::{ApiError, ApiResult};
use chrono::{DateTime, Utc};
use db::status::{IdentityStatus, SignalStatus};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(serde::Serialize, ToSchema)]
pub struct SignalView {
    pub registered: bool,
    pub status: SignalStatus,
    pub failure_reason: Option<String>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct IdentityView {
    pub id: Uuid,
    pub status: IdentityStatus,
    pub plan: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub signal: SignalView,
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<db::identities::Identity> for IdentityView {
    fn from(i: db::identities::Identity) -> Self {
        Self {
            id: i.id,
            status: i.status,
            plan: i.plan,
            email: i.email,
            phone: i.phone_number,
            signal: SignalView {
                registered: i.signal_status == SignalStatus::Registered,
                status: i.signal_status,
                failure_reason: i.signal_failure_reason,
            },
            failure_reason: i.failure_reason,
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

/// The user's identity, or 404 with what to do about it.
pub async fn load(pool: &PgPool, user_id: Uuid) -> ApiResult<db::identities::Identity> {
    db::identities::find_by_user(pool, user_id)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound("you have no identity yet: subscribe to a plan to get one".into())
        })
}
