//! The journaled operations of the long-lived workflows, in order, pinned. Restate replays an
//! invocation's journal against whatever code serves it, and `poindexter dev` and the compose
//! files register the workflows at a fixed address (`force`), so a change to this sequence
//! breaks every invocation in flight at the deploy (a journal mismatch: retried, then paused).
//! Such a change may be right; it must then be deployed beside the old code
//! (docs/operations.md §12). This test makes it a deliberate one: it fails until the list
//! below is updated with it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::stack::Stack;
use serde_json::Value;
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

/// The commands of `service`'s `run` journal (notifications left out: where they fall depends
/// on timing, not on the code), each with what a replay compares: a step's name, a state key
/// and the value written (text), a promise's key, a call's target.
async fn commands(stack: &Stack, service: &str) -> Vec<String> {
    let rows = stack
        .restate()
        .query(&format!(
            "SELECT j.index, j.entry_json FROM sys_journal j
             JOIN sys_invocation i ON i.id = j.id
             WHERE i.target_service_name = '{service}' AND i.target_handler_name = 'run'
             ORDER BY j.index"
        ))
        .await;
    rows.iter()
        .filter_map(|r| {
            let entry: Value = serde_json::from_str(r["entry_json"].as_str()?).ok()?;
            let (kind, fields) = entry["Command"].as_object()?.iter().next()?;
            Some(describe(kind, fields))
        })
        .collect()
}

fn describe(kind: &str, fields: &Value) -> String {
    let text = |f: &str| fields[f].as_str().unwrap_or_default().to_owned();
    match kind {
        "Run" => format!("Run: {}", text("name")),
        "SetState" => {
            let bytes: Vec<u8> = fields["value"]
                .as_array()
                .map(|v| {
                    v.iter()
                        .filter_map(|b| b.as_u64())
                        .map(|b| b as u8)
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "SetState {} = {}",
                text("key"),
                String::from_utf8_lossy(&bytes)
            )
        }
        "GetPromise" | "PeekPromise" | "CompletePromise" => format!("{kind} {}", text("key")),
        "OneWayCall" | "Call" => {
            let target = fields["request"]["invocation_target"]
                .as_object()
                .and_then(|t| t.values().next())
                .cloned()
                .unwrap_or_default();
            let (name, handler) = (&target["name"], &target["handler"]);
            format!(
                "{kind} {}/{}",
                name.as_str().unwrap_or_default(),
                handler.as_str().unwrap_or_default()
            )
        }
        _ => kind.to_owned(),
    }
}

fn assert_pinned(service: &str, got: &[String], pinned: &[&str]) {
    assert_eq!(
        got, pinned,
        "{service}'s journal changed. Invocations in flight at a deploy replay the old one: \
         deploy this change beside the old workflows process (docs/operations.md §12), then \
         pin the new sequence here."
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_long_lived_workflows_journal_what_in_flight_invocations_replay() {
    let stack = Stack::start(&[("DEPROVISION_RETENTION_SECS", "1")]).await;
    let user = stack.user("journal@example.com").await;
    stack.provision(user).await;
    let identity = stack
        .wait_status(user, &["active"], Duration::from_secs(30))
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
        assert_pinned(service, &commands(&stack, service).await, pinned);
    }
    stack.stop().await;
}
