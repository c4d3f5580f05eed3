//! `GET /v1/admin/workflows`: invocations Restate has not finished (running, suspended,
//! backing off after failures) with a link to each in the Restate UI, and the identities
//! whose provisioning or Signal registration is not done.

use crate::auth::AdminAuth;
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use serde_json::Value;
use utoipa::ToSchema;

#[derive(serde::Serialize, ToSchema)]
pub struct Invocation {
    id: String,
    target: String,
    status: String,
    /// Backing off after failures: an operator should look.
    stuck: bool,
    last_failure: Option<String>,
    created_at: Option<String>,
    modified_at: Option<String>,
    ui: String,
}

#[derive(serde::Serialize, ToSchema)]
pub struct UnfinishedIdentity {
    id: uuid::Uuid,
    user_id: uuid::Uuid,
    status: db::status::IdentityStatus,
    signal_status: db::status::SignalStatus,
    failure_reason: Option<String>,
    workflow_id: Option<String>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct WorkflowsView {
    invocations: Vec<Invocation>,
    identities: Vec<UnfinishedIdentity>,
    /// Set when Restate could not be asked; the identities are still listed.
    restate_error: Option<String>,
}

const IN_FLIGHT: &str = "SELECT id, target, status, last_failure, created_at, modified_at \
    FROM sys_invocation WHERE status <> 'completed' ORDER BY modified_at DESC LIMIT 200";

fn text(v: &Value, k: &str) -> Option<String> {
    match &v[k] {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[utoipa::path(get, path = "/v1/admin/workflows", tag = "admin", security(("admin" = [])),
    responses((status = 200, body = WorkflowsView), (status = 403)))]
pub async fn workflows(
    State(state): State<AppState>,
    _admin: AdminAuth,
) -> ApiResult<Json<WorkflowsView>> {
    let (invocations, restate_error) = match state.restate.query(IN_FLIGHT).await {
        Ok(rows) => (
            rows.iter()
                .map(|r| {
                    let id = text(r, "id").unwrap_or_default();
                    let status = text(r, "status").unwrap_or_default();
                    Invocation {
                        ui: state.restate.ui_link(&id),
                        stuck: status == "backing-off" || r["last_failure"].is_string(),
                        target: text(r, "target").unwrap_or_default(),
                        last_failure: text(r, "last_failure"),
                        created_at: text(r, "created_at"),
                        modified_at: text(r, "modified_at"),
                        status,
                        id,
                    }
                })
                .collect(),
            None,
        ),
        Err(e) => (vec![], Some(e.to_string())),
    };
    let identities = db::identities::unfinished(&state.pool)
        .await?
        .into_iter()
        .map(|i| UnfinishedIdentity {
            id: i.id,
            user_id: i.user_id,
            status: i.status,
            signal_status: i.signal_status,
            failure_reason: i.failure_reason,
            workflow_id: i.workflow_id,
        })
        .collect();
    Ok(Json(WorkflowsView {
        invocations,
        identities,
        restate_error,
    }))
}
