//! Undoing never stops half-way: a provider that keeps refusing a compensation (or a
//! deprovisioning step) cannot strand an identity. What could not be undone is named in the
//! failure reason and the audit log, the rest is undone, and the identity ends terminal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::stack::Stack;
use serde_json::json;
use std::time::Duration;

/// The audit entries `action` holds for `identity`, oldest first.
async fn audit(stack: &Stack, action: &str, identity: uuid::Uuid) -> Vec<serde_json::Value> {
    let rows: Vec<(serde_json::Value,)> = sqlx::query_as(
        "SELECT detail FROM audit_log WHERE action = $1 AND detail @> $2 ORDER BY id",
    )
    .bind(action)
    .bind(json!({"identity_id": identity}))
    .fetch_all(&stack.db.pool)
    .await
    .unwrap();
    rows.into_iter().map(|(d,)| d).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workspace_user_that_cannot_be_deleted_still_ends_the_rollback_failed() {
    let stack = Stack::start(&[]).await;
    // The number order is refused (terminal: the saga compensates), and Google refuses every
    // deletion of the Workspace user it created (403, for good).
    stack
        .sandbox
        .fault(json!({"provider": "telnyx", "route": "/v2/number_orders", "method": "POST", "kind": "status", "status": 422}))
        .await;
    let refusal = stack
        .sandbox
        .fault(json!({"provider": "google", "route": "/admin/directory/v1/users/*", "method": "DELETE", "kind": "status", "status": 403}))
        .await;
    // And the first attempt to mark the identity failed is refused after the audit entry for
    // what was left behind is written: its retry must not write that entry twice.
    common::db::refuse_first_status_change(&stack.db.pool, "failed").await;
    let (user, identity) = stack
        .provisioned("stuck@example.com", &["failed"], Duration::from_secs(120))
        .await;
    let reason = identity.failure_reason.clone().unwrap_or_default();
    assert!(
        reason.contains("could not undo delete workspace user dex-"),
        "reason does not name what was left: {reason}"
    );
    assert!(
        reason.contains("403") || reason.contains("Forbidden"),
        "{reason}"
    );
    // The refusal was tried more than once before it was given up.
    assert!(stack.sandbox.fired(&refusal).await >= 2);

    let tried = common::db::times_tried(&stack.db.pool, "failed").await;
    assert_eq!(tried, 2, "refused once, then let through");
    // The rest was undone: the number is released; only the refused user is left, and the
    // audit log says so, once.
    let (users, numbers) = stack.leftovers(user).await;
    assert!(numbers.is_empty(), "number left behind: {numbers:?}");
    assert_eq!(users.len(), 1, "{users:?}");
    let left = audit(&stack, "identity.left_behind", identity.id).await;
    assert_eq!(left.len(), 1, "{left:?}");
    let what = left[0]["what"].as_str().unwrap();
    assert!(what.contains(users[0]["email"].as_str().unwrap()), "{what}");
    let failed = stack
        .wait_audit("identity.failed", json!({"identity_id": identity.id}))
        .await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["left_behind"].as_array().unwrap().len(), 1);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_number_that_cannot_be_released_still_ends_deprovisioning_deleted() {
    let stack = Stack::start(&[]).await;
    let (user, identity) = stack
        .provisioned("leftover@example.com", &["active"], Duration::from_secs(30))
        .await;
    let phone = identity.phone_number.clone().unwrap();

    let refusal = stack
        .sandbox
        .fault(json!({"provider": "telnyx", "route": "/v2/phone_numbers/*", "method": "DELETE", "kind": "status", "status": 403}))
        .await;
    // And the first attempt to mark it deleted is refused after the audit entry for what was
    // left behind is written: its retry must not write that entry twice.
    common::db::refuse_first_status_change(&stack.db.pool, "deleted").await;
    assert_eq!(stack.deprovision(identity.id).await, 202);
    let deleted = stack
        .wait_status(user, &["deleted"], Duration::from_secs(120))
        .await;
    assert!(stack.sandbox.fired(&refusal).await >= 2);
    let tried = common::db::times_tried(&stack.db.pool, "deleted").await;
    assert_eq!(tried, 2, "refused once, then let through");

    // Everything else is gone; the number is still at Telnyx, named in the reason and the
    // audit log, and the identity no longer holds it.
    let reason = deleted.failure_reason.clone().unwrap_or_default();
    assert!(
        reason.contains("could not release the phone number") && reason.contains(&phone),
        "{reason}"
    );
    let (users, numbers) = stack.leftovers(user).await;
    assert!(users.is_empty(), "{users:?}");
    assert_eq!(numbers.len(), 1, "{numbers:?}");
    assert!(deleted.phone_number.is_none() && deleted.email.is_none());
    assert!(stack.sandbox.signal_accounts(&phone).await.is_empty());
    let left = audit(&stack, "identity.left_behind", identity.id).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0]["what"].as_str().unwrap().contains(&phone));
    let done = stack
        .wait_audit("identity.deleted", json!({"identity_id": identity.id}))
        .await;
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0]["left_behind"].as_array().unwrap().len(), 1);
    stack.stop().await;
}
