//! The user portal's plumbing: cookies, the browser id that CSRF tokens are bound to, the
//! logged-in session, security headers, and rendering of the compiled templates.

pub mod activity_rows;
pub mod assets;
pub mod browser;
pub mod chart;
pub mod connect_state;
pub mod cookies;
pub mod csrf;
pub mod format;
pub mod page;
pub mod session;
