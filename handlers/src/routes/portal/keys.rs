//! `/keys`: the user's API keys; a new key is shown once, on the page its form returns.

use super::csrf_form::CsrfOnly;
use crate::error::{ApiError, ApiResult};
use crate::extract::PathId;
use crate::portal::csrf::CsrfForm;
use crate::portal::format;
use crate::portal::page::{self, Chrome};
use crate::portal::{csrf, session::PortalUser};
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};

pub struct KeyRow {
    id: uuid::Uuid,
    name: String,
    prefix: String,
    created: String,
    last_used: String,
}

pub struct Created {
    name: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    chrome: Chrome,
    keys: Vec<KeyRow>,
    created: Option<Created>,
    error: Option<String>,
}

async fn render(
    state: &AppState,
    user: &PortalUser,
    created: Option<Created>,
    error: Option<String>,
) -> ApiResult<KeysPage> {
    let now = chrono::Utc::now();
    let keys = db::api_keys::list_active(&state.pool, user.user.id)
        .await?
        .into_iter()
        .map(|k| KeyRow {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            created: format::date(k.created_at),
            last_used: k
                .last_used_at
                .map(|t| format::ago(t, now))
                .unwrap_or_else(|| "Never".into()),
        })
        .collect();
    Ok(KeysPage {
        chrome: Chrome {
            title: "API keys".into(),
            email: Some(user.user.email.clone()),
            active: "keys",
            csrf: csrf::token(state, &user.browser),
        },
        keys,
        created,
        error,
    })
}

pub async fn show(State(state): State<AppState>, user: PortalUser) -> Response {
    match render(&state, &user, None, None).await {
        Ok(p) => page::render(&p),
        Err(e) => e.into_response(),
    }
}

#[derive(serde::Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

pub async fn create(
    State(state): State<AppState>,
    user: PortalUser,
    CsrfForm(form): CsrfForm<CreateForm>,
) -> Response {
    let made =
        crate::routes::api_keys::create::create_key(&state, user.user.id, Some(&form.name)).await;
    let (status, created, error) = match made {
        Ok((key, secret)) => (
            axum::http::StatusCode::CREATED,
            Some(Created {
                name: key.name,
                secret: secret.expose().to_owned(),
            }),
            None,
        ),
        Err(e @ (ApiError::BadRequest { .. } | ApiError::Conflict(_))) => {
            (e.status(), None, Some(e.to_string()))
        }
        Err(e) => return e.into_response(),
    };
    match render(&state, &user, created, error).await {
        Ok(p) => page::render_status(status, &p),
        Err(e) => e.into_response(),
    }
}

pub async fn revoke(
    State(state): State<AppState>,
    user: PortalUser,
    PathId(id): PathId,
    _: CsrfForm<CsrfOnly>,
) -> Response {
    // Another user's key id revokes nothing: the query is scoped to this user.
    match db::api_keys::revoke(&state.pool, user.user.id, id).await {
        Ok(true) => {
            let _ = db::audit::record(
                &state.pool,
                "user",
                Some(user.user.id),
                "api_key.revoked",
                serde_json::json!({"key_id": id}),
            )
            .await;
            Redirect::to("/keys").into_response()
        }
        Ok(false) => Redirect::to("/keys").into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

impl crate::portal::csrf::WithCsrf for CreateForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}
