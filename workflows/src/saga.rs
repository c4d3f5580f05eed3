//! Compensations of ProvisionIdentity, as plain data. Each is registered before the step that
//! may need undoing runs (a step that timed out may still have happened), and each is
//! idempotent and at peace with a resource that was never created. They run through
//! `step::undo`: retried until done, and a refusal that persists is reported, never fatal.

use crate::deps::Deps;
use crate::step::{release_numbers, undone, Undone};
use providers::GoogleError;

#[derive(Debug, Clone)]
pub enum Compensation {
    /// Delete the Workspace user at `email` if, and only if, it belongs to `owner`.
    DeleteWorkspaceUser { email: String, owner: String },
    /// Release every number ordered under `reference`.
    ReleaseNumbers { reference: String },
}

impl Compensation {
    /// What is undone, naming the resource (the journal step and the failure reason use it).
    pub fn name(&self) -> String {
        match self {
            Self::DeleteWorkspaceUser { email, .. } => {
                format!("compensate: delete workspace user {email}")
            }
            Self::ReleaseNumbers { reference } => {
                format!("compensate: release phone number ordered under {reference}")
            }
        }
    }

    pub async fn run(&self, deps: &Deps) -> Result<Undone, restate_sdk::prelude::HandlerError> {
        match self {
            Self::DeleteWorkspaceUser { email, owner } => {
                match deps.google.get_user(email).await {
                    Err(GoogleError::NotFound(_)) => return Ok(Undone::Done),
                    Err(e) => return undone(Err::<(), _>(e)),
                    // Someone else's user at that address is never ours to delete.
                    Ok(u) if u.owner() != Some(owner.as_str()) => return Ok(Undone::Done),
                    Ok(_) => {}
                }
                undone(deps.google.delete_user(email).await)
            }
            Self::ReleaseNumbers { reference } => release_numbers(deps, reference).await,
        }
    }
}
