//! Reads active keys, each owner's subscription and identity status, and their usage in the
//! current billing period (since the subscription's period start, or the calendar month).

use crate::keys::Access;
use chrono::{DateTime, Datelike, TimeZone, Utc};
use domain::Plan;
use sqlx::PgPool;
use std::collections::HashMap;
use uuid::Uuid;

/// An API key, or a connected instance's access token (then `key_id` is its grant's id and
/// `expires_at` its expiry in Unix seconds; keys never expire).
pub struct KeyRow {
    pub key_id: Uuid,
    pub user_id: Uuid,
    pub hash: [u8; 32],
    pub expires_at: i64,
}

pub struct UserRow {
    pub user_id: Uuid,
    pub access: Access,
    pub period_start: DateTime<Utc>,
    pub used_tokens: i64,
    pub spent_microdollars: i64,
}

#[derive(Default)]
pub struct Snapshot {
    pub keys: Vec<KeyRow>,
    pub users: Vec<UserRow>,
}

/// The owner of the active key or live access token with this hash, if there is one.
pub async fn owner_of(pool: &PgPool, hash: &[u8; 32]) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT user_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL
         UNION ALL
         SELECT t.user_id FROM oauth_tokens t JOIN oauth_grants g ON g.id = t.grant_id
         WHERE t.access_hash = $1 AND g.revoked_at IS NULL AND t.access_expires_at > now()
         LIMIT 1",
    )
    .bind(&hash[..])
    .fetch_optional(pool)
    .await
}

type SubRow = (Uuid, String, String, Option<i64>, Option<DateTime<Utc>>);

/// Everything, or only `user`'s rows.
pub async fn snapshot(pool: &PgPool, user: Option<Uuid>) -> Result<Snapshot, sqlx::Error> {
    let keys: Vec<(Uuid, Uuid, Vec<u8>, i64)> = sqlx::query_as(
        "SELECT id, user_id, key_hash, 9223372036854775807::int8 FROM api_keys
         WHERE revoked_at IS NULL AND ($1::uuid IS NULL OR user_id = $1)
         UNION ALL
         SELECT g.id, g.user_id, t.access_hash, extract(epoch FROM t.access_expires_at)::int8
         FROM oauth_tokens t JOIN oauth_grants g ON g.id = t.grant_id
         WHERE g.revoked_at IS NULL AND t.access_expires_at > now()
           AND ($1::uuid IS NULL OR g.user_id = $1)",
    )
    .bind(user)
    .fetch_all(pool)
    .await?;
    // The subscription that grants access wins; otherwise the most recently changed one.
    let subs: Vec<SubRow> = sqlx::query_as(
        "SELECT DISTINCT ON (user_id) user_id, plan, status, spending_cap_microdollars,
                current_period_start
         FROM subscriptions WHERE ($1::uuid IS NULL OR user_id = $1)
         ORDER BY user_id, (status IN ('active', 'trialing')) DESC, updated_at DESC",
    )
    .bind(user)
    .fetch_all(pool)
    .await?;
    let suspended: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT user_id FROM identities WHERE status = 'suspended'
         AND ($1::uuid IS NULL OR user_id = $1)",
    )
    .bind(user)
    .fetch_all(pool)
    .await?;
    let suspended: std::collections::HashSet<Uuid> = suspended.into_iter().map(|r| r.0).collect();
    let subs: HashMap<Uuid, SubRow> = subs.into_iter().map(|s| (s.0, s)).collect();

    let mut user_ids: Vec<Uuid> = keys.iter().map(|k| k.1).collect();
    user_ids.sort_unstable();
    user_ids.dedup();
    let mut users = Vec::with_capacity(user_ids.len());
    for user_id in &user_ids {
        let sub = subs.get(user_id);
        let access = if suspended.contains(user_id) {
            Access::Suspended
        } else {
            match sub {
                Some((_, plan, status, cap, _)) if status == "active" || status == "trialing" => {
                    match Plan::parse(plan) {
                        Ok(plan) => Access::Active {
                            plan,
                            cap_microdollars: *cap,
                        },
                        Err(_) => Access::NoSubscription,
                    }
                }
                _ => Access::NoSubscription,
            }
        };
        let period_start = sub.and_then(|s| s.4).unwrap_or_else(month_start);
        users.push(UserRow {
            user_id: *user_id,
            access,
            period_start,
            used_tokens: 0,
            spent_microdollars: 0,
        });
    }
    let totals = period_totals(
        pool,
        &users
            .iter()
            .map(|u| (u.user_id, u.period_start))
            .collect::<Vec<_>>(),
    )
    .await?;
    for u in &mut users {
        if let Some((t, c)) = totals.get(&u.user_id) {
            u.used_tokens = *t;
            u.spent_microdollars = *c;
        }
    }
    let keys = keys
        .into_iter()
        .filter_map(|(key_id, user_id, hash, expires_at)| {
            Some(KeyRow {
                key_id,
                user_id,
                hash: hash.try_into().ok()?,
                expires_at,
            })
        })
        .collect();
    Ok(Snapshot { keys, users })
}

/// Tokens and cost per user since each one's period start: whole hours from `usage_hourly`,
/// and the events themselves for the part of an hour before the first whole one (a Stripe
/// period starts at any second). So the cost is at most an hour of events, however far
/// into the period.
pub async fn period_totals(
    pool: &PgPool,
    users: &[(Uuid, DateTime<Utc>)],
) -> Result<HashMap<Uuid, (i64, i64)>, sqlx::Error> {
    if users.is_empty() {
        return Ok(HashMap::new());
    }
    let (ids, since): (Vec<Uuid>, Vec<DateTime<Utc>>) = users.iter().copied().unzip();
    let rows: Vec<(Uuid, i64, i64)> = sqlx::query_as(
        "WITH u AS (
            SELECT user_id, since, CASE WHEN date_trunc('hour', since, 'UTC') = since THEN since
                ELSE date_trunc('hour', since, 'UTC') + interval '1 hour' END AS whole_from
            FROM UNNEST($1::uuid[], $2::timestamptz[]) AS t(user_id, since))
         SELECT u.user_id, (COALESCE(h.tokens, 0) + COALESCE(e.tokens, 0))::int8,
                (COALESCE(h.cost, 0) + COALESCE(e.cost, 0))::int8
         FROM u
         CROSS JOIN LATERAL (
            SELECT sum(input_tokens + output_tokens) AS tokens, sum(cost_microdollars) AS cost
            FROM usage_hourly WHERE user_id = u.user_id AND hour >= u.whole_from) h
         CROSS JOIN LATERAL (
            SELECT sum(input_tokens + output_tokens) AS tokens, sum(cost_microdollars) AS cost
            FROM usage_events
            WHERE user_id = u.user_id AND created_at >= u.since AND created_at < u.whole_from) e",
    )
    .bind(ids)
    .bind(since)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(u, t, c)| (u, (t, c))).collect())
}

fn month_start() -> DateTime<Utc> {
    let now = Utc::now();
    Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(now)
}
