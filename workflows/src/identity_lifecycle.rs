//! IdentityLifecycle (virtual object, key: user id): suspend on a failed payment, resume on
//! recovery. One key runs one handler at a time, so a suspend and a resume for the same user
//! never interleave. Suspend remembers exactly what it changed, and resume undoes exactly that.
//! Suspension also stops the number's SignalReceiver (it sees the status); resume restarts it.

use crate::deps::SharedDeps;
use crate::signal_receiver::SignalReceiverClient;
use crate::step::{done_if_gone, fail, until_done};
use db::status::IdentityStatus;
use restate_sdk::prelude::*;
use uuid::Uuid;

pub struct IdentityLifecycle {
    deps: SharedDeps,
}

impl IdentityLifecycle {
    pub fn new(deps: SharedDeps) -> Self {
        Self { deps }
    }
}

/// What a suspension changed, kept in the object's state until resume reverses it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Suspension {
    identity_id: Uuid,
    /// The identity status before (only `active` identities are suspended).
    previous_status: IdentityStatus,
    workspace_email: Option<String>,
}

const SUSPENSION: &str = "suspension";

#[restate_sdk::object]
impl IdentityLifecycle {
    /// AI access and communication stop (identity `suspended`), the Workspace user is suspended.
    #[handler]
    async fn suspend(&self, ctx: ObjectContext<'_>) -> Result<String, HandlerError> {
        if ctx.get::<Json<Suspension>>(SUSPENSION).await?.is_some() {
            return Ok("already suspended".into());
        }
        let user_id: Uuid = ctx
            .key()
            .parse()
            .map_err(|_| TerminalError::new("key must be a user id"))?;
        let deps = self.deps.clone();
        let found = ctx
            .run(|| async move {
                let i = db::identities::find_by_user(&deps.pool, user_id)
                    .await
                    .map_err(fail)?;
                Ok(Json(i.filter(|i| i.status == IdentityStatus::Active).map(
                    |i| Suspension {
                        identity_id: i.id,
                        previous_status: i.status,
                        workspace_email: i.email,
                    },
                )))
            })
            .name("load identity")
            .retry_policy(until_done())
            .await?
            .into_inner();
        let Some(s) = found else {
            return Ok("no active identity to suspend".into());
        };
        // Record the intent first: if anything below is retried, resume still knows what to undo.
        ctx.set(SUSPENSION, Json(s.clone()));
        let deps = self.deps.clone();
        let id = s.identity_id;
        ctx.run(|| async move {
            db::identities::set_status(
                &deps.pool,
                id,
                IdentityStatus::Suspended,
                Some("payment failed"),
            )
            .await
            .map_err(fail)?;
            Ok(())
        })
        .name("stop access")
        .retry_policy(until_done())
        .await?;
        if let Some(email) = s.workspace_email.clone() {
            let deps = self.deps.clone();
            ctx.run(|| async move { done_if_gone(deps.google.suspend_user(&email).await) })
                .name("suspend workspace user")
                .retry_policy(until_done())
                .await?;
        }
        Ok("suspended".into())
    }

    /// Reverses exactly what `suspend` did.
    #[handler]
    async fn resume(&self, ctx: ObjectContext<'_>) -> Result<String, HandlerError> {
        let Some(Json(s)) = ctx.get::<Json<Suspension>>(SUSPENSION).await? else {
            return Ok("not suspended".into());
        };
        if let Some(email) = s.workspace_email.clone() {
            let deps = self.deps.clone();
            ctx.run(|| async move { done_if_gone(deps.google.unsuspend_user(&email).await) })
                .name("unsuspend workspace user")
                .retry_policy(until_done())
                .await?;
        }
        let deps = self.deps.clone();
        let (id, previous) = (s.identity_id, s.previous_status);
        ctx.run(|| async move {
            // Only undo our own suspension: a deprovisioning that started since wins.
            let current = db::identities::find(&deps.pool, id).await.map_err(fail)?;
            if current.is_some_and(|i| i.status == IdentityStatus::Suspended) {
                db::identities::set_status(&deps.pool, id, previous, None)
                    .await
                    .map_err(fail)?;
            }
            Ok(())
        })
        .name("restore access")
        .retry_policy(until_done())
        .await?;
        // Suspension stopped the number's Signal receiver; start it again (a no-op if running).
        let deps = self.deps.clone();
        let number = ctx
            .run(|| async move {
                let i = db::identities::find(&deps.pool, id).await.map_err(fail)?;
                Ok(i.filter(|i| i.status == IdentityStatus::Active)
                    .and_then(|i| i.phone_number)
                    .unwrap_or_default())
            })
            .name("find signal number")
            .retry_policy(until_done())
            .await?;
        if !number.is_empty() {
            ctx.object_client::<SignalReceiverClient>(number)
                .start()
                .send();
        }
        ctx.clear(SUSPENSION);
        Ok("resumed".into())
    }
}
