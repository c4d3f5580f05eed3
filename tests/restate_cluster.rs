//! The stack on a three-node Restate cluster (test-owned, free ports), with nodes killed with
//! `kill -9` mid-work: provisionings waiting on their Signal codes survive the loss of the node
//! leading the most partitions, a usage sync cut between reporting to Stripe and recording
//! bills to the token, and with two of three nodes down the api answers 503 with Retry-After
//! and loses nothing once they are back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod billing_support;
mod common;

use billing_support::eventually;
use chrono::Utc;
use common::cluster::{api_replica, Cluster};
use common::sandbox::{next_webhook, start_receiver, Received};
use common::stack::Stack;
use domain::Month;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;

const WAIT: Duration = Duration::from_secs(60);

/// Signal code SMS webhooks the relay caught, by the number they were texted to, until `n`
/// distinct numbers have one.
async fn code_hooks(rx: &mut UnboundedReceiver<Received>, n: usize) -> HashMap<String, Received> {
    let mut hooks = HashMap::new();
    while hooks.len() < n {
        let hook = next_webhook(rx, 60).await;
        let v: Value = serde_json::from_slice(&hook.body).unwrap_or(Value::Null);
        let payload = &v["data"]["payload"];
        if v["data"]["event_type"] == "message.received"
            && payload["text"]
                .as_str()
                .unwrap_or_default()
                .contains("Signal")
        {
            let to = payload["to"][0]["phone_number"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            hooks.entry(to).or_insert(hook);
        }
    }
    hooks
}

/// Hands a caught webhook to the api as Telnyx would: redelivered while the api answers
/// non-2xx (Telnyx retries), within `limit`. Returns how many deliveries it took.
async fn deliver(stack: &Stack, hook: &Received, limit: Duration) -> u32 {
    deliver_to(stack, &stack.api, hook, limit).await
}

/// `deliver` to the api replica at `api`.
async fn deliver_to(stack: &Stack, api: &str, hook: &Received, limit: Duration) -> u32 {
    let deadline = Instant::now() + limit;
    let mut tries = 0;
    loop {
        tries += 1;
        let mut req = stack
            .http
            .post(format!("{api}/webhooks/telnyx"))
            .body(hook.body.clone());
        for (name, value) in hook.headers.iter() {
            if name.as_str().starts_with("telnyx-") || name == "content-type" {
                req = req.header(name, value);
            }
        }
        let status = req.send().await.unwrap().status();
        if status.is_success() {
            return tries;
        }
        assert!(Instant::now() < deadline, "webhook refused: {status}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Exactly one Workspace user and one number at the sandbox, and a registered Signal account.
async fn assert_provisioned_once(stack: &Stack, user: uuid::Uuid) {
    let identity = stack.wait_status(user, &["active"], WAIT).await;
    let identity_signal = stack.wait_signal(user, "registered", WAIT).await;
    assert_eq!(identity.id, identity_signal.id);
    let (users, numbers) = stack.leftovers(user).await;
    assert_eq!(users.len(), 1, "Workspace users of {user}: {users:?}");
    assert_eq!(numbers.len(), 1, "numbers of {user}: {numbers:?}");
    let number = identity_signal.phone_number.expect("a number");
    let accounts = stack.sandbox.signal_accounts(&number).await;
    assert!(
        accounts.iter().any(|a| a["registered"] == true),
        "{number}: {accounts:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn provisionings_waiting_on_codes_survive_the_busiest_leader_being_killed() {
    let mut cluster = Cluster::start().await;
    let (relay, mut rx) = start_receiver().await;
    let stack = cluster
        .stack(&[("SIGNAL_CODE_TIMEOUT_SECS", "120")], Some(&relay))
        .await;

    let mut users = vec![];
    for i in 0..8 {
        users.push(stack.user(&format!("node-kill-{i}@example.com")).await);
    }
    futures::future::join_all(users.iter().map(|u| stack.provision(*u))).await;
    // Every registration has had its code texted: each now waits on its code's promise.
    let hooks = code_hooks(&mut rx, 8).await;
    for u in &users {
        let i = stack.identity(*u).await;
        assert_eq!(
            i.signal_status, "pending",
            "{u}: {:?}",
            i.signal_failure_reason
        );
    }

    let (victim, leads) = cluster.busiest_leader().await;
    eprintln!(
        "killing {} (leaders: {leads:?})",
        cluster.nodes[victim].name
    );
    cluster.kill9(victim);
    let killed_at = Instant::now();

    cluster.wait_led_by_live_nodes(WAIT).await;
    eprintln!(
        "new leaders for every partition {:?} after the kill",
        killed_at.elapsed()
    );

    // The codes come in through two api replicas (webhooks land on either), which now reach
    // Restate only through the other nodes: each replica's first call to the dead node fails
    // over to a live one, so every code is taken on its first delivery.
    let (replica, replica_task) = api_replica(&stack).await;
    let mut deliveries = vec![];
    for (i, hook) in hooks.values().enumerate() {
        let api = if i % 2 == 0 { &stack.api } else { &replica };
        deliveries.push(deliver_to(&stack, api, hook, WAIT).await);
    }
    assert!(
        deliveries.iter().all(|&d| d == 1),
        "codes refused by the api: deliveries per code {deliveries:?}"
    );
    for u in &users {
        assert_provisioned_once(&stack, *u).await;
    }
    eprintln!(
        "8 identities active {:?} after the kill; deliveries per code {deliveries:?}",
        killed_at.elapsed()
    );

    // The killed node, restarted with its data and name, takes partitions again.
    cluster.restart(victim).await;
    cluster.wait_rejoined(victim, WAIT).await;
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM identities WHERE status = 'active'")
        .fetch_one(&stack.db.pool)
        .await
        .unwrap();
    assert_eq!(n, 8);
    replica_task.abort();
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_usage_sync_cut_by_its_leaders_death_bills_to_the_token() {
    const INPUT: &str = "poindexter_overage_input_tokens";
    let mut cluster = Cluster::start().await;
    let stack = cluster.stack(&[], None).await;
    let s = stack.register("cluster-sync@example.com").await;
    stack.subscribe_and_pay(&s, "basic").await;
    let customer = stack.customer_of(&s.user_id).await;
    let user = uuid::Uuid::parse_str(&s.user_id).unwrap();
    let month = Month::containing(Utc::now().date_naive());
    let start = db::usage::bounds(month).0;
    let earlier = (Utc::now() - chrono::Duration::minutes(30)).max(start);
    // Basic includes 5M tokens: 6M input is 1M over.
    stack
        .insert_usage(&s.user_id, earlier, &[(6_000_000, 0)])
        .await;

    // Stripe takes the meter event but answers late, every time, until the node running the
    // invocation is dead: the report happened and nothing can record it before the kill. (One
    // held answer was not enough: the Stripe client gives up after 20 s, or a leadership move
    // re-runs the step, and the retry got its answer at once and recorded before the kill.)
    stack
        .control(
            "/faults",
            json!({"path": "/v1/billing/meter_events", "delay_ms": 120000}),
        )
        .await;
    let key = format!("{}:{month}", s.user_id);
    let res = stack
        .http
        .post(format!(
            "{}/UsageSync/{key}/sync/send",
            cluster.nodes[0].ingress
        ))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let sent_at = Instant::now();
    // The send is acknowledged once logged; its partition shows it once it has applied it.
    let partition_key = eventually("the sync shows in sys_invocation_status", WAIT, || async {
        let rows = cluster
            .query(&format!(
                "SELECT partition_key FROM sys_invocation_status \
                 WHERE target_service_name = 'UsageSync' AND target_service_key = '{key}'"
            ))
            .await;
        rows.first().and_then(|r| r["partition_key"].as_u64())
    })
    .await;
    eventually("meter event reaches Stripe", WAIT, || async {
        (stack.meter_total(&customer, INPUT).await == 1_000_000).then_some(())
    })
    .await;
    // The leader as it is now, settled, right before the kill: the node running the run.
    let victim = cluster.leader_of_key(partition_key).await;
    cluster.kill9(victim);
    eprintln!(
        "killed {}, leader of the sync's partition, {:?} after the sync was sent",
        cluster.nodes[victim].name,
        sent_at.elapsed()
    );
    let m = db::usage::monthly(&stack.db.pool, user, month)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        m.reported_input_tokens, 0,
        "recorded before the kill: the test did not test"
    );
    // Stripe answers again (the attempt cut by the kill still waits out its delay, answered
    // to a workflows handler no node listens to any more).
    let res = stack
        .http
        .delete(format!("{}/stripe/_sandbox/faults", stack.sandbox.url))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());

    // Another node takes the partition over and finishes the run; Stripe counts it once.
    eventually("the interrupted run records its report", WAIT, || async {
        let m = db::usage::monthly(&stack.db.pool, user, month)
            .await
            .unwrap()?;
        (m.reported_input_tokens == 1_000_000).then_some(())
    })
    .await;
    assert_eq!(stack.meter_total(&customer, INPUT).await, 1_000_000);

    // More usage, a re-run through the api (which skips the dead node): only the rest is sent.
    stack
        .insert_usage(
            &s.user_id,
            Utc::now() - chrono::Duration::seconds(5),
            &[(200_000, 0)],
        )
        .await;
    let res = stack
        .admin_post(
            &format!("/v1/admin/usage-sync/{}/{month}", s.user_id),
            json!({}),
        )
        .await;
    assert_eq!(
        res.status(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
    assert_eq!(stack.meter_total(&customer, INPUT).await, 1_200_000);
    let reports = db::usage::reports(&stack.db.pool, user, month)
        .await
        .unwrap();
    assert_eq!(
        reports.iter().map(|r| r.3).sum::<i64>(),
        1_200_000,
        "{reports:?}"
    );
    cluster.restart(victim).await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_down_the_api_answers_503_and_nothing_is_lost_when_they_return() {
    let mut cluster = Cluster::start().await;
    let (relay, mut rx) = start_receiver().await;
    let stack = cluster
        .stack(&[("SIGNAL_CODE_TIMEOUT_SECS", "120")], Some(&relay))
        .await;
    // One provisioning in flight, its registration waiting on its code, when the nodes die.
    let early = stack.user("in-flight@example.com").await;
    stack.provision(early).await;
    let hooks = code_hooks(&mut rx, 1).await;
    let hook = hooks.values().next().unwrap();
    let late = stack.user("during-outage@example.com").await;

    cluster.kill9(1);
    cluster.kill9(2);

    // The code's hand-over and a new provisioning are refused quickly, with Retry-After.
    let started = Instant::now();
    let status = stack.forward(hook, "/webhooks/telnyx").await;
    assert_eq!(
        status, 503,
        "a code handed over with two of three nodes down"
    );
    let res = stack
        .admin_post(
            &format!("/v1/admin/provision/{late}"),
            json!({"plan": "basic"}),
        )
        .await;
    let took = started.elapsed();
    assert_eq!(
        res.status(),
        503,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0);
    assert!(took < Duration::from_secs(20), "answered after {took:?}");
    eprintln!("both refusals within {took:?}");

    cluster.restart(1).await;
    cluster.restart(2).await;
    // The senders retry, as told: the code (Telnyx redelivers) and the provisioning.
    deliver(&stack, hook, WAIT).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let res = stack
            .admin_post(
                &format!("/v1/admin/provision/{late}"),
                json!({"plan": "basic"}),
            )
            .await;
        if res.status() == 202 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "provisioning still refused: {}",
            res.status()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let early_number = stack.identity(early).await.phone_number.unwrap();
    let late_hook = loop {
        let hooks = code_hooks(&mut rx, 1).await;
        if let Some((to, hook)) = hooks.into_iter().next() {
            if to != early_number {
                break hook;
            }
        }
    };
    deliver(&stack, &late_hook, WAIT).await;
    assert_provisioned_once(&stack, early).await;
    assert_provisioned_once(&stack, late).await;
    stack.stop().await;
}
