//! Where a person stands in the connect flow: no plan yet, payment being confirmed,
//! identity being provisioned, provisioning failed, or ready for consent. The page and its
//! polling endpoint compute it the same way, so the page reloads exactly when it changes.

use crate::error::ApiResult;
use crate::state::AppState;
use db::status::StepStatus;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No live subscription: choose a plan.
    Plans,
    /// Back from Checkout, waiting for Stripe's webhook.
    Payment,
    Provisioning,
    Failed,
    /// Payment overdue or identity suspended: billing needs attention first.
    Suspended,
    Ready,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plans => "plans",
            Self::Payment => "payment",
            Self::Provisioning => "provisioning",
            Self::Failed => "failed",
            Self::Suspended => "suspended",
            Self::Ready => "ready",
        }
    }
}

pub struct Standing {
    pub phase: Phase,
    pub identity: Option<db::identities::Identity>,
    pub steps: Vec<StepView>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StepView {
    pub key: String,
    pub label: &'static str,
    pub status: String,
    pub state: &'static str,
    pub icon: &'static str,
}

/// The provisioning steps in the order the saga runs them, as a person reads them.
const LABELS: [(&str, &str); 7] = [
    ("payment", "Confirming your payment"),
    ("workspace_user", "Creating email account"),
    ("credentials", "Securing its credentials"),
    ("phone_number", "Provisioning phone number"),
    ("messaging", "Connecting SMS"),
    ("signal", "Registering Signal"),
    ("activate", "Activating your identity"),
];

fn view(key: &str, status: StepStatus) -> StepView {
    let label = LABELS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, l)| *l)
        .unwrap_or("Working");
    let (state, icon) = match status {
        StepStatus::Done => ("Done", "✓"),
        StepStatus::Running => ("In progress…", ""),
        StepStatus::Failed => ("Failed", "!"),
        StepStatus::Compensating => ("Undoing…", "!"),
        StepStatus::Compensated => ("Undone", "!"),
        StepStatus::Pending => ("Waiting", ""),
    };
    StepView {
        key: key.to_owned(),
        label,
        status: status.as_str().to_owned(),
        state,
        icon,
    }
}

pub async fn standing(
    state: &AppState,
    user_id: Uuid,
    back_from_checkout: bool,
) -> ApiResult<Standing> {
    let sub = db::subscriptions::current(&state.pool, user_id).await?;
    let live = sub
        .as_ref()
        .is_some_and(|s| db::subscriptions::is_live(&s.status));
    let delinquent = sub
        .as_ref()
        .is_some_and(|s| db::subscriptions::is_delinquent(&s.status));
    let identity = db::identities::find_by_user(&state.pool, user_id).await?;
    let status = identity.as_ref().map(|i| i.status);
    use db::status::IdentityStatus::{Active, Failed, Pending, Provisioning, Suspended};
    let phase = match (live, status) {
        (_, Some(Suspended)) => Phase::Suspended,
        (false, _) if delinquent => Phase::Suspended,
        (true, Some(Active)) => Phase::Ready,
        (true, Some(Failed)) => Phase::Failed,
        (true, Some(Pending | Provisioning)) => Phase::Provisioning,
        // Paid, and the webhook that starts provisioning is on its way.
        (true, _) => Phase::Payment,
        (false, Some(Pending | Provisioning)) => Phase::Provisioning,
        (false, _) if back_from_checkout => Phase::Payment,
        (false, _) => Phase::Plans,
    };
    let mut steps = vec![view(
        "payment",
        if live {
            StepStatus::Done
        } else {
            StepStatus::Running
        },
    )];
    let recorded = match &identity {
        Some(i) if matches!(phase, Phase::Provisioning | Phase::Failed) => {
            db::identities::steps(&state.pool, i.id).await?
        }
        _ => Vec::new(),
    };
    for (key, _) in LABELS.iter().skip(1) {
        let status = recorded
            .iter()
            .find(|s| s.step == *key)
            .map(|s| s.status)
            .unwrap_or(StepStatus::Pending);
        steps.push(view(key, status));
    }
    Ok(Standing {
        phase,
        identity,
        steps,
    })
}
