//! The states an identity, its Signal registration and its provisioning steps can be in. Stored
//! as text (the columns' CHECK constraints list the same words) and read back typed, so a
//! misspelt state is a compile error rather than a comparison that is never true.

use serde::{Deserialize, Serialize};

/// Where an identity stands in its lifecycle.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type, Serialize, Deserialize, utoipa::ToSchema,
)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum IdentityStatus {
    Pending,
    Provisioning,
    Active,
    Suspended,
    Failed,
    Deprovisioning,
    Deleted,
}

/// Where the identity's Signal registration stands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type, Serialize, Deserialize, utoipa::ToSchema,
)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum SignalStatus {
    None,
    Pending,
    CaptchaRequired,
    Registered,
    Failed,
    Unregistered,
}

/// Where one provisioning step stands (what `/v1/identity/status` lists).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type, Serialize, Deserialize, utoipa::ToSchema,
)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Pending,
    Running,
    Done,
    Failed,
    Compensating,
    Compensated,
}

impl IdentityStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Provisioning => "provisioning",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Failed => "failed",
            Self::Deprovisioning => "deprovisioning",
            Self::Deleted => "deleted",
        }
    }
}

impl SignalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Pending => "pending",
            Self::CaptchaRequired => "captcha_required",
            Self::Registered => "registered",
            Self::Failed => "failed",
            Self::Unregistered => "unregistered",
        }
    }

    /// A registration still under way: it waits for a code or a captcha.
    pub fn in_progress(self) -> bool {
        matches!(self, Self::Pending | Self::CaptchaRequired)
    }
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Compensating => "compensating",
            Self::Compensated => "compensated",
        }
    }
}

/// States print as, compare with, and parse from, their stored words (for tests and tools that name
/// states as words).
macro_rules! eq_words {
    ($($t:ty),*) => {$(
        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(word: &str) -> Result<Self, String> {
                serde_json::from_value(serde_json::Value::from(word))
                    .map_err(|_| format!("`{word}` is not a {}", stringify!($t)))
            }
        }
    )*};
}
eq_words!(IdentityStatus, SignalStatus, StepStatus);

#[cfg(test)]
mod tests {
    use super::*;

    /// The words must be the ones the columns' CHECK constraints allow, and serde and `as_str`
    /// must agree (the api shows serde's, the queries bind `as_str`'s through sqlx).
    #[test]
    fn words_match_the_schema() {
        let schema = include_str!("../../migrations/20261122000001_core.sql");
        for s in [
            IdentityStatus::Pending,
            IdentityStatus::Provisioning,
            IdentityStatus::Active,
            IdentityStatus::Suspended,
            IdentityStatus::Failed,
            IdentityStatus::Deprovisioning,
            IdentityStatus::Deleted,
        ] {
            assert!(schema.contains(&format!("'{s}'")), "{s}");
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in [
            SignalStatus::None,
            SignalStatus::Pending,
            SignalStatus::CaptchaRequired,
            SignalStatus::Registered,
            SignalStatus::Failed,
            SignalStatus::Unregistered,
        ] {
            assert!(schema.contains(&format!("'{s}'")), "{s}");
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in [
            StepStatus::Pending,
            StepStatus::Running,
            StepStatus::Done,
            StepStatus::Failed,
            StepStatus::Compensating,
            StepStatus::Compensated,
        ] {
            assert!(schema.contains(&format!("'{s}'")), "{s}");
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
