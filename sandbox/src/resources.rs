//! `GET /_sandbox/resources`: every resource alive at the providers right now, each with the
//! owner it was created for, so a test can prove that nothing leaked.

use crate::Shared;
use serde_json::{json, Value};

pub(crate) fn snapshot(sandbox: &Shared) -> Value {
    let numbers = sandbox.telnyx.numbers_snapshot();
    let owner_of = |number: &str| -> Value {
        numbers
            .iter()
            .find(|n| n["phone_number"] == number)
            .map(|n| n["owner"].clone())
            .unwrap_or(Value::Null)
    };
    let accounts: Vec<Value> = sandbox
        .signal
        .accounts_snapshot()
        .into_iter()
        .map(|mut a| {
            let number = a["number"].as_str().unwrap_or_default().to_owned();
            a["owner"] = owner_of(&number);
            a
        })
        .collect();
    json!({
        "google": { "users": sandbox.google.users_snapshot() },
        "telnyx": { "numbers": numbers },
        "signal": { "accounts": accounts },
        "stripe": sandbox.stripe.resources(),
    })
}
