//! `GET /v1/admin/users`: every user with plan, identity status and key count, paginated by an
//! opaque cursor (stable while users register).

use crate::auth::AdminAuth;
use crate::error::{ApiError, ApiResult};
use crate::extract::ValidQuery;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// 1 to 200, default 50.
    limit: Option<i64>,
    /// `next_cursor` from the previous page.
    cursor: Option<String>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct AdminUser {
    id: Uuid,
    email: String,
    name: Option<String>,
    created_at: DateTime<Utc>,
    plan: Option<String>,
    subscription_status: Option<String>,
    identity_status: Option<String>,
    active_api_keys: i64,
}

#[derive(serde::Serialize, ToSchema)]
pub struct AdminUserPage {
    data: Vec<AdminUser>,
    /// Absent on the last page.
    next_cursor: Option<String>,
}

fn encode_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}|{id}", at.to_rfc3339()))
}

fn decode_cursor(raw: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (at, id) = text.split_once('|')?;
    Some((
        DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc),
        id.parse().ok()?,
    ))
}

#[utoipa::path(get, path = "/v1/admin/users", tag = "admin", params(Page), security(("admin" = [])),
    responses((status = 200, body = AdminUserPage), (status = 400), (status = 401), (status = 403)))]
pub async fn list_users(
    State(state): State<AppState>,
    _admin: AdminAuth,
    ValidQuery(page): ValidQuery<Page>,
) -> ApiResult<Json<AdminUserPage>> {
    let limit = super::page_limit(page.limit)?;
    let after = match page.cursor.as_deref() {
        None => None,
        Some(c) => {
            Some(decode_cursor(c).ok_or_else(|| ApiError::bad_field("cursor", "invalid cursor"))?)
        }
    };
    let rows = db::users::list_for_admin(&state.pool, after, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    let data: Vec<AdminUser> = rows
        .into_iter()
        .take(limit as usize)
        .map(|r| AdminUser {
            id: r.id,
            email: r.email,
            name: r.name,
            created_at: r.created_at,
            plan: r.plan,
            subscription_status: r.subscription_status,
            identity_status: r.identity_status,
            active_api_keys: r.active_api_keys,
        })
        .collect();
    let next_cursor = more
        .then(|| data.last().map(|u| encode_cursor(u.created_at, u.id)))
        .flatten();
    Ok(Json(AdminUserPage { data, next_cursor }))
}
