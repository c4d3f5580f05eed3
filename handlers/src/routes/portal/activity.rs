//! `/activity`: this month's AI requests (time, model, tokens, cost, which instance or key)
//! and recent mail, SMS and Signal events, without their contents.

use crate::portal::activity_rows::{self, Row};
use crate::portal::page::{self, Chrome};
use crate::portal::{csrf, session::PortalUser};
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

#[derive(Template)]
#[template(path = "activity.html")]
struct ActivityPage {
    chrome: Chrome,
    requests: Vec<Row>,
    messages: Vec<Row>,
}

pub async fn show(State(state): State<AppState>, user: PortalUser) -> Response {
    let (_, from, _) = crate::routes::usage::this_period();
    let requests = activity_rows::requests(&state, user.user.id, from, 100).await;
    let messages = activity_rows::messages(&state, user.user.id, 50).await;
    match (requests, messages) {
        (Ok(requests), Ok(messages)) => page::render(&ActivityPage {
            chrome: Chrome {
                title: "Activity".into(),
                email: Some(user.user.email.clone()),
                active: "activity",
                csrf: csrf::token(&state, &user.browser),
            },
            requests,
            messages,
        }),
        (Err(e), _) | (_, Err(e)) => e.into_response(),
    }
}
