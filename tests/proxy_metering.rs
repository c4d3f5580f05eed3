//! What a usage event says: cached prompt tokens as the upstreams report them, cost from the
//! price table; and that usage is never dropped by a shutdown, even with the database down
//! (the spill file is replayed by the next start).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod proxy_support;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use common::db::TestDb;
use proxy_support as ps;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn cached_tokens_and_cost_are_metered_as_reported() {
    let db = TestDb::new().await;
    let sandbox = ps::start_sandbox().await;
    ps::sandbox_ai(sandbox, json!({"tokens": 10, "cached_tokens": 2})).await;
    let user = ps::user(&db.pool, Some(("basic", "active")), None).await;
    let proxy = ps::RunningProxy::start(ps::options(&db.url, sandbox)).await;
    let c = ps::client();
    let body = json!({"model": "gpt-4o", "messages": [
        {"role": "user", "content": "one two three four five six seven"}]});
    let res: serde_json::Value = c
        .post(proxy.url("/v1/chat/completions"))
        .bearer_auth(&user.key)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let prompt = res["usage"]["prompt_tokens"].as_i64().unwrap();
    let res: serde_json::Value = c
        .post(proxy.url("/v1/messages"))
        .header("x-api-key", &user.key)
        .header("anthropic-version", "2023-06-01")
        .json(
            &json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "stream": false,
            "messages": [{"role": "user", "content": "one two three four five six seven"}]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(res["usage"]["cache_read_input_tokens"], 2);

    let rows = ps::wait_usage(&db.pool, user.id, 2, Duration::from_secs(5)).await;
    let openai = rows.iter().find(|r| r.provider == "openai").unwrap();
    assert_eq!(
        (
            openai.input_tokens,
            openai.cache_read_tokens,
            openai.output_tokens
        ),
        (prompt, 2, 10)
    );
    // gpt-4o: $2.50 per million uncached input, $1.25 cached, $10 output; rounded up.
    let expect = ((prompt - 2) * 2_500_000 + 2 * 1_250_000 + 10 * 10_000_000 + 999_999) / 1_000_000;
    assert_eq!(openai.cost_microdollars, expect);
    let anthropic = rows.iter().find(|r| r.provider == "anthropic").unwrap();
    // Anthropic reports input without the cached part; the event counts every prompt token.
    let input = res["usage"]["input_tokens"].as_i64().unwrap() + 2;
    assert_eq!(
        (anthropic.input_tokens, anthropic.cache_read_tokens),
        (input, 2)
    );
    let expect = ((input - 2) * 3_000_000 + 2 * 300_000 + 10 * 15_000_000 + 999_999) / 1_000_000;
    assert_eq!(anthropic.cost_microdollars, expect);
    proxy.stop().await;
    db.drop().await;
}

#[tokio::test]
async fn shutdown_writes_what_is_still_queued() {
    let db = TestDb::new().await;
    let sandbox = ps::start_sandbox().await;
    let user = ps::user(&db.pool, Some(("basic", "active")), None).await;
    let mut options = ps::options(&db.url, sandbox);
    // Batches would wait a minute: only the shutdown can have written them.
    options.batch_wait = Duration::from_secs(60);
    let proxy = ps::RunningProxy::start(options).await;
    for _ in 0..5 {
        let res = ps::post_chat(&proxy, &user.key, "gpt-4o-mini", false).await;
        assert_eq!(res.status(), 200);
    }
    assert_eq!(ps::usage(&db.pool, user.id).await.len(), 0);
    proxy.stop().await;
    assert_eq!(ps::usage(&db.pool, user.id).await.len(), 5);
    db.drop().await;
}

/// A batch goes the moment it is full, whatever is left of its wait.
#[tokio::test]
async fn a_full_batch_is_written_at_once() {
    let db = TestDb::new().await;
    let sandbox = ps::start_sandbox().await;
    let user = ps::user(&db.pool, Some(("basic", "active")), None).await;
    let mut options = ps::options(&db.url, sandbox);
    options.batch_wait = Duration::from_secs(60);
    options.batch_max = 3;
    let proxy = ps::RunningProxy::start(options).await;
    for _ in 0..4 {
        let res = ps::post_chat(&proxy, &user.key, "gpt-4o-mini", false).await;
        assert_eq!(res.status(), 200);
    }
    let rows = ps::wait_usage(&db.pool, user.id, 3, Duration::from_secs(10)).await;
    assert!(
        rows.len() >= 3,
        "the full batch did not go before its minute"
    );
    proxy.stop().await;
    assert_eq!(ps::usage(&db.pool, user.id).await.len(), 4);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_spilled_at_shutdown_are_replayed_by_the_next_start() {
    let pg = std::sync::Arc::new(ps::pg::OwnPostgres::start());
    let url = pg.url("poindexter_spill");
    let pool = db::create_and_migrate(&url).await.unwrap();
    let user = ps::user(&pool, Some(("basic", "active")), None).await;
    pool.close().await;
    let sandbox = ps::start_sandbox().await;
    let options = ps::options(&url, sandbox);
    let spill = options.spill_path.clone();

    let proxy = ps::RunningProxy::start(options.clone()).await;
    let stopping = pg.clone();
    tokio::task::spawn_blocking(move || stopping.stop())
        .await
        .unwrap();
    for _ in 0..7 {
        let res = ps::post_chat(&proxy, &user.key, "gpt-4o-mini", false).await;
        assert_eq!(res.status(), 200);
    }
    // Stopping with the database down leaves the events in the spill file...
    proxy.stop_keeping_files().await;
    let spilled = std::fs::read_to_string(&spill).unwrap();
    assert_eq!(spilled.lines().count(), 7);

    // ...and the next start, with the database back, writes them.
    let starting = pg.clone();
    tokio::task::spawn_blocking(move || starting.start_again())
        .await
        .unwrap();
    let proxy = ps::RunningProxy::start(options).await;
    let pool = db::connect(&url).await.unwrap();
    let rows = ps::wait_usage(&pool, user.id, 7, Duration::from_secs(10)).await;
    assert_eq!(rows.len(), 7);
    // The replay removes the file once its events are committed, so a moment after the rows
    // show up: waited for, not assumed (under load the check raced the removal and failed).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !spill_is_empty(&spill) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(spill_is_empty(&spill), "the spill file still holds events");
    proxy.stop().await;
    pool.close().await;
}

/// Batches go in with COPY, which cannot skip rows already there. A replayed spill file that
/// repeats written events must still count each once, in the events and in the hourly totals
/// the proxy's budgets read, and text comes back byte for byte.
#[tokio::test]
async fn a_replay_of_events_already_written_counts_each_once() {
    let db = TestDb::new().await;
    let sandbox = ps::start_sandbox().await;
    let user = ps::user(&db.pool, Some(("basic", "active")), None).await;
    let options = ps::options(&db.url, sandbox);
    let event = |n: u32, model: &str| {
        let mut e = usage_event(
            &user,
            &format!("req-replay-{n}"),
            Utc::now(),
            10 + i64::from(n),
        );
        e.model = model.to_owned();
        e.estimated = n % 2 == 1;
        e
    };
    let odd = "gpt-4o-mini\twith\\tabs\nand \"quotes\" and a backslash \\";
    let first: Vec<_> = (0..3).map(|n| event(n, odd)).collect();

    write_spill(&options, &first);
    let proxy = ps::RunningProxy::start(options.clone()).await;
    let rows = ps::wait_usage(&db.pool, user.id, 3, Duration::from_secs(10)).await;
    proxy.stop_keeping_files().await;
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.model == odd), "{:?}", rows[0].model);

    // The same three again, and two new ones: the three are in already.
    let mut again = first.clone();
    again.extend((3..5).map(|n| event(n, "gpt-4o")));
    write_spill(&options, &again);
    let proxy = ps::RunningProxy::start(options).await;
    let rows = ps::wait_usage(&db.pool, user.id, 5, Duration::from_secs(10)).await;
    proxy.stop().await;
    let mut ids: Vec<_> = rows.iter().map(|r| r.request_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        [
            "req-replay-0",
            "req-replay-1",
            "req-replay-2",
            "req-replay-3",
            "req-replay-4"
        ]
    );
    let input: i64 = rows.iter().map(|r| r.input_tokens).sum();
    assert_eq!(input, 10 + 11 + 12 + 13 + 14);
    assert_eq!(rows.iter().filter(|r| r.estimated).count(), 2);
    assert_eq!(hourly_totals(&db.pool, user.id).await, (60, 25, 35));
    db.drop().await;
}

/// An event Postgres refuses outright (here a negative count, against a CHECK) is set aside in
/// a rejected file beside the spill file, and the events around it, and every later one, are
/// written: one bad event must not stall metering behind it for good.
#[tokio::test]
async fn an_event_postgres_refuses_is_set_aside_and_metering_goes_on() {
    let db = TestDb::new().await;
    let sandbox = ps::start_sandbox().await;
    let user = ps::user(&db.pool, Some(("basic", "active")), None).await;
    let options = ps::options(&db.url, sandbox);
    let mut bad = usage_event(&user, "refused", Utc::now(), 1);
    bad.input_tokens = -5;
    let events = [
        usage_event(&user, "before", Utc::now(), 10),
        bad,
        usage_event(&user, "after", Utc::now(), 20),
    ];
    write_spill(&options, &events);
    let proxy = ps::RunningProxy::start(options.clone()).await;
    ps::wait_usage(&db.pool, user.id, 2, Duration::from_secs(10)).await;
    let res = ps::post_chat(&proxy, &user.key, "gpt-4o-mini", false).await;
    assert_eq!(res.status(), 200);
    let rows = ps::wait_usage(&db.pool, user.id, 3, Duration::from_secs(10)).await;
    proxy.stop_keeping_files().await;
    let mut ids: Vec<_> = rows.iter().map(|r| r.request_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(ids.contains(&"before") && ids.contains(&"after") && !ids.contains(&"refused"));
    assert!(
        spill_is_empty(&options.spill_path),
        "the spill file still holds events"
    );
    let rejected = std::fs::read_to_string(options.spill_path.with_extension("rejected")).unwrap();
    assert_eq!(rejected.lines().count(), 1);
    assert!(rejected.contains("\"refused\""), "{rejected}");
    let _ = std::fs::remove_dir_all(options.spill_path.parent().unwrap());
    db.drop().await;
}

/// An event for a month that has no partition yet (the UsageScheduler keeps a few months
/// ahead, but a clock can be off): Postgres reports no partition, the writer creates the
/// month's partition and writes the event, and it is not set aside as refused.
#[tokio::test]
async fn an_event_in_a_month_without_a_partition_gets_one_and_is_written() {
    let db = TestDb::new().await;
    let sandbox = ps::start_sandbox().await;
    let user = ps::user(&db.pool, Some(("basic", "active")), None).await;
    let options = ps::options(&db.url, sandbox);
    let later = chrono::DateTime::parse_from_rfc3339("2031-06-15T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let events = [
        usage_event(&user, "now", Utc::now(), 10),
        usage_event(&user, "later", later, 20),
    ];
    write_spill(&options, &events);
    let proxy = ps::RunningProxy::start(options.clone()).await;
    let rows = ps::wait_usage(&db.pool, user.id, 2, Duration::from_secs(10)).await;
    proxy.stop_keeping_files().await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let (made,): (Option<String>,) =
        sqlx::query_as("SELECT to_regclass('usage_events_2031_06')::text")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(made.as_deref(), Some("usage_events_2031_06"));
    assert!(!options.spill_path.with_extension("rejected").exists());
    let _ = std::fs::remove_dir_all(options.spill_path.parent().unwrap());
    db.drop().await;
}

fn spill_is_empty(path: &std::path::Path) -> bool {
    std::fs::read_to_string(path).map_or(true, |s| s.trim().is_empty())
}

/// The model name is stored with each event as the caller sent it (a catalog entry matches by
/// prefix). One Postgres cannot store, or a megabyte of it, is refused up front in the
/// caller's format; it must never become an event that blocks the writer's later batches.
#[tokio::test]
async fn a_model_name_that_cannot_be_stored_is_refused_and_metering_goes_on() {
    let db = TestDb::new().await;
    let sandbox = ps::start_sandbox().await;
    let user = ps::user(&db.pool, Some(("basic", "active")), None).await;
    let proxy = ps::RunningProxy::start(ps::options(&db.url, sandbox)).await;
    let c = ps::client();
    let res = ps::post_chat(&proxy, &user.key, "gpt-4o-mini\u{0}x", false).await;
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`model` must be a model name"),
        "{body}"
    );
    let res = c
        .post(proxy.url("/v1/messages"))
        .header("x-api-key", &user.key)
        .header("anthropic-version", "2023-06-01")
        .json(
            &json!({"model": format!("claude-haiku-4-5{}", "x".repeat(300)), "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");

    let res = ps::post_chat(&proxy, &user.key, "gpt-4o-mini-2024-07-18", false).await;
    assert_eq!(res.status(), 200);
    let rows = ps::wait_usage(&db.pool, user.id, 1, Duration::from_secs(10)).await;
    proxy.stop().await;
    let models: Vec<_> = rows.iter().map(|r| r.model.as_str()).collect();
    assert_eq!(models, ["gpt-4o-mini-2024-07-18"]);
    db.drop().await;
}

/// A body the proxy cannot read as one JSON object with one `model` is refused by the proxy in
/// the caller's format, before any provider sees it, and nothing is metered: a conversation
/// that is not JSON, a body cut short, and a model written twice (plainly, or once through an
/// escape), which a provider might read as the other model than the one metered.
#[tokio::test]
async fn a_body_that_is_not_one_request_is_refused_and_not_metered() {
    let db = TestDb::new().await;
    let sandbox = ps::start_sandbox().await;
    let user = ps::user(&db.pool, Some(("basic", "active")), None).await;
    let proxy = ps::RunningProxy::start(ps::options(&db.url, sandbox)).await;
    for (bad, says) in [
        (
            r#"{"messages":[{"role":"user","content":tru}],"model":"gpt-4o-mini"}"#,
            "not valid JSON",
        ),
        (r#"{"messages":[],"model":"gpt-4o-mini""#, "not valid JSON"),
        (
            r#"{"messages":[],"model":"gpt-4o-mini","model":"gpt-4o"}"#,
            "duplicate field `model`",
        ),
        (
            r#"{"model":"gpt-4o-mini","mod\u0065l":"gpt-4o"}"#,
            "duplicate field `model`",
        ),
    ] {
        let res = ps::client()
            .post(proxy.url("/v1/chat/completions"))
            .bearer_auth(&user.key)
            .header("content-type", "application/json")
            .body(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{bad}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["type"], "invalid_request_error", "{bad}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{bad}: {message}");
    }

    let res = ps::post_chat(&proxy, &user.key, "gpt-4o-mini", false).await;
    assert_eq!(res.status(), 200);
    ps::wait_usage(&db.pool, user.id, 1, Duration::from_secs(10)).await;
    // Stopping writes out whatever else was metered.
    proxy.stop().await;
    let seen: Vec<_> = ps::usage(&db.pool, user.id)
        .await
        .iter()
        .map(|r| (r.model.clone(), r.status_code))
        .collect();
    assert_eq!(seen, [("gpt-4o-mini".to_owned(), 200)]);
    db.drop().await;
}

/// A Stripe period starts at any second. The budget counts whole hours from the hourly totals
/// and the partial first hour from the events themselves: usage minutes before the period
/// start, in the same hour, must not count against it; usage minutes after must. The database
/// runs in a half-hour time zone, so an hour cut in local time would be caught too.
#[tokio::test]
async fn a_period_starting_mid_hour_counts_only_its_own_usage() {
    let db = TestDb::new().await;
    sqlx::query(
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET TimeZone = %L',
            current_database(), 'Asia/Kolkata'); END $$",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let sandbox = ps::start_sandbox().await;
    let user = ps::user(&db.pool, Some(("basic", "active")), None).await;
    let hour = Utc::now().duration_trunc(TimeDelta::hours(1)).unwrap();
    let since = hour - TimeDelta::hours(2) + TimeDelta::minutes(17);
    sqlx::query("UPDATE subscriptions SET current_period_start = $2 WHERE user_id = $1")
        .bind(user.id)
        .bind(since)
        .execute(&db.pool)
        .await
        .unwrap();
    let events = [
        usage_event(
            &user,
            "before-the-period",
            since - TimeDelta::hours(3),
            4000,
        ),
        usage_event(
            &user,
            "same-hour-before",
            since - TimeDelta::minutes(5),
            1000,
        ),
        usage_event(&user, "same-hour-after", since + TimeDelta::minutes(1), 20),
        usage_event(&user, "a-whole-hour", since + TimeDelta::hours(1), 300),
        usage_event(&user, "just-now", Utc::now() - TimeDelta::seconds(1), 7),
    ];
    let options = ps::options(&db.url, sandbox);
    write_spill(&options, &events);
    let proxy = ps::RunningProxy::start(options.clone()).await;
    ps::wait_usage(&db.pool, user.id, events.len(), Duration::from_secs(10)).await;
    proxy.stop().await;
    // Every event is in the hourly totals; each input above comes with 5 output tokens.
    assert_eq!(
        hourly_totals(&db.pool, user.id).await,
        (5327, 25, 35),
        "hourly totals"
    );

    // A new instance reads the period's usage at start.
    let proxy = ps::RunningProxy::start(options).await;
    let res = ps::post_chat(&proxy, &user.key, "gpt-4o-mini", false).await;
    assert_eq!(res.status(), 200);
    let remaining: i64 = res.headers()["x-poindexter-tokens-remaining"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    let answer = body["usage"]["total_tokens"].as_i64().unwrap();
    let period = (20 + 5) + (300 + 5) + (7 + 5);
    assert_eq!(remaining, 5_000_000 - period - answer);
    proxy.stop().await;
    db.drop().await;
}

/// An event as the proxy records it: `input` prompt tokens, 5 output tokens, 7 microdollars.
fn usage_event(
    user: &ps::TestUser,
    request_id: &str,
    at: DateTime<Utc>,
    input: i64,
) -> proxy::UsageEvent {
    proxy::UsageEvent {
        request_id: request_id.to_owned(),
        user_id: user.id,
        api_key_id: user.key_id,
        model: "gpt-4o-mini".into(),
        provider: "openai".into(),
        input_tokens: input,
        output_tokens: 5,
        cache_read_tokens: 0,
        cache_write_tokens: 0,
        cost_microdollars: 7,
        latency_ms: 3,
        status_code: 200,
        estimated: false,
        created_at: at,
    }
}

/// Leaves `events` in the spill file, which the next proxy start replays.
fn write_spill(options: &proxy::Options, events: &[proxy::UsageEvent]) {
    let dir = options.spill_path.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let lines: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    std::fs::write(&options.spill_path, lines.join("\n") + "\n").unwrap();
}

/// The user's (input, output, cost) over all hours of `usage_hourly`.
async fn hourly_totals(pool: &sqlx::PgPool, user: uuid::Uuid) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT COALESCE(sum(input_tokens), 0)::int8, COALESCE(sum(output_tokens), 0)::int8,
                COALESCE(sum(cost_microdollars), 0)::int8
         FROM usage_hourly WHERE user_id = $1",
    )
    .bind(user)
    .fetch_one(pool)
    .await
    .unwrap()
}
