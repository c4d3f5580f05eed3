//! Compensations of ProvisionIdentity, as plain data. Each is registered before the step that
//! may need undoing runs (a step that timed out may still have happened), and each is
//! idempotent and at peace with a resource that was never created.

use crate::deps::Deps;
use crate::step::{done_if_gone, fail, release_numbers};
use providers::GoogleError;

#[derive(Debug, Clone)]
pub enum Compensation {
    /// Delete the Workspace user at `email` if, and only if, it belongs to `owner`.
    DeleteWorkspaceUser { email: String, owner: String },
    /// Release every number ordered under `reference`.
    ReleaseNumbers { reference: String },
}

impl Compensation {
    pub fn name(&self) -> String {
        match self {
            Self::DeleteWorkspaceUser { .. } => "compensate: delete workspace user".into(),
            Self::ReleaseNumbers { .. } => "compensate: release phone number".into(),
        }
    }

    pub async fn run(&self, deps: &Deps) -> Result<(), restate_sdk::prelude::HandlerError> {
        match self {
            Self::DeleteWorkspaceUser { email, owner } => {
                match deps.google.get_user(email).await {
                    Err(GoogleError::NotFound(_)) => return Ok(()),
                    Err(e) => return Err(fail(e)),
                    // Someone else's user at that address is never ours to delete.
                    Ok(u) if u.owner() != Some(owner.as_str()) => return Ok(()),
                    Ok(_) => {}
                }
                done_if_gone(deps.google.delete_user(email).await)
            }
            Self::ReleaseNumbers { reference } => release_numbers(deps, reference).await,
        }
    }
}
