//! One multi-row INSERT per batch; `ON CONFLICT DO NOTHING` on (created_at, request_id)
//! makes a replayed event count once.

use crate::usage::UsageEvent;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

pub async fn batch(pool: &PgPool, events: &[UsageEvent]) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let n = events.len();
    let mut request_id = Vec::with_capacity(n);
    let mut user_id: Vec<Uuid> = Vec::with_capacity(n);
    let mut api_key_id: Vec<Uuid> = Vec::with_capacity(n);
    let mut model = Vec::with_capacity(n);
    let mut provider = Vec::with_capacity(n);
    let mut input: Vec<i64> = Vec::with_capacity(n);
    let mut output: Vec<i64> = Vec::with_capacity(n);
    let mut cache_read: Vec<i64> = Vec::with_capacity(n);
    let mut cache_write: Vec<i64> = Vec::with_capacity(n);
    let mut cost: Vec<i64> = Vec::with_capacity(n);
    let mut latency: Vec<i32> = Vec::with_capacity(n);
    let mut status: Vec<i32> = Vec::with_capacity(n);
    let mut estimated: Vec<bool> = Vec::with_capacity(n);
    let mut created_at: Vec<DateTime<Utc>> = Vec::with_capacity(n);
    for e in events {
        request_id.push(e.request_id.as_str());
        user_id.push(e.user_id);
        api_key_id.push(e.api_key_id);
        model.push(e.model.as_str());
        provider.push(e.provider.as_str());
        input.push(e.input_tokens);
        output.push(e.output_tokens);
        cache_read.push(e.cache_read_tokens);
        cache_write.push(e.cache_write_tokens);
        cost.push(e.cost_microdollars);
        latency.push(e.latency_ms);
        status.push(e.status_code);
        estimated.push(e.estimated);
        created_at.push(e.created_at);
    }
    sqlx::query(
        "INSERT INTO usage_events (request_id, user_id, api_key_id, model, provider,
            input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
            cost_microdollars, latency_ms, status_code, estimated, created_at)
         SELECT * FROM UNNEST($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::text[],
            $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int4[],
            $12::int4[], $13::bool[], $14::timestamptz[])
         ON CONFLICT DO NOTHING",
    )
    .bind(request_id)
    .bind(user_id)
    .bind(api_key_id)
    .bind(model)
    .bind(provider)
    .bind(input)
    .bind(output)
    .bind(cache_read)
    .bind(cache_write)
    .bind(cost)
    .bind(latency)
    .bind(status)
    .bind(estimated)
    .bind(created_at)
    .execute(pool)
    .await?;
    Ok(())
}
