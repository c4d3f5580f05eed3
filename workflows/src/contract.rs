//! The contract between the api and the workflows: every invocation the api makes, with its
//! service, key, handler and typed input, built here and nowhere else. The api sends an
//! `Invocation` through Restate's ingress; the workflows read the same request types.

use domain::Month;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Service names, as the SDK derives them from the service types (checked by a test below).
pub const PROVISION_IDENTITY: &str = "ProvisionIdentity";
pub const DEPROVISION_IDENTITY: &str = "DeprovisionIdentity";
pub const SIGNAL_REGISTRATION: &str = "SignalRegistration";
pub const SIGNAL_RECEIVER: &str = "SignalReceiver";
pub const IDENTITY_LIFECYCLE: &str = "IdentityLifecycle";
pub const USAGE_SYNC: &str = "UsageSync";
pub const USAGE_SCHEDULER: &str = "UsageScheduler";

/// Input of `ProvisionIdentity/{identity_key}/run`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProvisionRequest {
    pub identity_id: Uuid,
    pub user_id: Uuid,
    pub plan: domain::Plan,
}

/// What a finished provisioning answers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProvisionOutcome {
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// Input of `DeprovisionIdentity/{identity_key}/run`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeprovisionRequest {
    pub identity_id: Uuid,
}

/// Input of `SignalRegistration/{number}/run`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignalRequest {
    pub identity_id: Uuid,
    pub number: String,
}

/// One call through the ingress: `POST {ingress}/{path}` with `body` (`None`: the handler takes
/// no input and refuses any).
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub path: String,
    pub body: Option<Value>,
}

impl Invocation {
    fn new(service: &str, key: &str, handler: &str, body: Option<Value>) -> Self {
        Self {
            path: format!("{service}/{key}/{handler}"),
            body,
        }
    }
}

fn json(v: impl Serialize) -> Option<Value> {
    // Our own request types always serialise.
    Some(serde_json::to_value(v).unwrap_or(Value::Null))
}

/// The key of an identity's workflows for one generation (`{identity}-g{generation}`); a
/// Restate workflow key runs once, so every new generation has its own. Also the reference
/// its phone number is ordered under.
pub fn identity_key(identity_id: Uuid, generation: i32) -> String {
    format!("{identity_id}-g{generation}")
}

/// The workflow id operators see for a number's Signal registration.
pub fn signal_registration_id(number: &str) -> String {
    format!("{SIGNAL_REGISTRATION}/{number}")
}

pub fn provision(req: &ProvisionRequest, generation: i32) -> Invocation {
    let key = identity_key(req.identity_id, generation);
    Invocation::new(PROVISION_IDENTITY, &key, "run", json(req))
}

pub fn deprovision(identity_id: Uuid, generation: i32) -> Invocation {
    let key = identity_key(identity_id, generation);
    let req = DeprovisionRequest { identity_id };
    Invocation::new(DEPROVISION_IDENTITY, &key, "run", json(req))
}

pub fn suspend(user_id: Uuid) -> Invocation {
    Invocation::new(IDENTITY_LIFECYCLE, &user_id.to_string(), "suspend", None)
}

pub fn resume(user_id: Uuid) -> Invocation {
    Invocation::new(IDENTITY_LIFECYCLE, &user_id.to_string(), "resume", None)
}

/// Hands in the SMS text or the bare code.
pub fn submit_signal_code(number: &str, code: &str) -> Invocation {
    Invocation::new(SIGNAL_REGISTRATION, number, "submit_code", json(code))
}

pub fn submit_captcha(number: &str, token: &str) -> Invocation {
    Invocation::new(SIGNAL_REGISTRATION, number, "submit_captcha", json(token))
}

pub fn retry_signal(number: &str) -> Invocation {
    Invocation::new(SIGNAL_REGISTRATION, number, "retry", None)
}

pub fn start_receiver(number: &str) -> Invocation {
    Invocation::new(SIGNAL_RECEIVER, number, "start", None)
}

pub fn receive_now(number: &str) -> Invocation {
    Invocation::new(SIGNAL_RECEIVER, number, "receive_now", None)
}

/// The user's usage sync for `month`; answers a `SyncReport`.
pub fn sync_usage(user_id: Uuid, month: Month) -> Invocation {
    let key = usage_sync_key(user_id, month);
    Invocation::new(USAGE_SYNC, &key, "sync", json(serde_json::json!({})))
}

pub fn start_usage_scheduler() -> Invocation {
    Invocation::new(USAGE_SCHEDULER, "global", "start", None)
}

/// `UsageSync` key: one object per user and month, so a month's runs queue behind each other.
pub fn usage_sync_key(user_id: Uuid, month: Month) -> String {
    format!("{user_id}:{month}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use restate_sdk::service::Discoverable;

    /// The names above are the ones the services are served under.
    #[test]
    fn service_names_match_the_services() {
        use crate::*;
        assert_eq!(
            ProvisionIdentity::discover().name.to_string(),
            PROVISION_IDENTITY
        );
        assert_eq!(
            DeprovisionIdentity::discover().name.to_string(),
            DEPROVISION_IDENTITY
        );
        assert_eq!(
            SignalRegistration::discover().name.to_string(),
            SIGNAL_REGISTRATION
        );
        assert_eq!(SignalReceiver::discover().name.to_string(), SIGNAL_RECEIVER);
        assert_eq!(
            IdentityLifecycle::discover().name.to_string(),
            IDENTITY_LIFECYCLE
        );
        assert_eq!(UsageSync::discover().name.to_string(), USAGE_SYNC);
        assert_eq!(UsageScheduler::discover().name.to_string(), USAGE_SCHEDULER);
    }

    #[test]
    fn keys_and_paths() {
        let id = Uuid::nil();
        assert_eq!(identity_key(id, 3), format!("{id}-g3"));
        let inv = deprovision(id, 2);
        assert_eq!(inv.path, format!("DeprovisionIdentity/{id}-g2/run"));
        assert_eq!(inv.body, Some(serde_json::json!({ "identity_id": id })));
        assert_eq!(suspend(id).body, None);
        let month = Month::parse("2026-12").unwrap();
        assert_eq!(
            sync_usage(id, month).path,
            format!("UsageSync/{id}:2026-12/sync")
        );
    }
}
