//! The OAuth 2.0 authorization server Dex instances connect through: public clients, PKCE
//! S256 only (RFC 7636), loopback or https redirect URIs (RFC 8252), rotating refresh tokens
//! with reuse detection and a short grace for retried refreshes (RFC 9700).

pub mod authorize_request;
pub mod client_id;
pub mod error;
pub mod pkce;
pub mod redirect;
pub mod tokens;

use std::time::Duration;

/// How long an authorization code can be exchanged.
pub const CODE_TTL: Duration = Duration::from_secs(5 * 60);
/// How long an access token works.
pub const ACCESS_TTL: Duration = Duration::from_secs(60 * 60);
/// How long an unused refresh token works (each rotation starts it afresh).
pub const REFRESH_TTL: Duration = Duration::from_secs(90 * 24 * 60 * 60);
/// A refresh token presented again this soon after its rotation gets the same new pair:
/// a retried or concurrent refresh, not a theft.
pub const REFRESH_GRACE: Duration = Duration::from_secs(30);

/// What a connected instance may do, shown at consent and returned as the token's scope.
pub const SCOPE: &str = "identity messaging ai";
