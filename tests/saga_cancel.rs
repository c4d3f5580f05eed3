//! An operator cancelling a workflow through Restate's admin API
//! (`PATCH /invocations/{id}/cancel`), as docs/operations.md says to:
//! - ProvisionIdentity, at any provider step: rolled back, nothing left at any provider, the
//!   identity `failed` with "cancelled by an operator".
//! - DeprovisionIdentity: cannot be undone, so the cancel changes nothing: it finishes, the
//!   retention wait included, and notes the cancel in the audit log.
//! - SignalRegistration: the current attempt is given up (`failed`, "cancelled by an
//!   operator"), the identity stays active, and an operator retry registers the number.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::sandbox::{next_webhook, start_receiver, Received};
use common::stack::Stack;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;

/// The id of the invocation running `service/key/run`, once Restate knows it.
async fn invocation(stack: &Stack, service: &str, key: &str) -> String {
    let sql = format!(
        "SELECT id FROM sys_invocation WHERE target_service_name = '{service}' \
         AND target_service_key = '{key}' AND target_handler_name = 'run'"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(row) = stack.restate().query(&sql).await.first() {
            return row["id"].as_str().unwrap().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no {service}/{key}/run invocation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Cancels it the way an operator does, through the admin API.
async fn cancel(stack: &Stack, invocation: &str) {
    let res = stack
        .http
        .patch(format!(
            "{}/invocations/{invocation}/cancel",
            stack.restate().admin
        ))
        .send()
        .await
        .unwrap();
    // 202: the cancellation is appended to the journal of a running invocation (Restate
    // answers 200 only for one it could cancel at once, which none of these is).
    assert_eq!(
        res.status(),
        202,
        "cancel {invocation}: {} {}",
        res.status(),
        res.text().await.unwrap_or_default()
    );
}

/// Waits until the fault rule `id` has fired: the workflow is inside that provider call.
async fn wait_fired(stack: &Stack, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while stack.sandbox.fired(id).await == 0 {
        assert!(Instant::now() < deadline, "the held call never came");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How many `action` audit entries contain `detail`, once there is one (the saga writes it just
/// after the terminal status the tests wait for).
async fn audit_count(stack: &Stack, action: &str, detail: serde_json::Value) -> usize {
    stack.wait_audit(action, detail).await.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_provisioning_at_any_step_rolls_it_back() {
    let stack = Stack::start(&[]).await;
    // Each step held by a provider that keeps answering 503 (the step retries with backoff,
    // and the provider does nothing, so no late side effect) while the operator cancels.
    let cases = [
        (
            "google",
            "/admin/directory/v1/users",
            "POST",
            "workspace_user",
        ),
        ("telnyx", "/v2/number_orders", "POST", "phone_number"),
        (
            "telnyx",
            "/v2/phone_numbers/*/messaging",
            "PATCH",
            "messaging",
        ),
    ];
    for (i, (provider, route, method, step)) in cases.iter().enumerate() {
        stack.sandbox.clear_faults().await;
        let held = stack
            .sandbox
            .fault(json!({"provider": provider, "route": route, "method": method, "kind": "status", "status": 503}))
            .await;
        let user = stack.user(&format!("cancel{i}@example.com")).await;
        stack.provision(user).await;
        wait_fired(&stack, &held).await;
        let identity = stack.identity(user).await;
        let key = format!("{}-g{}", identity.id, identity.generation);
        let id = invocation(&stack, "ProvisionIdentity", &key).await;
        cancel(&stack, &id).await;

        let identity = stack
            .wait_status(user, &["failed"], Duration::from_secs(60))
            .await;
        assert_eq!(
            identity.failure_reason.as_deref(),
            Some("cancelled by an operator"),
            "{step}"
        );
        let (users, numbers) = stack.leftovers(user).await;
        assert!(users.is_empty(), "{step}: user left: {users:?}");
        assert!(numbers.is_empty(), "{step}: number left: {numbers:?}");
        assert!(identity.email.is_none() && identity.phone_number.is_none());
        assert_eq!(
            audit_count(
                &stack,
                "identity.failed",
                json!({"identity_id": identity.id, "reason": "cancelled by an operator"})
            )
            .await,
            1,
            "{step}"
        );
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_deprovisioning_changes_nothing_it_still_finishes_after_the_retention() {
    let retention = Duration::from_secs(6);
    let stack = Stack::start(&[("DEPROVISION_RETENTION_SECS", "6")]).await;
    let (user, identity) = stack
        .provisioned(
            "cancel-bye@example.com",
            &["active"],
            Duration::from_secs(30),
        )
        .await;
    let email = identity.email.clone().unwrap();

    let started = Instant::now();
    assert_eq!(stack.deprovision(identity.id).await, 202);
    // Once the Workspace user is suspended the workflow waits out the retention: cancel it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = stack.sandbox.resources().await;
        let suspended = r["google"]["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["email"] == email.as_str() && u["suspended"] == true);
        if suspended {
            break;
        }
        assert!(Instant::now() < deadline, "the user was never suspended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let key = format!("{}-g{}", identity.id, identity.generation);
    let id = invocation(&stack, "DeprovisionIdentity", &key).await;
    cancel(&stack, &id).await;

    let deleted = stack
        .wait_status(user, &["deleted"], Duration::from_secs(60))
        .await;
    // The cancel did not cut the retention short.
    assert!(
        started.elapsed() >= retention,
        "deleted after {:?}",
        started.elapsed()
    );
    assert!(deleted.failure_reason.is_none(), "{deleted:?}");
    let (users, numbers) = stack.leftovers(user).await;
    assert!(users.is_empty(), "{users:?}");
    assert!(numbers.is_empty(), "{numbers:?}");
    assert_eq!(
        audit_count(
            &stack,
            "identity.deleted",
            json!({"identity_id": identity.id, "cancel_ignored": true})
        )
        .await,
        1
    );
    stack.stop().await;
}

/// The next relayed SMS webhook that carries a Signal code.
async fn next_code_sms(rx: &mut UnboundedReceiver<Received>) -> Received {
    loop {
        let hook = next_webhook(rx, 20).await;
        let body = String::from_utf8_lossy(&hook.body);
        if body.contains("message.received") && body.contains("Signal") {
            return hook;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_signal_registration_fails_it_until_an_operator_retries() {
    // The relay holds the code SMS, so the registration waits for it when it is cancelled.
    let (relay, mut rx) = start_receiver().await;
    let stack =
        Stack::start_with_webhooks(&[("SIGNAL_CODE_TIMEOUT_SECS", "60")], Some(&relay)).await;
    let (user, identity) = stack
        .provisioned(
            "cancel-signal@example.com",
            &["active"],
            Duration::from_secs(30),
        )
        .await;
    let number = identity.phone_number.clone().unwrap();
    let path = format!("SignalRegistration/{}/status", number.replace('+', "%2B"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = stack.restate().call(&path).await;
        if status
            .as_str()
            .unwrap_or_default()
            .starts_with("waiting for the SMS code")
        {
            break;
        }
        assert!(Instant::now() < deadline, "registration still {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _held = next_code_sms(&mut rx).await;

    let id = invocation(&stack, "SignalRegistration", &number).await;
    cancel(&stack, &id).await;
    let failed = stack
        .wait_signal(user, "failed", Duration::from_secs(30))
        .await;
    assert_eq!(
        failed.signal_failure_reason.as_deref(),
        Some("cancelled by an operator")
    );
    assert_eq!(failed.status, "active", "the identity is not rolled back");
    assert_eq!(
        stack.restate().call(&path).await,
        "failed: cancelled by an operator"
    );

    // Failed like any other failure: an operator retry registers the number.
    while rx.try_recv().is_ok() {}
    let res = stack
        .admin_post(
            &format!("/v1/admin/identities/{}/retry", identity.id),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    let hook = next_code_sms(&mut rx).await;
    assert_eq!(stack.forward(&hook, "/webhooks/telnyx").await, 200);
    let registered = stack
        .wait_signal(user, "registered", Duration::from_secs(30))
        .await;
    assert_eq!(registered.status, "active");
    stack.stop().await;
}
