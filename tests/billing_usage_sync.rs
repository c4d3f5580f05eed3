//! UsageSync under a real restate-server and the real `poindexter workflows` process, reporting
//! to the sandbox's Stripe: overage per SPEC reported exactly once across re-runs, a crash
//! between reporting and recording, a month rollover and a plan change mid-month.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod billing_support;
mod common;

use billing_support::{billing_stack, eventually, Stack, PRICE_PRO};
use chrono::{Duration as ChronoDuration, Utc};
use domain::Month;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

const INPUT: &str = "poindexter_overage_input_tokens";
const OUTPUT: &str = "poindexter_overage_output_tokens";
const WAIT: Duration = Duration::from_secs(60);

fn this_month() -> Month {
    Month::containing(Utc::now().date_naive())
}

/// A moment inside this month that is already past, so served order is insertion order.
fn earlier_this_month() -> chrono::DateTime<Utc> {
    let start = db::usage::bounds(this_month()).0;
    (Utc::now() - ChronoDuration::minutes(30)).max(start)
}

async fn rerun(stack: &Stack, user: &str, month: Month) -> Value {
    let res = stack
        .admin_post(&format!("/v1/admin/usage-sync/{user}/{month}"), json!({}))
        .await;
    let status = res.status();
    let v: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

/// The input overage Stripe is recorded to have accepted for the user's month.
async fn recorded_input(stack: &Stack, user: uuid::Uuid, month: Month) -> i64 {
    db::usage::monthly(&stack.db.pool, user, month)
        .await
        .unwrap()
        .map_or(0, |m| m.reported_input_tokens)
}

/// A Basic subscriber with 6M input tokens served earlier this month (1M over the plan): their
/// session, Stripe customer, user id, and the URL that runs their month's sync at Restate's
/// ingress (answering with its outcome, where the admin route would wrap it).
async fn a_million_over_basic(
    stack: &Stack,
    email: &str,
) -> (common::api::Session, String, uuid::Uuid, String) {
    let s = stack.register(email).await;
    stack.subscribe_and_pay(&s, "basic").await;
    let customer = stack.customer_of(&s.user_id).await;
    let user = uuid::Uuid::parse_str(&s.user_id).unwrap();
    let ingress = stack.restate.as_ref().unwrap().ingress.clone();
    let sync_url = format!("{ingress}/UsageSync/{user}:{}/sync", this_month());
    stack
        .insert_usage(&s.user_id, earlier_this_month(), &[(6_000_000, 0)])
        .await;
    (s, customer, user, sync_url)
}

/// Runs the sync at `sync_url` and checks that Stripe's refusal ended it: a terminal error,
/// which Restate's ingress answers with the error's code (500 by default).
async fn sync_refused_by_stripe(stack: &Stack, sync_url: &str) {
    let res = stack
        .http
        .post(sync_url)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("Stripe refused"), "{body}");
}

/// `input` more input tokens served a few seconds ago.
async fn more_input(stack: &Stack, user: &str, input: i64) {
    stack
        .insert_usage(user, Utc::now() - ChronoDuration::seconds(5), &[(input, 0)])
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_specs_example_is_billed_exactly_once_however_often_sync_runs() {
    let stack = billing_stack(true).await;
    let s = stack.register("spec@example.com").await;
    stack.subscribe_and_pay(&s, "basic").await;
    let customer = stack.customer_of(&s.user_id).await;
    let month = this_month();

    // SPEC: Basic, 6M input tokens then 0.5M output tokens → 1M input + 0.5M output overage.
    stack
        .insert_usage(
            &s.user_id,
            earlier_this_month(),
            &[(6_000_000, 0), (0, 500_000)],
        )
        .await;
    let first = rerun(&stack, &s.user_id, month).await;
    let r = &first;
    assert_eq!(r["overage_input_tokens"], 1_000_000, "{r}");
    assert_eq!(r["overage_output_tokens"], 500_000);
    assert_eq!(r["overage_cost_microdollars"], 3_000_000 + 7_500_000);
    assert_eq!(r["sent"].as_array().unwrap().len(), 2);
    assert_eq!(stack.meter_total(&customer, INPUT).await, 1_000_000);
    assert_eq!(stack.meter_total(&customer, OUTPUT).await, 500_000);

    // Re-runs send nothing new.
    for _ in 0..2 {
        let again = rerun(&stack, &s.user_id, month).await;
        assert!(again["sent"].as_array().unwrap().is_empty(), "{again}");
    }
    assert_eq!(stack.meter_total(&customer, INPUT).await, 1_000_000);
    assert_eq!(stack.meter_total(&customer, OUTPUT).await, 500_000);

    // More usage: only the delta is reported.
    stack
        .insert_usage(
            &s.user_id,
            Utc::now() - ChronoDuration::seconds(5),
            &[(10_000, 25_000)],
        )
        .await;
    let r = rerun(&stack, &s.user_id, month).await;
    assert_eq!(r["sent"].as_array().unwrap().len(), 2, "{r}");
    assert_eq!(stack.meter_total(&customer, INPUT).await, 1_010_000);
    assert_eq!(stack.meter_total(&customer, OUTPUT).await, 525_000);
    // Stripe took four events, each once, under the identifiers the runs sent.
    let taken = stack.stripe_resources().await["meter_events"].clone();
    let mut values: Vec<(String, String)> = taken
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["customer"] == customer.as_str())
        .map(|e| (e["identifier"].to_string(), e["value"].to_string()))
        .collect();
    values.sort();
    let mut sent: Vec<(String, String)> = [&r]
        .into_iter()
        .chain([&first])
        .flat_map(|run| run["sent"].as_array().unwrap().clone())
        .map(|e| (e["identifier"].to_string(), format!("\"{}\"", e["delta"])))
        .collect();
    sent.sort();
    assert_eq!(values, sent, "{taken}");

    // The user sees the bill.
    let bill: Value = stack
        .api_get("/v1/billing/usage", &s.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bill["overage_input_tokens"], 1_010_000, "{bill}");
    assert_eq!(bill["reported_output_tokens"], 525_000);
    assert_eq!(bill["overage_cost_microdollars"], 3_030_000 + 7_875_000);
    let remaining: Value = stack
        .api_get("/v1/usage/remaining", &s.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(remaining["remaining_tokens"], 0);
    let usage: Value = stack
        .api_get("/v1/usage", &s.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(usage["input_tokens"], 6_010_000);
    assert_eq!(usage["output_tokens"], 525_000);
    assert_eq!(usage["by_model"][0]["model"], "claude-sonnet-4");
    assert_eq!(usage["recent"].as_array().unwrap().len(), 3);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_between_reporting_and_recording_does_not_count_twice() {
    let mut stack = billing_stack(true).await;
    let s = stack.register("crash@example.com").await;
    stack.subscribe_and_pay(&s, "basic").await;
    let customer = stack.customer_of(&s.user_id).await;
    let month = this_month();
    stack
        .insert_usage(&s.user_id, earlier_this_month(), &[(6_000_000, 0)])
        .await;

    // Stripe takes the meter event but answers late: the report happened, the run has not
    // recorded it when the workflows process dies.
    stack
        .control(
            "/faults",
            json!({"path": "/v1/billing/meter_events", "delay_ms": 120000, "count": 1}),
        )
        .await;
    let ingress = stack.restate.as_ref().unwrap().ingress.clone();
    let res = stack
        .http
        .post(format!(
            "{ingress}/UsageSync/{}:{month}/sync/send",
            s.user_id
        ))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "Restate accepts the send");
    eventually("meter event reaches Stripe", WAIT, || async {
        (stack.meter_total(&customer, INPUT).await == 1_000_000).then_some(())
    })
    .await;
    stack.workflows.as_mut().unwrap().kill9();
    let m = db::usage::monthly(
        &stack.db.pool,
        uuid::Uuid::parse_str(&s.user_id).unwrap(),
        month,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        m.reported_input_tokens, 0,
        "recorded before the crash: the test did not test"
    );

    // More usage arrives while the process is down.
    more_input(&stack, &s.user_id, 200_000).await;
    stack.start_workflows().await;

    // The interrupted run finishes with what it had seen: 1M, sent once.
    let user = uuid::Uuid::parse_str(&s.user_id).unwrap();
    eventually("the interrupted run records its report", WAIT, || async {
        let m = db::usage::monthly(&stack.db.pool, user, month)
            .await
            .unwrap()?;
        (m.reported_input_tokens == 1_000_000).then_some(())
    })
    .await;
    assert_eq!(stack.meter_total(&customer, INPUT).await, 1_000_000);

    // The next run reports only the rest: the totals equal the overage to the token.
    rerun(&stack, &s.user_id, month).await;
    assert_eq!(stack.meter_total(&customer, INPUT).await, 1_200_000);
    assert_eq!(stack.meter_total(&customer, OUTPUT).await, 0);
    let reports = db::usage::reports(&stack.db.pool, user, month)
        .await
        .unwrap();
    assert_eq!(
        reports.iter().map(|r| r.3).sum::<i64>(),
        1_200_000,
        "{reports:?}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_month_rollover_closes_the_old_month_and_starts_a_fresh_allowance() {
    let stack = billing_stack(true).await;
    let s = stack.register("rollover@example.com").await;
    stack.subscribe_and_pay(&s, "basic").await;
    let customer = stack.customer_of(&s.user_id).await;
    let user = uuid::Uuid::parse_str(&s.user_id).unwrap();
    let this = this_month();
    let last_start = db::usage::bounds(this).0 - ChronoDuration::days(1);
    let last = Month::containing(last_start.date_naive());

    // Last month: 5.5M input (0.5M over). This month: 1M input, within the fresh allowance.
    let last_day = db::usage::bounds(last).1 - ChronoDuration::hours(1);
    stack
        .insert_usage(&s.user_id, last_day, &[(5_500_000, 0)])
        .await;
    stack
        .insert_usage(&s.user_id, earlier_this_month(), &[(1_000_000, 0)])
        .await;

    // One scheduler round: the final run of last month and the hourly run of this one.
    let ingress = stack.restate.as_ref().unwrap().ingress.clone();
    let round: Value = stack
        .http
        .post(format!("{ingress}/UsageScheduler/global/sync_all"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let started: Vec<&str> = round["started"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        started.contains(&format!("{user}:{last}").as_str()),
        "{round}"
    );
    assert!(
        started.contains(&format!("{user}:{this}").as_str()),
        "{round}"
    );

    let closed = eventually("last month closed", WAIT, || async {
        let m = db::usage::monthly(&stack.db.pool, user, last)
            .await
            .unwrap()?;
        m.closed.then_some(m)
    })
    .await;
    assert_eq!(closed.reported_input_tokens, 500_000);
    assert_eq!(stack.meter_total(&customer, INPUT).await, 500_000);
    let current = eventually("this month synced", WAIT, || async {
        db::usage::monthly(&stack.db.pool, user, this)
            .await
            .unwrap()
    })
    .await;
    assert_eq!(current.overage_input_tokens, 0);
    assert!(!current.closed);

    let remaining: Value = stack
        .api_get("/v1/usage/remaining", &s.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(remaining["used_tokens"], 1_000_000);
    assert_eq!(remaining["remaining_tokens"], 4_000_000);

    // The next round does not run the closed month again; a late operator re-run of it is
    // safe and sends nothing.
    let again: Value = stack
        .http
        .post(format!("{ingress}/UsageScheduler/global/sync_all"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!again.to_string().contains(&last.to_string()), "{again}");
    let r = rerun(&stack, &s.user_id, last).await;
    assert!(r["sent"].as_array().unwrap().is_empty(), "{r}");
    assert_eq!(r["closed"], true);
    assert_eq!(stack.meter_total(&customer, INPUT).await, 500_000);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_change_mid_month_moves_the_allowance_without_unbilling() {
    let stack = billing_stack(true).await;
    let s = stack.register("midmonth@example.com").await;
    let sub = stack.subscribe_and_pay(&s, "basic").await;
    let customer = stack.customer_of(&s.user_id).await;
    let month = this_month();

    // On Basic: 6M input → 1M over, reported.
    stack
        .insert_usage(&s.user_id, earlier_this_month(), &[(6_000_000, 0)])
        .await;
    rerun(&stack, &s.user_id, month).await;
    assert_eq!(stack.meter_total(&customer, INPUT).await, 1_000_000);

    // Upgrade to Pro (30M included): 10M more input stays within the new allowance, and what
    // was already billed stays billed.
    stack
        .control(
            &format!("/subscriptions/{sub}/plan"),
            json!({"price": PRICE_PRO}),
        )
        .await;
    stack
        .insert_usage(
            &s.user_id,
            Utc::now() - ChronoDuration::seconds(20),
            &[(10_000_000, 0)],
        )
        .await;
    let r = rerun(&stack, &s.user_id, month).await;
    assert_eq!(r["plan"], "pro", "{r}");
    assert_eq!(r["overage_input_tokens"], 0);
    assert!(r["sent"].as_array().unwrap().is_empty());
    assert_eq!(stack.meter_total(&customer, INPUT).await, 1_000_000);

    // Past Pro's allowance: 15M more input → 31M total, 1M over on Pro — already covered by the
    // 1M billed on Basic, so nothing new; 0.5M more output → 0.5M output overage, reported.
    stack
        .insert_usage(
            &s.user_id,
            Utc::now() - ChronoDuration::seconds(10),
            &[(15_000_000, 500_000)],
        )
        .await;
    let r = rerun(&stack, &s.user_id, month).await;
    assert_eq!(r["overage_input_tokens"], 1_000_000, "{r}");
    assert_eq!(r["overage_output_tokens"], 500_000);
    assert_eq!(stack.meter_total(&customer, INPUT).await, 1_000_000);
    assert_eq!(stack.meter_total(&customer, OUTPUT).await, 500_000);
    let bill: Value = stack
        .api_get("/v1/billing/usage", &s.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bill["plan"], "pro");
    assert_eq!(bill["included_tokens"], 30_000_000);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stripe_outages_are_retried_and_stripe_refusals_stop_the_run() {
    let stack = billing_stack(true).await;
    let (s, customer, user, sync_url) = a_million_over_basic(&stack, "outage@example.com").await;
    let month = this_month();

    // Stripe is down for two calls: the step is retried and the overage lands once.
    stack
        .control(
            "/faults",
            json!({"path": "/v1/billing/meter_events", "status": 503, "count": 2}),
        )
        .await;
    let res = stack
        .http
        .post(format!("{sync_url}/send"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "Restate accepts the send");
    eventually("the report after the outage", WAIT, || async {
        let m = db::usage::monthly(&stack.db.pool, user, month)
            .await
            .unwrap()?;
        (m.reported_input_tokens == 1_000_000).then_some(())
    })
    .await;
    assert_eq!(stack.meter_total(&customer, INPUT).await, 1_000_000);

    // Stripe refuses: the run stops with Stripe's reason, and nothing is recorded as reported.
    more_input(&stack, &s.user_id, 100_000).await;
    stack
        .control(
            "/faults",
            json!({"path": "/v1/billing/meter_events", "status": 400, "count": 1}),
        )
        .await;
    sync_refused_by_stripe(&stack, &sync_url).await;
    let m = db::usage::monthly(&stack.db.pool, user, month)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.reported_input_tokens, 1_000_000);
    assert_eq!(stack.meter_total(&customer, INPUT).await, 1_000_000);

    // When Stripe accepts again, the next run reports what is owed.
    rerun(&stack, &s.user_id, month).await;
    assert_eq!(stack.meter_total(&customer, INPUT).await, 1_100_000);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn starting_the_scheduler_runs_a_round_and_schedules_the_next_on_a_durable_timer() {
    let stack = billing_stack(true).await;
    let s = stack.register("hourly@example.com").await;
    stack.subscribe_and_pay(&s, "basic").await;
    let customer = stack.customer_of(&s.user_id).await;
    stack
        .insert_usage(&s.user_id, earlier_this_month(), &[(5_000_000, 250_000)])
        .await;
    let r = stack.restate.as_ref().unwrap();
    let res = stack
        .http
        .post(format!("{}/UsageScheduler/global/start/send", r.ingress))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "Restate accepts the send");

    // The first round runs now and reports the overage...
    eventually("the first round's report", WAIT, || async {
        (stack.meter_total(&customer, OUTPUT).await == 250_000).then_some(())
    })
    .await;
    // ...and the next one waits on a durable timer (a minute past the next hour).
    let next = eventually("the next round scheduled", WAIT, || async {
        let rows = r
            .query(
                "SELECT status FROM sys_invocation
                 WHERE target = 'UsageScheduler/global/sync_tick' AND status = 'scheduled'",
            )
            .await;
        (!rows.is_empty()).then_some(rows)
    })
    .await;
    assert_eq!(next.len(), 1, "{next:?}");
    stack.stop().await;
}

/// Stripe takes a meter event but answers after the client gave up, then refuses the retry:
/// the run stops without recording it, though Stripe counted it. The next run sends that event
/// again under its own identifier (Stripe counts it once) and reports only what is new on top
/// of it. Before, it counted the new total from what was recorded, so the first event was
/// billed twice (found by the chaos run: a user metered 38 million input tokens too many).
#[tokio::test(flavor = "multi_thread")]
async fn an_event_stripe_took_before_refusing_the_retry_is_billed_once() {
    let stack = billing_stack(true).await;
    let (s, customer, user, sync_url) =
        a_million_over_basic(&stack, "took-then-refused@example.com").await;
    let month = this_month();

    // The rules are used in turn: the first call is taken and answered long after the step's
    // 1.5 s timeout; the retry is refused, which ends the run.
    for rule in [
        json!({"path": "/v1/billing/meter_events", "delay_ms": 5000, "count": 1}),
        json!({"path": "/v1/billing/meter_events", "status": 400, "count": 1}),
    ] {
        stack.control("/faults", rule).await;
    }
    sync_refused_by_stripe(&stack, &sync_url).await;
    assert_eq!(stack.meter_total(&customer, INPUT).await, 1_000_000);
    assert_eq!(
        recorded_input(&stack, user, month).await,
        0,
        "recorded before the refusal: the test did not test"
    );

    // More usage, then a run that goes through: Stripe's total is the overage, to the token.
    more_input(&stack, &s.user_id, 200_000).await;
    let r = rerun(&stack, &s.user_id, month).await;
    assert_eq!(stack.meter_total(&customer, INPUT).await, 1_200_000, "{r}");
    assert_eq!(r["reported_input_tokens"], 1_200_000, "{r}");
    let reports = db::usage::reports(&stack.db.pool, user, month)
        .await
        .unwrap();
    let deltas: Vec<i64> = reports.iter().map(|r| r.3).collect();
    assert_eq!(deltas, [1_000_000, 200_000], "{reports:?}");

    // And again: nothing more is owed, nothing more is sent.
    let r = rerun(&stack, &s.user_id, month).await;
    assert_eq!(r["sent"].as_array().unwrap().len(), 0, "{r}");
    assert_eq!(stack.meter_total(&customer, INPUT).await, 1_200_000);
    stack.stop().await;
}
