//! `GET /v1/calendar/events?time_min=&time_max=&limit=&page_token=`: events ordered by start.

use super::{instant, EventView};
use crate::comms::{google_error, ActiveIdentity};
use crate::error::{ApiError, ApiResult};
use crate::extract::ValidQuery;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use providers::google::EventQuery;
use utoipa::{IntoParams, ToSchema};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 250;

#[derive(serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// RFC 3339: only events ending after this.
    time_min: Option<String>,
    /// RFC 3339: only events starting before this.
    time_max: Option<String>,
    /// Events per page, 1 to 250 (default 50).
    limit: Option<u32>,
    /// `next_page_token` of the previous page.
    page_token: Option<String>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct EventList {
    data: Vec<EventView>,
    next_page_token: Option<String>,
}

#[utoipa::path(get, path = "/v1/calendar/events", tag = "calendar", security(("bearer" = [])),
    params(ListQuery),
    responses((status = 200, body = EventList), (status = 400), (status = 401), (status = 409),
        (status = 503)))]
pub async fn list(
    State(state): State<AppState>,
    caller: ActiveIdentity,
    ValidQuery(q): ValidQuery<ListQuery>,
) -> ApiResult<Json<EventList>> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_field(
            "limit",
            format!("between 1 and {MAX_LIMIT}"),
        ));
    }
    let time_min = q
        .time_min
        .as_deref()
        .map(|t| instant("time_min", t))
        .transpose()?;
    let time_max = q
        .time_max
        .as_deref()
        .map(|t| instant("time_max", t))
        .transpose()?;
    if let (Some(min), Some(max)) = (time_min, time_max) {
        if max <= min {
            return Err(ApiError::bad_field("time_max", "must be after time_min"));
        }
    }
    if q.page_token.as_ref().is_some_and(|t| t.len() > 512) {
        return Err(ApiError::bad_field("page_token", "not a page token"));
    }
    let page = state
        .providers
        .google()?
        .list_events(
            caller.mailbox()?,
            &EventQuery {
                time_min: time_min.map(|t| t.to_rfc3339()),
                time_max: time_max.map(|t| t.to_rfc3339()),
                max_results: Some(limit),
                page_token: q.page_token,
            },
        )
        .await
        .map_err(|e| google_error(e, "page"))?;
    Ok(Json(EventList {
        data: page.items.into_iter().map(Into::into).collect(),
        next_page_token: page.next_page_token,
    }))
}
