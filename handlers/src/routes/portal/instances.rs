//! `/instances`: connected Dex instances with their use this month, and Disconnect (which
//! ends the grant: api and every proxy refuse its tokens within a second).

use super::csrf_form::CsrfOnly;
use crate::error::ApiError;
use crate::extract::PathId;
use crate::portal::csrf::CsrfForm;
use crate::portal::format;
use crate::portal::page::{self, Chrome};
use crate::portal::{csrf, session::PortalUser};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};

pub struct InstanceRow {
    id: uuid::Uuid,
    name: String,
    connected: String,
    last_used: String,
    tokens: String,
    cost: String,
}

#[derive(Template)]
#[template(path = "instances.html")]
struct InstancesPage {
    chrome: Chrome,
    instances: Vec<InstanceRow>,
    notice: Option<&'static str>,
}

#[derive(serde::Deserialize)]
pub struct InstancesQuery {
    disconnected: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    user: PortalUser,
    Query(q): Query<InstancesQuery>,
) -> Response {
    let (_, from, _) = crate::routes::usage::this_period();
    let now = chrono::Utc::now();
    let rows = match db::oauth::instances(&state.pool, user.user.id, from).await {
        Ok(r) => r,
        Err(e) => return ApiError::from(e).into_response(),
    };
    page::render(&InstancesPage {
        chrome: Chrome {
            title: "Instances".into(),
            email: Some(user.user.email.clone()),
            active: "instances",
            csrf: csrf::token(&state, &user.browser),
        },
        instances: rows
            .into_iter()
            .map(|i| InstanceRow {
                id: i.grant_id,
                name: i.client_id,
                connected: format::datetime(i.connected_at),
                last_used: i
                    .last_used_at
                    .map(|t| format::ago(t, now))
                    .unwrap_or_else(|| "Not yet".into()),
                tokens: format::int(i.input_tokens + i.output_tokens),
                cost: format::money(i.cost_microdollars),
            })
            .collect(),
        notice: q
            .disconnected
            .map(|_| "Disconnected. That instance can no longer use your account."),
    })
}

pub async fn disconnect(
    State(state): State<AppState>,
    user: PortalUser,
    PathId(id): PathId,
    _: CsrfForm<CsrfOnly>,
) -> Response {
    match db::oauth::revoke_users_grant(&state.pool, user.user.id, id).await {
        Ok(true) => {
            let _ = db::audit::record(
                &state.pool,
                "user",
                Some(user.user.id),
                "oauth.disconnected",
                serde_json::json!({"grant_id": id}),
            )
            .await;
            Redirect::to("/instances?disconnected=1").into_response()
        }
        Ok(false) => Redirect::to("/instances").into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
