//! `GET /v1/email/inbox?limit=&page_token=`: the newest messages in the inbox, a page at a time.

use super::MessageSummary;
use crate::comms::{google_error, ActiveIdentity};
use crate::error::{ApiError, ApiResult};
use crate::extract::ValidQuery;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use futures::{StreamExt, TryStreamExt};
use providers::google::MessageQuery;
use providers::GoogleError;
use utoipa::{IntoParams, ToSchema};

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 50;

#[derive(serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// Messages per page, 1 to 50 (default 20).
    limit: Option<u32>,
    /// `next_page_token` of the previous page.
    page_token: Option<String>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct Inbox {
    data: Vec<MessageSummary>,
    /// Pass as `page_token` for the next page; absent on the last page.
    next_page_token: Option<String>,
}

#[utoipa::path(get, path = "/v1/email/inbox", tag = "email", security(("bearer" = [])),
    params(InboxQuery),
    responses((status = 200, body = Inbox), (status = 400), (status = 401), (status = 409),
        (status = 503)))]
pub async fn inbox(
    State(state): State<AppState>,
    caller: ActiveIdentity,
    ValidQuery(q): ValidQuery<InboxQuery>,
) -> ApiResult<Json<Inbox>> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_field(
            "limit",
            format!("between 1 and {MAX_LIMIT}"),
        ));
    }
    if q.page_token.as_ref().is_some_and(|t| t.len() > 512) {
        return Err(ApiError::bad_field("page_token", "not a page token"));
    }
    let google = state.providers.google()?;
    let mailbox = caller.mailbox()?;
    let page = google
        .list_messages(
            mailbox,
            &MessageQuery {
                label_ids: vec!["INBOX".into()],
                q: None,
                max_results: Some(limit),
                page_token: q.page_token,
            },
        )
        .await
        .map_err(|e| google_error(e, "page"))?;
    // Gmail lists ids only; read each (a few at a time), skipping one deleted meanwhile.
    let messages: Vec<Option<MessageSummary>> = futures::stream::iter(page.messages)
        .map(|r| async move {
            match google.get_message(mailbox, &r.id).await {
                Ok(m) => Ok(Some(m.into())),
                Err(GoogleError::NotFound(_)) => Ok(None),
                Err(e) => Err(google_error(e, "message")),
            }
        })
        .buffered(8)
        .try_collect()
        .await?;
    Ok(Json(Inbox {
        data: messages.into_iter().flatten().collect(),
        next_page_token: page.next_page_token,
    }))
}
