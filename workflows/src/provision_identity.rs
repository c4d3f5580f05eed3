//! ProvisionIdentity (workflow, key `{identity_id}-g{generation}`): Workspace user → encrypted
//! credentials → phone number with messaging → SignalRegistration → active with an API key.
//! Each provider call is a named `ctx.run` step whose compensation is registered first; a
//! terminal failure, or an operator's cancel, runs the compensations in reverse, each until
//! done (`step::undo`; what cannot be undone is reported, never fatal), and marks the identity
//! `failed` with the reason. Signal failing later does not roll anything back.

use crate::deps::SharedDeps;
use crate::saga::Compensation;
use crate::signal_registration::{SignalRegistrationClient, SignalRequest};
use crate::step::{fail, is_cancel, must_finish, provider_policy, undo, until_done};
use restate_sdk::prelude::*;
use uuid::Uuid;

pub struct ProvisionIdentity {
    deps: SharedDeps,
}

impl ProvisionIdentity {
    pub fn new(deps: SharedDeps) -> Self {
        Self { deps }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ProvisionRequest {
    pub identity_id: Uuid,
    pub user_id: Uuid,
    pub plan: String,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ProvisionOutcome {
    pub status: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub failure_reason: Option<String>,
}

/// Steps in order; the position is what `/v1/identity/status` sorts by.
pub const STEPS: [&str; 6] = [
    "workspace_user",
    "credentials",
    "phone_number",
    "messaging",
    "signal",
    "activate",
];

fn position(step: &str) -> i32 {
    STEPS
        .iter()
        .position(|s| *s == step)
        .map(|p| p as i32)
        .unwrap_or(99)
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Number {
    id: String,
    e164: String,
}

/// Records progress in Postgres for the api; never fails the step it describes.
async fn progress(
    deps: &crate::deps::Deps,
    identity: Uuid,
    step: &str,
    status: &str,
    detail: Option<&str>,
) {
    if let Err(e) =
        db::identities::record_step(&deps.pool, identity, step, position(step), status, detail)
            .await
    {
        tracing::warn!(error = %e, step, "could not record provisioning progress");
    }
}

const PROGRESS_KEY: &str = "progress";

#[restate_sdk::workflow]
impl ProvisionIdentity {
    #[handler]
    async fn run(
        &self,
        ctx: WorkflowContext<'_>,
        req: Json<ProvisionRequest>,
    ) -> Result<Json<ProvisionOutcome>, HandlerError> {
        let req = req.into_inner();
        let deps = self.deps.clone();
        let id = req.identity_id;
        let user_id = req.user_id;

        // A cancel this early still ends the identity `failed` below, never `provisioning`.
        let mut cancelled_early = false;
        must_finish(&ctx, "mark provisioning", &mut cancelled_early, || {
            let deps = deps.clone();
            async move {
                db::identities::set_status(&deps.pool, id, "provisioning", None)
                    .await
                    .map_err(fail)?;
                for step in STEPS {
                    progress(&deps, id, step, "pending", None).await;
                }
                crate::metrics::provisioning_started();
                Ok(())
            }
        })
        .await?;
        ctx.set(PROGRESS_KEY, "provisioning".to_string());

        let mut compensations: Vec<Compensation> = Vec::new();
        let provisioned = if cancelled_early {
            Err(TerminalError::new_with_code(409, "cancelled"))
        } else {
            self.provision(&ctx, &req, &mut compensations).await
        };
        match provisioned {
            Ok(outcome) => {
                ctx.set(PROGRESS_KEY, "active".to_string());
                Ok(Json(outcome))
            }
            Err(failure) => {
                // Restate hands an operator's cancel to the step the saga was awaiting: say so.
                let mut reason = if is_cancel(&failure) {
                    "cancelled by an operator".to_owned()
                } else {
                    failure.message().to_owned()
                };
                ctx.set(PROGRESS_KEY, "compensating".to_string());
                // Every compensation runs, whatever happened to the one before it.
                let mut left_behind: Vec<String> = Vec::new();
                let mut cancelled = false;
                for c in compensations.iter().rev() {
                    let (deps, c2) = (deps.clone(), c.clone());
                    let undone = undo(&ctx, &c.name(), &mut cancelled, move || {
                        let (deps, c) = (deps.clone(), c2.clone());
                        async move { c.run(&deps).await.map(Json) }
                    })
                    .await?;
                    if let Some(why) = undone {
                        let what = c.name().trim_start_matches("compensate: ").to_owned();
                        left_behind.push(format!("could not undo {what}: {why}"));
                    }
                }
                if !left_behind.is_empty() {
                    reason = format!("{reason}; {}", left_behind.join("; "));
                }
                let reason2 = reason.clone();
                must_finish(&ctx, "mark failed", &mut cancelled, move || {
                    let (deps, reason, left) = (deps.clone(), reason2.clone(), left_behind.clone());
                    async move {
                        // `failed` goes last: whoever sees it sees the cleared address and number.
                        db::identities::set_workspace_user(&deps.pool, id, None, None, None)
                            .await
                            .map_err(fail)?;
                        db::identities::set_number(&deps.pool, id, None, None)
                            .await
                            .map_err(fail)?;
                        for what in &left {
                            db::audit::record(
                                &deps.pool,
                                "ProvisionIdentity",
                                Some(user_id),
                                "identity.left_behind",
                                serde_json::json!({"identity_id": id, "what": what}),
                            )
                            .await
                            .map_err(fail)?;
                        }
                        db::identities::set_status(&deps.pool, id, "failed", Some(&reason))
                            .await
                            .map_err(fail)?;
                        db::audit::record(
                            &deps.pool,
                            "ProvisionIdentity",
                            Some(user_id),
                            "identity.failed",
                            serde_json::json!({
                                "identity_id": id,
                                "reason": reason,
                                "left_behind": left,
                            }),
                        )
                        .await
                        .map_err(fail)?;
                        crate::metrics::provisioning_failed();
                        Ok(())
                    }
                })
                .await?;
                ctx.set(PROGRESS_KEY, "failed".to_string());
                Err(TerminalError::new(format!("provisioning failed: {reason}")).into())
            }
        }
    }

    /// Where the saga stands (provisioning, compensating, active, failed); readable while it runs.
    #[handler]
    async fn progress(&self, ctx: SharedWorkflowContext<'_>) -> Result<String, HandlerError> {
        Ok(ctx
            .get::<String>(PROGRESS_KEY)
            .await?
            .unwrap_or_else(|| "pending".into()))
    }
}

impl ProvisionIdentity {
    async fn provision(
        &self,
        ctx: &WorkflowContext<'_>,
        req: &ProvisionRequest,
        compensations: &mut Vec<Compensation>,
    ) -> Result<ProvisionOutcome, TerminalError> {
        let deps = self.deps.clone();
        let id = req.identity_id;
        let identity = {
            let deps = deps.clone();
            ctx.run(|| async move {
                let i = db::identities::find(&deps.pool, id).await.map_err(fail)?;
                let i = i.ok_or_else(|| TerminalError::new("identity does not exist"))?;
                Ok(Json((i.short_id, i.generation)))
            })
            .name("load identity")
            .retry_policy(until_done())
            .await?
            .into_inner()
        };
        let (short_id, generation) = identity;
        let email = deps.google.workspace_address(&short_id);
        let owner = req.user_id.to_string();
        let reference = format!("{id}-g{generation}");

        // 1. Workspace user (deterministic address: a retry finds it instead of duplicating it).
        compensations.push(Compensation::DeleteWorkspaceUser {
            email: email.clone(),
            owner: owner.clone(),
        });
        let google_id = {
            let (deps, email, owner) = (deps.clone(), email.clone(), owner.clone());
            let purpose = format!("workspace-password:{reference}");
            ctx.run(|| async move {
                progress(&deps, id, "workspace_user", "running", None).await;
                let user = providers::google::NewUser {
                    primary_email: email,
                    given_name: "Dex".into(),
                    family_name: short_id.clone(),
                    password: deps.secrets.derive_password(&purpose),
                    owner: Some(owner),
                };
                match deps.google.ensure_user(&user).await {
                    Ok((u, _created)) => {
                        progress(&deps, id, "workspace_user", "done", None).await;
                        Ok(u.id)
                    }
                    Err(e) => {
                        let status = if e.is_retryable() {
                            "running"
                        } else {
                            "failed"
                        };
                        progress(&deps, id, "workspace_user", status, Some(&e.to_string())).await;
                        Err(fail(e))
                    }
                }
            })
            .name("create workspace user")
            .retry_policy(provider_policy())
            .await?
        };

        // 2. Credentials, encrypted at rest (derived again, never journaled).
        {
            let (deps, email) = (deps.clone(), email.clone());
            let purpose = format!("workspace-password:{reference}");
            ctx.run(|| async move {
                let sealed = deps
                    .secrets
                    .seal(deps.secrets.derive_password(&purpose).as_bytes());
                db::identities::set_workspace_user(
                    &deps.pool,
                    id,
                    Some(&email),
                    Some(&google_id),
                    Some(&sealed),
                )
                .await
                .map_err(fail)?;
                progress(&deps, id, "credentials", "done", None).await;
                Ok(())
            })
            .name("store credentials")
            .retry_policy(until_done())
            .await?;
        }

        // 3. Phone number, ordered under a reference so a retry finds the one already bought.
        compensations.push(Compensation::ReleaseNumbers {
            reference: reference.clone(),
        });
        let number = {
            let (deps, reference) = (deps.clone(), reference.clone());
            ctx.run(|| async move {
                progress(&deps, id, "phone_number", "running", None).await;
                let profile = Some(deps.config.telnyx.messaging_profile_id.as_str())
                    .filter(|p| !p.is_empty());
                match deps
                    .telnyx
                    .ensure_number(&reference, &Default::default(), profile)
                    .await
                {
                    Ok(n) => {
                        progress(
                            &deps,
                            id,
                            "phone_number",
                            "done",
                            Some(&n.number.phone_number),
                        )
                        .await;
                        Ok(Json(Number {
                            id: n.number.id,
                            e164: n.number.phone_number,
                        }))
                    }
                    Err(e) => {
                        let status = if e.is_retryable() {
                            "running"
                        } else {
                            "failed"
                        };
                        progress(&deps, id, "phone_number", status, Some(&e.to_string())).await;
                        Err(fail(e))
                    }
                }
            })
            .name("order phone number")
            .retry_policy(provider_policy())
            .await?
            .into_inner()
        };

        // 4. Messaging: inbound SMS for this number reach /webhooks/telnyx.
        {
            let (deps, number) = (deps.clone(), number.clone());
            ctx.run(|| async move {
                progress(&deps, id, "messaging", "running", None).await;
                let profile = deps.config.telnyx.messaging_profile_id.clone();
                if !profile.is_empty() {
                    let hook = format!("{}/webhooks/telnyx", deps.config.public_base_url);
                    deps.telnyx
                        .set_profile_webhook(&profile, &hook)
                        .await
                        .map_err(fail)?;
                    deps.telnyx
                        .set_messaging_profile(&number.id, &profile)
                        .await
                        .map_err(fail)?;
                }
                db::identities::set_number(&deps.pool, id, Some(&number.e164), Some(&number.id))
                    .await
                    .map_err(fail)?;
                progress(&deps, id, "messaging", "done", None).await;
                Ok(())
            })
            .name("configure messaging")
            .retry_policy(provider_policy())
            .await?;
        }

        // 5. Signal registration runs on its own; its failure never rolls the identity back.
        {
            let deps = deps.clone();
            ctx.run(|| async move {
                db::identities::set_signal(&deps.pool, id, "pending", None)
                    .await
                    .map_err(fail)?;
                progress(&deps, id, "signal", "done", Some("registration started")).await;
                Ok(())
            })
            .name("mark signal pending")
            .retry_policy(until_done())
            .await?;
        }
        ctx.workflow_client::<SignalRegistrationClient>(number.e164.clone())
            .run(Json(SignalRequest {
                identity_id: id,
                number: number.e164.clone(),
            }))
            .send();

        // 6. Active. No API key is issued here: a connected Dex holds OAuth tokens, and a
        // key nobody was shown would only be a live secret at rest; users make keys at /keys.
        {
            let deps = deps.clone();
            let user_id = req.user_id;
            // Status last: whoever sees `active` also sees every step done.
            ctx.run(|| async move {
                db::audit::record(
                    &deps.pool,
                    "ProvisionIdentity",
                    Some(user_id),
                    "identity.active",
                    serde_json::json!({"identity_id": id}),
                )
                .await
                .map_err(fail)?;
                progress(&deps, id, "activate", "done", None).await;
                db::identities::set_status(&deps.pool, id, "active", None)
                    .await
                    .map_err(fail)?;
                crate::metrics::provisioning_succeeded(&deps.pool, id).await;
                Ok(())
            })
            .name("activate")
            .retry_policy(until_done())
            .await?;
        }
        Ok(ProvisionOutcome {
            status: "active".into(),
            email: Some(email),
            phone: Some(number.e164),
            failure_reason: None,
        })
    }
}
