//! The api dies between handing a Stripe event's work to Restate and committing the event id.
//! Simulated in Postgres, not in our code: a deferred constraint trigger, created by the test,
//! makes the commit of the event's first recording fail (a sequence, which no rollback undoes,
//! lets it fail once). Stripe sees a 5xx and redelivers, concurrently and sequentially; the
//! redelivery is accepted and the world changes once: one ProvisionIdentity invocation, one
//! identity, one Workspace user and one number at the sandbox, the event recorded once. (The
//! handler before this file already survived this crash: its hand-over preceded its commit and
//! the workflow key deduplicates the repeat. The test keeps it that way.)
//!
//! And no transaction stays open across a network call: while Stripe answers an invoice
//! event's subscription read slowly, Postgres shows no open writing transaction (this failed
//! before: the read ran inside the transaction that had recorded the event).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod billing_support;
mod common;

use billing_support::{billing_stack, eventually, Stack};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);

/// Makes the commit of the first transaction that records `event_id` fail, after everything
/// the transaction did before its commit (the hand-over to Restate included) has happened.
async fn fail_first_commit_of(stack: &Stack, event_id: &str) {
    for sql in [
        "CREATE SEQUENCE crash_once".to_owned(),
        "CREATE FUNCTION crash_on_commit() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.event_id = TG_ARGV[0] AND nextval('crash_once') = 1 THEN
                 RAISE EXCEPTION 'the api died before committing %', NEW.event_id;
             END IF;
             RETURN NULL;
         END $$"
            .to_owned(),
        format!(
            "CREATE CONSTRAINT TRIGGER crash_on_commit AFTER INSERT ON webhook_events
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
             EXECUTE FUNCTION crash_on_commit('{event_id}')"
        ),
    ] {
        sqlx::query(&sql).execute(&stack.db.pool).await.unwrap();
    }
}

async fn drop_fault(stack: &Stack) {
    for sql in [
        "DROP TRIGGER crash_on_commit ON webhook_events",
        "DROP FUNCTION crash_on_commit()",
    ] {
        sqlx::query(sql).execute(&stack.db.pool).await.unwrap();
    }
}

async fn crashes(stack: &Stack) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT last_value FROM crash_once")
        .fetch_one(&stack.db.pool)
        .await
        .unwrap();
    n
}

async fn recorded(stack: &Stack, event_id: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM webhook_events WHERE provider = 'stripe' AND event_id = $1",
    )
    .bind(event_id)
    .fetch_one(&stack.db.pool)
    .await
    .unwrap();
    n
}

/// (id, target, status) of every ProvisionIdentity invocation Restate holds.
async fn provisioning_runs(stack: &Stack) -> Vec<(String, String, String)> {
    stack
        .restate()
        .query(
            "SELECT id, target, status FROM sys_invocation WHERE target LIKE 'ProvisionIdentity%'",
        )
        .await
        .into_iter()
        .map(|row| {
            let s = |k: &str| row[k].as_str().unwrap_or_default().to_owned();
            (s("id"), s("target"), s("status"))
        })
        .collect()
}

async fn redeliver(stack: &Stack, event_id: &str) -> u16 {
    let r = stack
        .control(&format!("/events/{event_id}/redeliver"), json!({}))
        .await;
    r["status"].as_u64().unwrap() as u16
}

/// Holds deliveries, pays, delivers the checkout event, then makes the first delivery of
/// `crashing` (the event that starts provisioning) fail between hand-over and commit, and
/// redelivers everything.
async fn crash_between_handover_and_commit(crashing: &str, email: &str) {
    let stack = billing_stack(true).await;
    let s = stack.register(email).await;
    stack.control("/webhooks/hold", json!({})).await;
    let sub = stack.subscribe_and_pay(&s, "basic").await;
    let id_of = |e: Value| e["id"].as_str().unwrap().to_owned();
    let checkout = id_of(stack.last_event("checkout.session.completed").await);
    let created = id_of(stack.last_event("customer.subscription.created").await);
    let paid = id_of(stack.last_event("invoice.paid").await);
    let crash = if crashing == "invoice.paid" {
        paid.clone()
    } else {
        created.clone()
    };

    assert_eq!(redeliver(&stack, &checkout).await, 200);
    fail_first_commit_of(&stack, &crash).await;

    // The delivery dies at its commit: Stripe sees a 5xx and nothing is recorded...
    let status = redeliver(&stack, &crash).await;
    assert!((500..600).contains(&status), "{crashing}: {status}");
    assert_eq!(
        crashes(&stack).await,
        1,
        "the commit was the one that failed"
    );
    assert_eq!(recorded(&stack, &crash).await, 0);
    assert_eq!(stack.subscription_row(&s.user_id).await, None);
    // ...but the work had been handed to Restate before the commit.
    let first = eventually("the hand-over before the crash", WAIT, || async {
        let runs = provisioning_runs(&stack).await;
        (!runs.is_empty()).then_some(runs)
    })
    .await;
    assert_eq!(first.len(), 1, "{first:?}");
    drop_fault(&stack).await;

    // Stripe redelivers; the deliveries race each other, then come again one by one.
    let racing = [&crash, &crash, &created, &paid, &paid, &created]
        .into_iter()
        .map(|id| redeliver(&stack, id));
    for status in futures::future::join_all(racing).await {
        assert_eq!(status, 200);
    }
    for id in [&crash, &created, &paid] {
        assert_eq!(redeliver(&stack, id).await, 200);
    }
    for id in [&checkout, &created, &paid] {
        assert_eq!(recorded(&stack, id).await, 1, "{id}");
    }
    assert_eq!(
        stack.subscription_row(&s.user_id).await,
        Some(("basic".into(), "active".into()))
    );

    // The identity becomes active, provisioned by the one invocation started before the crash.
    let user: uuid::Uuid = s.user_id.parse().unwrap();
    let identity = eventually("identity active", WAIT, || async {
        let i = db::identities::find_by_user(&stack.db.pool, user)
            .await
            .unwrap()?;
        (i.status == "active").then_some(i)
    })
    .await;
    assert_eq!(identity.generation, 0, "the first generation");
    let runs = provisioning_runs(&stack).await;
    assert_eq!(runs.len(), 1, "exactly one provisioning: {runs:?}");
    assert_eq!(
        runs[0].0, first[0].0,
        "the invocation started before the crash"
    );
    assert_eq!(
        runs[0].1,
        format!("ProvisionIdentity/{}-g0/run", identity.id)
    );
    let (identities,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM identities WHERE user_id = $1")
            .bind(user)
            .fetch_one(&stack.db.pool)
            .await
            .unwrap();
    assert_eq!(identities, 1);
    let r = stack.sandbox.resources().await;
    let users = r["google"]["users"].as_array().unwrap();
    assert_eq!(users.len(), 1, "one Workspace user: {users:?}");
    let numbers = r["telnyx"]["numbers"].as_array().unwrap();
    assert_eq!(numbers.len(), 1, "one number: {numbers:?}");
    assert_eq!(
        numbers[0]["phone_number"].as_str(),
        identity.phone_number.as_deref(),
        "{numbers:?}"
    );
    let stripe = stack.stripe_resources().await;
    assert_eq!(stripe["subscriptions"][0]["id"], sub.as_str());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_dies_after_handing_over_a_subscription_event_and_before_committing_it() {
    crash_between_handover_and_commit("customer.subscription.created", "crash-sub@example.com")
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_dies_after_handing_over_an_invoice_event_and_before_committing_it() {
    crash_between_handover_and_commit("invoice.paid", "crash-invoice@example.com").await;
}

/// Open transactions of this database that have written something and wait for their client.
async fn open_transactions(stack: &Stack) -> i64 {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND state LIKE 'idle in transaction%'
           AND backend_xid IS NOT NULL",
    )
    .fetch_one(&stack.db.pool)
    .await
    .unwrap();
    n
}

#[tokio::test(flavor = "multi_thread")]
async fn no_transaction_is_open_while_stripe_is_asked() {
    let stack = billing_stack(true).await;
    let s = stack.register("slow-stripe@example.com").await;
    stack.control("/webhooks/hold", json!({})).await;
    stack.subscribe_and_pay(&s, "basic").await;
    let id_of = |e: Value| e["id"].as_str().unwrap().to_owned();
    let checkout = id_of(stack.last_event("checkout.session.completed").await);
    let paid = id_of(stack.last_event("invoice.paid").await);
    assert_eq!(redeliver(&stack, &checkout).await, 200);

    // invoice.paid makes the api read the subscription from Stripe, which answers slowly.
    let slow = stack
        .sandbox
        .fault(
            json!({"provider": "stripe", "route": "/v1/subscriptions/*", "method": "GET",
                      "kind": "slow", "delay_ms": 3000, "count": 1}),
        )
        .await;
    let delivery = redeliver(&stack, &paid);
    let watch = async {
        eventually("the api asking Stripe", WAIT, || async {
            (stack.sandbox.fired(&slow).await == 1).then_some(())
        })
        .await;
        open_transactions(&stack).await
    };
    let (status, open) = tokio::join!(delivery, watch);
    assert_eq!(status, 200);
    assert_eq!(open, 0, "a transaction stayed open during the Stripe call");
    assert_eq!(recorded(&stack, &paid).await, 1);
    assert_eq!(
        stack.subscription_row(&s.user_id).await,
        Some(("basic".into(), "active".into()))
    );
    stack.stop().await;
}
