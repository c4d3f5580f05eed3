//! The journaled operations of the long-lived workflows, in order, pinned. Restate replays an
//! invocation's journal against whatever code serves it, and `poindexter dev` and the compose
//! files register the workflows at a fixed address (`force`), so a change to this sequence
//! breaks every invocation in flight at the deploy (a journal mismatch: retried, then paused).
//! Such a change may be right; it must then be deployed beside the old code
//! (docs/operations.md §12). These lists make it a deliberate one: the suite fails until they
//! are updated with it. CloseAccount, which waits out the account's retention, is pinned where
//! its whole run is: `account_closing::closing_ends_access_at_once_bills_once_deprovisions_and_erases_after_retention`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::journal::{assert_pinned, commands};
use common::stack::Stack;
use serde_json::json;
use std::time::Duration;

const PROVISION_IDENTITY: &[&str] = &[
    "Input",
    "Run: mark provisioning",
    "SetState progress = \"provisioning\"",
    "Run: load identity",
    "Run: create workspace user",
    "Run: store credentials",
    "Run: order phone number",
    "Run: configure messaging",
    "Run: mark signal pending",
    "OneWayCall SignalRegistration/run",
    "Run: activate",
    "SetState progress = \"active\"",
    "Output",
];

/// Registered at the first code, one round.
const SIGNAL_REGISTRATION: &[&str] = &[
    "Input",
    "Run: registration settings",
    "SetState code_promise = \"code-0-0\"",
    "SetState status = \"registering (round 1)\"",
    "Run: register with signal-cli (round 1)",
    "SetState status = \"waiting for the SMS code (round 1)\"",
    "GetPromise code-0-0",
    "Sleep",
    "Run: verify code (round 1)",
    "SetState status = \"registered\"",
    "Output",
];

const DEPROVISION_IDENTITY: &[&str] = &[
    "Input",
    "Run: mark deprovisioning",
    "Run: revoke api keys and oauth grants",
    "Run: unregister signal",
    "Run: release phone number",
    "Run: forget phone number",
    "Run: suspend workspace user",
    "Run: retention deadline",
    "Sleep",
    "Run: delete workspace user",
    "Run: mark deleted",
    "Output",
];

#[tokio::test(flavor = "multi_thread")]
async fn the_long_lived_workflows_journal_what_in_flight_invocations_replay() {
    let stack = Stack::start(&[("DEPROVISION_RETENTION_SECS", "1")]).await;
    let (user, identity) = stack
        .provisioned("journal@example.com", &["active"], Duration::from_secs(30))
        .await;
    stack
        .wait_signal(user, "registered", Duration::from_secs(30))
        .await;
    assert_eq!(stack.deprovision(identity.id).await, 202);
    stack
        .wait_status(user, &["deleted"], Duration::from_secs(30))
        .await;
    // Each workflow's last write comes before its journal's output: wait for the output.
    let key = format!("{}-g{}", identity.id, identity.generation);
    let number = identity.phone_number.clone().unwrap();
    for (service, key) in [
        ("ProvisionIdentity", &key),
        ("SignalRegistration", &number),
        ("DeprovisionIdentity", &key),
    ] {
        stack
            .wait_invocation_status(service, key, "completed")
            .await;
    }

    for (service, pinned) in [
        ("ProvisionIdentity", PROVISION_IDENTITY),
        ("SignalRegistration", SIGNAL_REGISTRATION),
        ("DeprovisionIdentity", DEPROVISION_IDENTITY),
    ] {
        assert_pinned(
            service,
            &commands(stack.restate(), service, None).await,
            pinned,
        );
    }
    stack.stop().await;
}

/// A provisioning that fails at its number and rolls back: what its compensations journal
/// (an undo is retried for up to half an hour against a provider that is down, so a rollback
/// too can be in flight at a deploy).
#[tokio::test(flavor = "multi_thread")]
async fn a_provisioning_rolled_back_journals_its_compensations_in_reverse() {
    let stack = Stack::start(&[]).await;
    stack
        .sandbox
        .fault(
            json!({"provider": "telnyx", "route": "/v2/number_orders", "method": "POST",
                      "kind": "status", "status": 400}),
        )
        .await;
    let (_, identity) = stack
        .provisioned("rollback@example.com", &["failed"], Duration::from_secs(30))
        .await;
    let key = format!("{}-g{}", identity.id, identity.generation);
    stack
        .wait_invocation_status("ProvisionIdentity", &key, "completed")
        .await;
    let got = commands(stack.restate(), "ProvisionIdentity", Some(&key)).await;
    let release = format!("Run: compensate: release phone number ordered under {key}");
    let delete = format!(
        "Run: compensate: delete workspace user dex-{}@poindexter.ai",
        identity.short_id
    );
    // The steps as provisioning journals them, up to and including the number's, then undone.
    let through_number = PROVISION_IDENTITY
        .iter()
        .position(|c| *c == "Run: order phone number")
        .unwrap();
    let mut pinned = PROVISION_IDENTITY[..=through_number].to_vec();
    pinned.extend([
        "SetState progress = \"compensating\"",
        &release,
        &delete,
        "Run: mark failed",
        "SetState progress = \"failed\"",
        "Output",
    ]);
    assert_pinned("ProvisionIdentity (rolled back)", &got, &pinned);
    stack.stop().await;
}
