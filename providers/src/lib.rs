//! Clients for the external providers behind a Dex identity: Google Workspace (Directory, Gmail,
//! Calendar), Telnyx (numbers, SMS, webhook signatures) and signal-cli-rest-api.
//!
//! Every client takes a base URL, so the same code talks to the real provider in production and
//! to the sandbox in development and tests. Each provider has one error type whose
//! `is_retryable()` tells a caller (a Restate step, an api handler) whether trying again can
//! help. Calls that may safely be repeated are retried here with backoff on transient failures;
//! calls that could act twice (sending a message, ordering a number) are retried only when the
//! provider provably did not act, and creations use deterministic names so a repeat finds the
//! first result instead of making a second resource.

pub mod google;
pub mod http;
pub mod signal;
pub mod telnyx;

pub use google::{GoogleClient, GoogleError};
pub use http::{HttpOptions, TransportError};
pub use signal::{SignalClient, SignalError};
pub use telnyx::{TelnyxClient, TelnyxError};
