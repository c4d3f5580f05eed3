//! What a workflow journals, as Restate's introspection shows it: the sequence an invocation in
//! flight replays against whatever code serves it (see tests/journal_shapes.rs).

use super::restate::Restate;
use serde_json::Value;

/// The commands of `service`'s `run` journal (the invocation keyed `key`, or the only one), in
/// order, notifications left out (where they fall depends on timing, not on the code), each with
/// what a replay compares: a step's name, a state key and the value written (as text), a
/// promise's key, a call's target.
pub async fn commands(restate: &Restate, service: &str, key: Option<&str>) -> Vec<String> {
    let key = key.map_or(String::new(), |k| {
        format!(" AND i.target_service_key = '{k}'")
    });
    let rows = restate
        .query(&format!(
            "SELECT j.index, j.entry_json FROM sys_journal j
             JOIN sys_invocation i ON i.id = j.id
             WHERE i.target_service_name = '{service}' AND i.target_handler_name = 'run'{key}
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

pub fn assert_pinned(service: &str, got: &[String], pinned: &[&str]) {
    assert_eq!(
        got, pinned,
        "{service}'s journal changed. Invocations in flight at a deploy replay the old one: \
         deploy this change beside the old workflows process (docs/operations.md §12), then \
         pin the new sequence here."
    );
}
