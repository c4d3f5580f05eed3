//! ProvisionIdentity and DeprovisionIdentity as sagas on a real restate-server, against the
//! sandbox providers, with provider faults injected and the workflows process really killed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::stack::Stack;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn a_user_becomes_an_active_identity_with_email_phone_and_a_key() {
    let stack = Stack::start(&[]).await;
    let user = stack.user("happy@example.com").await;
    let first = stack.provision(user).await;
    // Started twice: the same identity and workflow, provisioned once.
    let second = stack.provision(user).await;
    assert_eq!(first["workflow_id"], second["workflow_id"]);

    let identity = stack
        .wait_status(user, &["active"], Duration::from_secs(20))
        .await;
    let email = identity.email.clone().unwrap();
    assert!(
        email.starts_with("dex-") && email.ends_with("@poindexter.ai"),
        "{email}"
    );
    let phone = identity.phone_number.clone().unwrap();
    assert!(phone.starts_with('+'));

    let (users, numbers) = stack.leftovers(user).await;
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0]["email"], email.as_str());
    assert_eq!(numbers.len(), 1, "{numbers:?}");
    assert_eq!(numbers[0]["phone_number"], phone.as_str());

    // Credentials are stored encrypted; no API key was issued (Dex connects with OAuth).
    let sealed = db::identities::workspace_password(&stack.db.pool, identity.id)
        .await
        .unwrap()
        .unwrap();
    assert!(sealed.len() > 12);
    assert_eq!(
        db::api_keys::list_active(&stack.db.pool, user)
            .await
            .unwrap()
            .len(),
        0
    );
    let steps = db::identities::steps(&stack.db.pool, identity.id)
        .await
        .unwrap();
    assert!(steps.iter().all(|s| s.status == "done"), "{steps:?}");
    assert_eq!(steps.len(), 6);
    // Each step's times: it started, then finished, before the next one started; the phone
    // number's row names the number.
    for s in &steps {
        let (started, finished) = (s.started_at.unwrap(), s.finished_at.unwrap());
        assert!(started <= finished, "{s:?}");
    }
    for pair in steps.windows(2) {
        assert!(
            pair[0].finished_at.unwrap() <= pair[1].started_at.unwrap(),
            "{pair:?}"
        );
    }
    assert_eq!(steps[2].detail.as_deref(), Some(phone.as_str()));
    stack.stop().await;
}

/// Each provider step failing terminally in turn: compensated, nothing left, `failed` + reason.
#[tokio::test(flavor = "multi_thread")]
async fn a_terminal_failure_at_any_step_leaves_nothing_behind() {
    let stack = Stack::start(&[]).await;
    let cases = [
        ("google", "/admin/directory/v1/users", "POST", "workspace"),
        ("telnyx", "/v2/number_orders", "POST", "number"),
        (
            "telnyx",
            "/v2/phone_numbers/*/messaging",
            "PATCH",
            "messaging",
        ),
    ];
    for (i, (provider, route, method, what)) in cases.iter().enumerate() {
        stack.sandbox.clear_faults().await;
        stack
            .sandbox
            .fault(json!({"provider": provider, "route": route, "method": method, "kind": "status", "status": 400}))
            .await;
        let user = stack.user(&format!("fail{i}@example.com")).await;
        stack.provision(user).await;
        let identity = stack
            .wait_status(user, &["failed"], Duration::from_secs(30))
            .await;
        let reason = identity.failure_reason.clone().unwrap_or_default();
        assert!(!reason.is_empty(), "{what}: no failure reason");
        let (users, numbers) = stack.leftovers(user).await;
        assert!(
            users.is_empty(),
            "{what}: workspace user left behind: {users:?}"
        );
        assert!(
            numbers.is_empty(),
            "{what}: number left behind: {numbers:?}"
        );
        assert!(identity.email.is_none() && identity.phone_number.is_none());
        // What the status page lists: every step before the failed one done, that one failed
        // with the provider's reason, none after it started.
        let steps = db::identities::steps(&stack.db.pool, identity.id)
            .await
            .unwrap();
        let failed_at = steps.iter().position(|s| s.status == "failed");
        let failed_at = failed_at.unwrap_or_else(|| panic!("{what}: no failed step: {steps:?}"));
        assert!(steps[failed_at].detail.is_some(), "{what}: {steps:?}");
        assert!(
            steps[..failed_at].iter().all(|s| s.status == "done"),
            "{what}: {steps:?}"
        );
        assert!(
            steps[failed_at + 1..].iter().all(|s| s.status == "pending"),
            "{what}: {steps:?}"
        );
    }

    // An operator retry after the fault is gone provisions the failed identity.
    stack.sandbox.clear_faults().await;
    let user = db::users::find_by_email(
        &stack.db.pool,
        &domain::Email::parse("fail1@example.com").unwrap(),
    )
    .await
    .unwrap()
    .unwrap()
    .id;
    let failed = stack.identity(user).await;
    let res = stack
        .admin_post(
            &format!("/v1/admin/identities/{}/retry", failed.id),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 202);
    let identity = stack
        .wait_status(user, &["active"], Duration::from_secs(20))
        .await;
    assert_eq!(identity.generation, failed.generation + 1);
    let (users, numbers) = stack.leftovers(user).await;
    assert_eq!((users.len(), numbers.len()), (1, 1));
    // Retrying an active identity whose Signal is registered is refused: nothing failed.
    stack
        .wait_signal(user, "registered", Duration::from_secs(30))
        .await;
    let res = stack
        .admin_post(
            &format!("/v1/admin/identities/{}/retry", identity.id),
            json!({}),
        )
        .await;
    assert_eq!(
        res.status(),
        409,
        "{}",
        res.text().await.unwrap_or_default()
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_faults_and_timeouts_on_every_provider_still_end_active_without_duplicates() {
    let stack = Stack::start(&[]).await;
    for provider in ["google", "telnyx", "signal"] {
        stack
            .sandbox
            .fault(json!({"provider": provider, "route": "*", "kind": "status", "status": 503, "probability": 0.3}))
            .await;
        stack
            .sandbox
            .fault(json!({"provider": provider, "route": "*", "kind": "timeout", "delay_ms": 2000, "probability": 0.1}))
            .await;
    }
    let (user, _) = stack
        .provisioned("flaky@example.com", &["active"], Duration::from_secs(90))
        .await;
    let (users, numbers) = stack.leftovers(user).await;
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(numbers.len(), 1, "{numbers:?}");
    stack.stop().await;
}

/// Postgres refuses the first `active` status (a trigger injects the fault): the activate step
/// is tried again, and since its audit entry, its done row and the status are written together,
/// the audit log says `identity.active` once, not once per attempt.
#[tokio::test(flavor = "multi_thread")]
async fn an_activation_refused_part_way_is_retried_and_audited_once() {
    let stack = Stack::start(&[]).await;
    common::db::refuse_first_status_change(&stack.db.pool, "active").await;
    let (user, identity) = stack
        .provisioned(
            "refused-once@example.com",
            &["active"],
            Duration::from_secs(60),
        )
        .await;

    let tried = common::db::times_tried(&stack.db.pool, "active").await;
    assert_eq!(tried, 2, "refused once, then let through");
    let (audited,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM audit_log WHERE user_id = $1 AND action = 'identity.active'",
    )
    .bind(user)
    .fetch_one(&stack.db.pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);
    let steps = db::identities::steps(&stack.db.pool, identity.id)
        .await
        .unwrap();
    let activate = steps.iter().find(|s| s.step == "activate").unwrap();
    assert_eq!(activate.status, "done", "{activate:?}");
    // Two attempts, each counted once (the refusal did not count a third).
    assert_eq!(activate.attempts, 2, "{activate:?}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_the_workflows_process_or_restarting_restate_mid_saga_creates_nothing_twice() {
    let mut stack = Stack::start(&[]).await;
    // Slow providers so the saga is caught in the middle.
    stack
        .sandbox
        .http
        .put(format!("{}/_sandbox/latency", stack.sandbox.url))
        .json(&json!({"google": 300, "telnyx": 300}))
        .send()
        .await
        .unwrap();

    let user = stack.user("crash@example.com").await;
    stack.provision(user).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let i = stack.identity(user).await;
        let steps = db::identities::steps(&stack.db.pool, i.id).await.unwrap();
        if steps
            .iter()
            .any(|s| s.step == "workspace_user" && s.status != "pending")
        {
            break;
        }
        assert!(Instant::now() < deadline, "saga never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stack.kill_workflows();
    // Restate has seen the crash (the invocation waits to be retried) before the process is
    // back, so the resume below really is a recovery.
    let identity = stack.identity(user).await;
    stack
        .wait_invocation_status(
            "ProvisionIdentity",
            &format!("{}-g{}", identity.id, identity.generation),
            "backing-off",
        )
        .await;
    stack.start_workflows().await;

    // Once the number step has started, restart restate-server itself.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let i = stack.identity(user).await;
        let steps = db::identities::steps(&stack.db.pool, i.id).await.unwrap();
        if i.status == "active"
            || steps
                .iter()
                .any(|s| s.step == "phone_number" && s.status != "pending")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "saga did not resume after the crash"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stack.restate_mut().restart().await;

    let identity = stack
        .wait_status(user, &["active"], Duration::from_secs(60))
        .await;
    // What the status page lists: every step done, whatever records the killed process took
    // with it.
    let steps = db::identities::steps(&stack.db.pool, identity.id)
        .await
        .unwrap();
    assert!(steps.iter().all(|s| s.status == "done"), "{steps:?}");
    let (users, numbers) = stack.leftovers(user).await;
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(numbers.len(), 1, "{numbers:?}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deprovisioning_leaves_nothing_at_any_provider_and_twice_is_harmless() {
    let stack = Stack::start(&[]).await;
    let (user, identity) = stack
        .provisioned("bye@example.com", &["active"], Duration::from_secs(20))
        .await;

    assert_eq!(stack.deprovision(identity.id).await, 202);
    assert_eq!(
        stack.deprovision(identity.id).await,
        202,
        "twice is harmless"
    );

    stack
        .wait_status(user, &["deleted"], Duration::from_secs(30))
        .await;
    let (users, numbers) = stack.leftovers(user).await;
    assert!(users.is_empty(), "{users:?}");
    assert!(numbers.is_empty(), "{numbers:?}");
    let number = identity.phone_number.clone().unwrap();
    let left = stack.sandbox.signal_accounts(&number).await;
    assert!(left.is_empty(), "signal account left: {left:?}");
    assert!(db::api_keys::list_active(&stack.db.pool, user)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(stack.deprovision(identity.id).await, 409);
    stack.stop().await;
}

/// Two attempts of the number step running at once (an old attempt a Restate fail-over left
/// running beside the new one) can each buy a number under the identity's reference. Here the
/// second is bought while the messaging step is held: the identity ends active with the number
/// it recorded, and the other is released (seen in the chaos test: an active identity holding
/// two numbers).
#[tokio::test(flavor = "multi_thread")]
async fn a_second_number_bought_under_the_reference_is_released() {
    let stack = Stack::start(&[]).await;
    stack
        .sandbox
        .fault(json!({"provider": "telnyx", "route": "/v2/phone_numbers/*/messaging", "method": "PATCH", "kind": "status", "status": 503}))
        .await;
    let user = stack.user("twice@example.com").await;
    stack.provision(user).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let identity = loop {
        let identity = stack.identity(user).await;
        let steps = db::identities::steps(&stack.db.pool, identity.id)
            .await
            .unwrap();
        if steps
            .iter()
            .any(|s| s.step == "phone_number" && s.status == "done")
        {
            break identity;
        }
        assert!(Instant::now() < deadline, "no number bought: {steps:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let reference = workflows::contract::identity_key(identity.id, identity.generation);
    let telnyx = stack.sandbox.telnyx();
    let candidates = telnyx
        .search_available_numbers(&Default::default())
        .await
        .unwrap();
    let extra = telnyx
        .create_number_order(&[&candidates[0].phone_number], None, Some(&reference))
        .await
        .unwrap();
    assert_eq!(extra.status, "success");
    assert_eq!(
        telnyx.numbers_by_reference(&reference).await.unwrap().len(),
        2
    );

    stack.sandbox.clear_faults().await;
    let identity = stack
        .wait_status(user, &["active"], Duration::from_secs(60))
        .await;
    let numbers = telnyx.numbers_by_reference(&reference).await.unwrap();
    assert_eq!(numbers.len(), 1, "{numbers:?}");
    assert_eq!(Some(numbers[0].phone_number.clone()), identity.phone_number);
    stack.stop().await;
}

/// A new user's identity, pending, in `db`.
async fn pending_identity(db: &common::db::TestDb, email: &str) -> db::identities::Identity {
    let user = uuid::Uuid::now_v7();
    let email = domain::Email::parse(email).unwrap();
    db::users::insert(&db.pool, user, &email, "x", None)
        .await
        .unwrap();
    db::identities::begin_provisioning(&db.pool, user, "basic")
        .await
        .unwrap()
        .identity
}

/// A step's progress commits without waiting for the disk, and only it: the setting ends with
/// its own transaction, so whatever the same connection writes next (a step's data, the
/// status) waits for the disk as before.
#[tokio::test(flavor = "multi_thread")]
async fn a_progress_row_leaves_its_connection_committing_durably() {
    let db = common::db::TestDb::new().await;
    let id = pending_identity(&db, "progress@example.com").await.id;
    // One connection: the statements below run where the progress row was written.
    let one = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&db.url)
        .await
        .unwrap();
    let show = || async {
        let (setting,): (String,) = sqlx::query_as("SHOW synchronous_commit")
            .fetch_one(&one)
            .await
            .unwrap();
        setting
    };
    let before = show().await;
    let running = row(id, "phone_number", db::status::StepStatus::Running, 1);
    db::identities::record_progress(&one, std::slice::from_ref(&running))
        .await
        .unwrap();
    assert_eq!(show().await, before);
    let done = db::identities::ProgressRow {
        detail: Some("+15550100".into()),
        ..finished(row(id, "phone_number", db::status::StepStatus::Done, 0))
    };
    db::identities::record_progress(&one, &[done])
        .await
        .unwrap();
    assert_eq!(show().await, before);

    let steps = db::identities::steps(&one, id).await.unwrap();
    let step = steps.iter().find(|s| s.step == "phone_number").unwrap();
    assert_eq!(step.status, db::status::StepStatus::Done);
    assert_eq!(step.attempts, 1);
    assert_eq!(step.detail.as_deref(), Some("+15550100"));
    let (started, finished) = (step.started_at.unwrap(), step.finished_at.unwrap());
    assert!(started <= finished, "{step:?}");
    one.close().await;
    db.drop().await;
}

/// A progress record of `step`, stamped now, starting `attempts` attempts.
fn row(
    identity_id: uuid::Uuid,
    step: &'static str,
    status: db::status::StepStatus,
    attempts: i32,
) -> db::identities::ProgressRow {
    db::identities::ProgressRow {
        identity_id,
        step,
        position: 2,
        status,
        detail: None,
        attempts,
        started_at: Some(chrono::Utc::now()),
        finished_at: None,
    }
}

/// `row`, finished now (after it started).
fn finished(row: db::identities::ProgressRow) -> db::identities::ProgressRow {
    db::identities::ProgressRow {
        finished_at: Some(chrono::Utc::now()),
        ..row
    }
}

/// Records written together (the progress writer batches what queued while it wrote) leave
/// each step as writing them one after the other would: the first start, every attempt
/// counted, the last status, detail and finish; other steps and identities untouched by each
/// other's records.
#[tokio::test(flavor = "multi_thread")]
async fn progress_records_written_together_leave_what_writing_them_in_turn_leaves() {
    use db::status::StepStatus::{Done, Failed, Running};
    let db = common::db::TestDb::new().await;
    let a = pending_identity(&db, "batch-a@example.com").await.id;
    let b = pending_identity(&db, "batch-b@example.com").await.id;
    let first = row(a, "phone_number", Running, 1);
    let retried = db::identities::ProgressRow {
        detail: Some("carrier busy".into()),
        ..row(a, "phone_number", Running, 0)
    };
    let again = row(a, "phone_number", Running, 1);
    let done = db::identities::ProgressRow {
        detail: Some("+15550100".into()),
        ..finished(row(a, "phone_number", Done, 0))
    };
    let other_step = row(a, "workspace_user", Running, 1);
    let failed = db::identities::ProgressRow {
        detail: Some("refused".into()),
        ..finished(row(b, "phone_number", Failed, 0))
    };
    let batch = [
        first.clone(),
        other_step,
        retried,
        row(b, "phone_number", Running, 1),
        again,
        done.clone(),
        failed.clone(),
    ];
    db::identities::record_progress(&db.pool, &batch)
        .await
        .unwrap();

    let step = |id, name: &'static str| {
        let pool = db.pool.clone();
        async move {
            db::identities::steps(&pool, id)
                .await
                .unwrap()
                .into_iter()
                .find(|s| s.step == name)
                .unwrap()
        }
    };
    let number = step(a, "phone_number").await;
    assert_eq!(number.status, Done);
    assert_eq!(number.attempts, 2, "two attempts started");
    assert_eq!(number.detail.as_deref(), Some("+15550100"));
    let micros = |t: chrono::DateTime<chrono::Utc>| t.timestamp_micros();
    assert_eq!(number.started_at.map(micros), first.started_at.map(micros));
    assert_eq!(number.finished_at.map(micros), done.finished_at.map(micros));
    assert_eq!(step(a, "workspace_user").await.status, Running);
    let theirs = step(b, "phone_number").await;
    assert_eq!((theirs.status, theirs.attempts), (Failed, 1));
    assert_eq!(theirs.detail.as_deref(), Some("refused"));
    db.drop().await;
}

/// What the saga relies on before it writes `active` or `failed`: once `flush` returns, every
/// record queued before it is in the table, and a record Postgres refuses (its identity deleted
/// meanwhile) does not cost the records written with it.
#[tokio::test(flavor = "multi_thread")]
async fn a_flushed_progress_writer_has_written_every_record_queued_before() {
    use db::status::StepStatus::{Done, Running};
    let db = common::db::TestDb::new().await;
    let id = pending_identity(&db, "flush@example.com").await.id;
    let writer = workflows::ProgressWriter::new(db.pool.clone());
    let gone = uuid::Uuid::now_v7();
    for step in workflows::Step::ALL {
        let position = step as i32;
        writer.record(id, step.id(), position, Running, None, true);
        writer.record(gone, step.id(), position, Running, None, true);
        writer.record(id, step.id(), position, Done, Some(step.id().into()), false);
    }
    writer.flush().await;

    let steps = db::identities::steps(&db.pool, id).await.unwrap();
    assert_eq!(steps.len(), workflows::Step::ALL.len());
    for s in &steps {
        assert_eq!((s.status, s.attempts), (Done, 1), "{s:?}");
        assert_eq!(s.detail.as_deref(), Some(s.step.as_str()));
        assert!(s.started_at.unwrap() <= s.finished_at.unwrap(), "{s:?}");
    }
    db.drop().await;
}

/// A provisioning's steps as its workflows process left them when it stopped during the
/// credentials step: the Workspace user done, the credentials shown running, the rest pending.
/// The identity, and the two records written.
async fn stopped_at_credentials(
    db: &common::db::TestDb,
    email: &str,
) -> (
    uuid::Uuid,
    db::identities::ProgressRow,
    db::identities::ProgressRow,
) {
    use db::status::StepStatus::{Done, Running};
    let id = pending_identity(db, email).await.id;
    let names = workflows::Step::ALL.map(workflows::Step::id);
    db::identities::mark_provisioning(&db.pool, id, &names)
        .await
        .unwrap();
    let done = finished(row(id, "workspace_user", Done, 1));
    let running = row(id, "credentials", Running, 1);
    db::identities::record_progress(&db.pool, &[done.clone(), running.clone()])
        .await
        .unwrap();
    (id, done, running)
}

/// Activation marks every step done, whatever its last record said: a step whose `done`
/// record was lost (its process stopped with it queued) no longer shows as running beside an
/// active identity. A step already done keeps its times.
#[tokio::test(flavor = "multi_thread")]
async fn activation_marks_every_step_done_even_one_whose_record_was_lost() {
    use db::status::StepStatus::{Done, Running};
    let db = common::db::TestDb::new().await;
    let (id, done, lost) = stopped_at_credentials(&db, "finish@example.com").await;
    let activating = row(id, "activate", Running, 1);
    db::identities::record_progress(&db.pool, &[activating])
        .await
        .unwrap();

    let mut tx = db.pool.begin().await.unwrap();
    db::identities::finish_steps(&mut *tx, id).await.unwrap();
    tx.commit().await.unwrap();

    let steps = db::identities::steps(&db.pool, id).await.unwrap();
    assert_eq!(steps.len(), workflows::Step::ALL.len());
    let micros = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.timestamp_micros());
    for s in &steps {
        assert_eq!(s.status, Done, "{s:?}");
        assert!(s.started_at.unwrap() <= s.finished_at.unwrap(), "{s:?}");
        match s.step.as_str() {
            "workspace_user" => {
                assert_eq!(micros(s.finished_at), micros(done.finished_at));
            }
            "credentials" => assert_eq!(micros(s.started_at), micros(lost.started_at)),
            _ => {}
        }
    }
    db.drop().await;
}

/// Marking a provisioning failed shows the step it stopped at as failed, even when that step's
/// own record was lost or never made (a cancel mid-step); done and pending steps stay as they
/// are.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_provisioning_shows_the_step_it_stopped_at_failed() {
    use db::status::StepStatus::{Done, Failed, Pending};
    let db = common::db::TestDb::new().await;
    let (id, _, _) = stopped_at_credentials(&db, "stopped@example.com").await;

    let mut tx = db.pool.begin().await.unwrap();
    db::identities::fail_running_steps(&mut *tx, id, "cancelled by an operator")
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let steps = db::identities::steps(&db.pool, id).await.unwrap();
    let status: Vec<_> = steps.iter().map(|s| s.status).collect();
    assert_eq!(status, [Done, Failed, Pending, Pending, Pending, Pending]);
    assert_eq!(steps[1].detail.as_deref(), Some("cancelled by an operator"));
    assert!(steps[1].finished_at.is_some());
    db.drop().await;
}

/// A provisioning whose identity is gone by the time it runs fails with that reason and buys
/// nothing from any provider.
#[tokio::test(flavor = "multi_thread")]
async fn a_provisioning_for_an_identity_that_is_gone_fails_and_creates_nothing() {
    let stack = Stack::start(&[]).await;
    let (identity, user) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let res = stack
        .http
        .post(format!(
            "{}/ProvisionIdentity/{identity}-g0/run",
            stack.restate().ingress
        ))
        .json(&json!({"identity_id": identity, "user_id": user, "plan": "basic"}))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let body = res.text().await.unwrap();
    assert!(!status.is_success(), "{status}: {body}");
    assert!(body.contains("identity does not exist"), "{status}: {body}");
    let resources = stack.sandbox.resources().await;
    assert_eq!(resources["google"]["users"], json!([]), "{resources}");
    assert_eq!(resources["telnyx"]["numbers"], json!([]), "{resources}");
    stack.stop().await;
}
