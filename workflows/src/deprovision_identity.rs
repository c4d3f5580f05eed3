//! DeprovisionIdentity (workflow, key `{identity_id}-g{generation}`): revoke API keys and OAuth
//! grants, unregister Signal, release the number, suspend the Workspace user, wait out the
//! retention period on a durable timer, delete the user, mark the identity `deleted`. Every
//! step is idempotent ("not found" counts as done) and retried until it succeeds, so nothing is
//! left behind at any provider.

use crate::deps::SharedDeps;
use crate::step::{done_if_gone, fail, release_numbers, until_done};
use restate_sdk::prelude::*;
use uuid::Uuid;

pub struct DeprovisionIdentity {
    deps: SharedDeps,
}

impl DeprovisionIdentity {
    pub fn new(deps: SharedDeps) -> Self {
        Self { deps }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DeprovisionRequest {
    pub identity_id: Uuid,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Target {
    user_id: Uuid,
    email: Option<String>,
    phone: Option<String>,
    reference: String,
}

#[restate_sdk::workflow]
impl DeprovisionIdentity {
    #[handler]
    async fn run(
        &self,
        ctx: WorkflowContext<'_>,
        req: Json<DeprovisionRequest>,
    ) -> Result<String, HandlerError> {
        let id = req.into_inner().identity_id;
        let deps = self.deps.clone();
        let target = ctx
            .run(|| async move {
                let i = db::identities::find(&deps.pool, id).await.map_err(fail)?;
                let i = i.ok_or_else(|| TerminalError::new("identity does not exist"))?;
                // Before Signal is unregistered below: a registration that records its state
                // after this mark sees it and undoes its own work (SignalRegistration).
                db::identities::set_status(&deps.pool, id, "deprovisioning", None)
                    .await
                    .map_err(fail)?;
                Ok(Json(Target {
                    user_id: i.user_id,
                    email: i.email.clone(),
                    phone: i.phone_number.clone(),
                    reference: format!("{}-g{}", i.id, i.generation),
                }))
            })
            .name("mark deprovisioning")
            .retry_policy(until_done())
            .await?
            .into_inner();

        let deps = self.deps.clone();
        let user_id = target.user_id;
        ctx.run(|| async move {
            db::api_keys::revoke_all(&deps.pool, user_id)
                .await
                .map_err(fail)?;
            db::audit::record(
                &deps.pool,
                "DeprovisionIdentity",
                Some(user_id),
                "access.revoked",
                serde_json::json!({"identity_id": id}),
            )
            .await
            .map_err(fail)?;
            Ok(())
        })
        .name("revoke api keys and oauth grants")
        .retry_policy(until_done())
        .await?;

        if let Some(phone) = target.phone.clone() {
            let deps = self.deps.clone();
            ctx.run(|| async move {
                done_if_gone(deps.signal.unregister(&phone, true).await)?;
                db::identities::set_signal(&deps.pool, id, "unregistered", None)
                    .await
                    .map_err(fail)?;
                Ok(())
            })
            .name("unregister signal")
            .retry_policy(until_done())
            .await?;
        }

        let deps = self.deps.clone();
        let reference = target.reference.clone();
        ctx.run(|| async move {
            release_numbers(&deps, &reference).await?;
            db::identities::set_number(&deps.pool, id, None, None)
                .await
                .map_err(fail)?;
            Ok(())
        })
        .name("release phone number")
        .retry_policy(until_done())
        .await?;

        if let Some(email) = target.email.clone() {
            let deps = self.deps.clone();
            let e2 = email.clone();
            ctx.run(|| async move { done_if_gone(deps.google.suspend_user(&e2).await) })
                .name("suspend workspace user")
                .retry_policy(until_done())
                .await?;

            ctx.sleep(self.deps.config.workflows.retention).await?;

            let deps = self.deps.clone();
            ctx.run(|| async move { done_if_gone(deps.google.delete_user(&email).await) })
                .name("delete workspace user")
                .retry_policy(until_done())
                .await?;
        }

        let deps = self.deps.clone();
        ctx.run(|| async move {
            db::identities::set_workspace_user(&deps.pool, id, None, None, None)
                .await
                .map_err(fail)?;
            db::identities::set_status(&deps.pool, id, "deleted", None)
                .await
                .map_err(fail)?;
            db::audit::record(
                &deps.pool,
                "DeprovisionIdentity",
                Some(user_id),
                "identity.deleted",
                serde_json::json!({"identity_id": id}),
            )
            .await
            .map_err(fail)?;
            Ok(())
        })
        .name("mark deleted")
        .retry_policy(until_done())
        .await?;
        Ok("deleted".into())
    }
}
