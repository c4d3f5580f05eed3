//! Domain types that can only hold valid values: anything that reaches a service or the
//! database has been parsed here first.

mod api_key;
mod email;
mod month;
mod oauth_token;
mod password;
mod phone_number;
mod plan;
mod secret_box;
mod user_name;

pub use api_key::{ApiKeyHash, ApiKeySecret, API_KEY_PREFIX};
pub use email::Email;
pub use month::Month;
pub use oauth_token::{
    bearer_hash, OAuthToken, TokenKind, ACCESS_TOKEN_PREFIX, REFRESH_TOKEN_PREFIX,
};
pub use password::Password;
pub use phone_number::PhoneNumber;
pub use plan::Plan;
pub use secret_box::{DecryptError, SecretBox};
pub use user_name::UserName;

/// Why a value was rejected, phrased for the person who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);
