//! Every route of the api, grouped by resource; one file per action.

pub mod admin;
pub mod api_keys;
pub mod auth;
pub mod billing;
pub mod calendar;
pub mod email;
pub mod identity;
pub mod oauth;
pub mod portal;
pub mod signal;
pub mod sms;
pub mod usage;
pub mod webhooks;
