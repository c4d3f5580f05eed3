//! Accounts and sessions: register, log in, refresh, log out, who am I.

pub mod account;
pub mod close;
mod login;
mod logout;
mod me;
mod refresh;
mod register;
mod session;

use crate::state::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};

pub use session::{SessionResponse, UserView};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register::register))
        .routes(routes!(login::login))
        .routes(routes!(refresh::refresh))
        .routes(routes!(logout::logout))
        .routes(routes!(me::me, close::close))
}
