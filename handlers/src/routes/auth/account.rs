//! Where an account stands in its life cycle, as `GET /v1/me` and `DELETE /v1/me` show it.

use chrono::{DateTime, Utc};
use utoipa::ToSchema;

#[derive(serde::Serialize, ToSchema)]
pub struct AccountView {
    /// `active`; `closing` from the closing request until the personal data is erased
    /// (`erase_after`); then `closed`.
    pub status: String,
    pub closing_requested_at: Option<DateTime<Utc>>,
    pub erase_after: Option<DateTime<Utc>>,
    pub erased_at: Option<DateTime<Utc>>,
}

impl From<&db::account_closing::AccountState> for AccountView {
    fn from(s: &db::account_closing::AccountState) -> Self {
        Self {
            status: s.status.clone(),
            closing_requested_at: s.closing_requested_at,
            erase_after: s.erase_after,
            erased_at: s.erased_at,
        }
    }
}

impl AccountView {
    /// One sentence for a person.
    pub fn summary(&self) -> String {
        let when = |t: Option<DateTime<Utc>>| {
            t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_else(|| "the end of the retention period".into())
        };
        match self.status.as_str() {
            "closing" => format!(
                "The account is closing: every key, session and connected instance has stopped \
                 working, the subscription is cancelled and the identity removed; the personal \
                 data is erased after {}.",
                when(self.erase_after)
            ),
            "closed" => format!(
                "The account was closed and its personal data erased on {}.",
                when(self.erased_at)
            ),
            _ => "The account is active.".into(),
        }
    }
}

/// Logging in to an account that is closing or closed is refused (after the password was
/// checked, so the answer tells nothing to someone who does not know it).
pub async fn refuse_unless_active(
    state: &crate::state::AppState,
    user_id: uuid::Uuid,
) -> crate::error::ApiResult<()> {
    match db::account_closing::state(&state.pool, user_id).await? {
        Some(s) if !s.is_active() => Err(crate::error::ApiError::Forbidden(
            AccountView::from(&s).summary(),
        )),
        _ => Ok(()),
    }
}
