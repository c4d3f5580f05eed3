//! Rows of recent activity (AI requests and messages) as the dashboard and /activity list
//! them, each AI request named by the key or instance that made it.

use super::format;
use crate::error::ApiResult;
use crate::state::AppState;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use uuid::Uuid;

pub struct Row {
    pub at: DateTime<Utc>,
    pub when: String,
    pub what: String,
    pub detail: String,
    pub source: String,
    pub tokens: String,
    pub cost: String,
}

/// Names of the user's credentials: keys by name, instances by client id.
async fn credential_names(state: &AppState, user_id: Uuid) -> ApiResult<HashMap<Uuid, String>> {
    let mut names: HashMap<Uuid, String> = HashMap::new();
    for (id, client) in db::oauth::client_names(&state.pool, user_id).await? {
        names.insert(id, client);
    }
    for k in db::api_keys::list_all(&state.pool, user_id).await? {
        names.insert(k.0, format!("key “{}”", k.1));
    }
    Ok(names)
}

pub async fn requests(
    state: &AppState,
    user_id: Uuid,
    since: DateTime<Utc>,
    limit: i64,
) -> ApiResult<Vec<Row>> {
    let names = credential_names(state, user_id).await?;
    let now = Utc::now();
    Ok(db::activity::requests(&state.pool, user_id, since, limit)
        .await?
        .into_iter()
        .map(|r| Row {
            at: r.created_at,
            when: format::ago(r.created_at, now),
            what: if r.status_code < 400 {
                "AI request".into()
            } else {
                format!("AI request ({})", r.status_code)
            },
            detail: r.model,
            source: r
                .credential_id
                .and_then(|c| names.get(&c).cloned())
                .unwrap_or_else(|| "—".into()),
            tokens: format::int(r.input_tokens + r.output_tokens),
            cost: format::money(r.cost_microdollars),
        })
        .collect())
}

pub async fn messages(state: &AppState, user_id: Uuid, limit: i64) -> ApiResult<Vec<Row>> {
    let now = Utc::now();
    Ok(db::activity::messages(&state.pool, user_id, limit)
        .await?
        .into_iter()
        .map(|m| {
            let (what, detail) = match m.kind.as_str() {
                "email.sent" => ("Email sent", recipients(m.detail.as_deref())),
                "signal.sent" => ("Signal message sent", recipients(m.detail.as_deref())),
                _ => (
                    "SMS received",
                    format!(
                        "from {}",
                        m.detail.as_deref().map(format::phone).unwrap_or_default()
                    ),
                ),
            };
            Row {
                at: m.at,
                when: format::ago(m.at, now),
                what: what.into(),
                detail,
                source: "—".into(),
                tokens: "—".into(),
                cost: "—".into(),
            }
        })
        .collect())
}

fn recipients(n: Option<&str>) -> String {
    match n.and_then(|n| n.parse::<i64>().ok()) {
        Some(1) => "1 recipient".into(),
        Some(n) => format!("{n} recipients"),
        None => String::new(),
    }
}

/// Both kinds, newest first.
pub async fn merged(
    state: &AppState,
    user_id: Uuid,
    since: DateTime<Utc>,
    limit: i64,
) -> ApiResult<Vec<Row>> {
    let mut rows = requests(state, user_id, since, limit).await?;
    rows.extend(messages(state, user_id, limit).await?);
    rows.sort_by_key(|r| std::cmp::Reverse(r.at));
    rows.truncate(limit as usize);
    Ok(rows)
}
