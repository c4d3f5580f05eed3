//! Authentication: password hashing, session tokens, and the extractors handlers use.

pub mod accounts;
pub mod extractor;
pub mod key_usage;
pub mod password;
pub mod throttle;
pub mod tokens;

pub use extractor::{AccountOwner, AdminAuth, AuthUser, Credential};
