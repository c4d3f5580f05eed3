//! DeprovisionIdentity (workflow, key `contract::identity_key`): revoke API keys and OAuth
//! grants, unregister Signal, release the number, suspend the Workspace user, wait out the
//! retention period on a durable timer, delete the user, mark the identity `deleted`. Every
//! step is idempotent ("not found" counts as done) and retried until it succeeds (`step::undo`).
//! A provider that keeps refusing (a 403) cannot stop it: what could not be removed is named
//! in the identity's failure reason and the audit log (`identity.left_behind`), the rest
//! goes on, and the identity always ends `deleted`.
//!
//! A deprovisioning cannot be undone (keys revoked, number released), so an operator's cancel
//! does not stop it: the workflow notes it (`cancel_ignored` in the `identity.deleted` audit
//! entry) and finishes, the rest of the retention wait included.

use crate::contract::DeprovisionRequest;
use crate::deps::SharedDeps;
use crate::step::{fail, is_cancel, must_finish, release_numbers, undo, undone, Undone};
use db::status::{IdentityStatus, SignalStatus};
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
        let mut cancelled = false;
        let target = must_finish(&ctx, "mark deprovisioning", &mut cancelled, || {
            let deps = deps.clone();
            async move {
                let i = db::identities::find(&deps.pool, id).await.map_err(fail)?;
                let i = i.ok_or_else(|| TerminalError::new("identity does not exist"))?;
                // Before Signal is unregistered below: a registration that records its state
                // after this mark sees it and undoes its own work (SignalRegistration).
                db::identities::set_status(&deps.pool, id, IdentityStatus::Deprovisioning, None)
                    .await
                    .map_err(fail)?;
                Ok(Json(Target {
                    user_id: i.user_id,
                    email: i.email.clone(),
                    phone: i.phone_number.clone(),
                    reference: crate::contract::identity_key(i.id, i.generation),
                }))
            }
        })
        .await?
        .into_inner();

        let user_id = target.user_id;
        must_finish(
            &ctx,
            "revoke api keys and oauth grants",
            &mut cancelled,
            || {
                let deps = deps.clone();
                async move {
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
                }
            },
        )
        .await?;

        // What could not be removed, each as "could not undo …: why".
        let mut left_behind: Vec<String> = Vec::new();
        let mut note = |what: &str, why: Option<String>| {
            if let Some(why) = why {
                left_behind.push(format!("could not {what}: {why}"));
            }
        };

        if let Some(phone) = target.phone.clone() {
            let p = phone.clone();
            let why = undo(&ctx, "unregister signal", &mut cancelled, || {
                let (deps, phone) = (deps.clone(), p.clone());
                async move {
                    let done = undone(deps.signal.unregister(&phone, true).await)?;
                    if matches!(done, Undone::Done) {
                        db::identities::set_signal(
                            &deps.pool,
                            id,
                            SignalStatus::Unregistered,
                            None,
                        )
                        .await
                        .map_err(fail)?;
                    }
                    Ok(Json(done))
                }
            })
            .await?;
            note(&format!("unregister {phone} from Signal"), why);
        }

        let reference = target.reference.clone();
        let r = reference.clone();
        let why = undo(&ctx, "release phone number", &mut cancelled, || {
            let (deps, reference) = (deps.clone(), r.clone());
            async move { release_numbers(&deps, &reference).await.map(Json) }
        })
        .await?;
        note(
            &format!("release the phone number ordered under {reference}"),
            why,
        );
        // The identity lets go of the number either way (a leftover is the operator's, below).
        must_finish(&ctx, "forget phone number", &mut cancelled, || {
            let deps = deps.clone();
            async move {
                db::identities::set_number(&deps.pool, id, None, None)
                    .await
                    .map_err(fail)
            }
        })
        .await?;

        if let Some(email) = target.email.clone() {
            let e = email.clone();
            let why = undo(&ctx, "suspend workspace user", &mut cancelled, || {
                let (deps, email) = (deps.clone(), e.clone());
                async move { undone(deps.google.suspend_user(&email).await).map(Json) }
            })
            .await?;
            note(&format!("suspend workspace user {email}"), why);

            self.retention(&ctx, &mut cancelled).await?;

            let why = undo(&ctx, "delete workspace user", &mut cancelled, || {
                let (deps, email) = (deps.clone(), e.clone());
                async move { undone(deps.google.delete_user(&email).await).map(Json) }
            })
            .await?;
            note(&format!("delete workspace user {email}"), why);
        }

        let reason = (!left_behind.is_empty()).then(|| left_behind.join("; "));
        let cancel_ignored = cancelled;
        must_finish(&ctx, "mark deleted", &mut cancelled, || {
            let (deps, reason, left) = (deps.clone(), reason.clone(), left_behind.clone());
            async move {
                let marked =
                    mark_deleted(&deps, id, user_id, reason.as_deref(), &left, cancel_ignored);
                marked.await.map_err(fail)
            }
        })
        .await?;
        Ok("deleted".into())
    }
}

impl DeprovisionIdentity {
    /// Waits out the retention period on a durable timer. A cancel cuts the timer short, so the
    /// rest of the period is waited again (from a journaled deadline): a cancel never shortens it.
    async fn retention(
        &self,
        ctx: &WorkflowContext<'_>,
        cancelled: &mut bool,
    ) -> Result<(), TerminalError> {
        let retention = self.deps.config.workflows.retention;
        let deadline = must_finish(ctx, "retention deadline", cancelled, move || async move {
            Ok(now_ms().saturating_add(retention.as_millis() as u64))
        })
        .await?;
        let mut wait = retention;
        loop {
            match ctx.sleep(wait).await {
                Ok(()) => return Ok(()),
                Err(e) if is_cancel(&e) => *cancelled = true,
                Err(e) => return Err(e),
            }
            let now =
                must_finish(ctx, "read the clock", cancelled, || async { Ok(now_ms()) }).await?;
            if now >= deadline {
                return Ok(());
            }
            wait = std::time::Duration::from_millis(deadline - now);
        }
    }
}

/// Milliseconds since the epoch; only ever read inside `ctx.run`.
fn now_ms() -> u64 {
    #[allow(clippy::disallowed_methods)] // journaled by the caller's ctx.run
    let now = chrono::Utc::now().timestamp_millis();
    now.max(0) as u64
}

/// Deleted, with what could not be undone. One transaction: whoever sees `deleted` also sees
/// the cleared address and the audit entries, and an attempt that fails part-way leaves
/// nothing for its retry to write twice.
async fn mark_deleted(
    deps: &crate::deps::Deps,
    id: Uuid,
    user_id: Uuid,
    reason: Option<&str>,
    left_behind: &[String],
    cancel_ignored: bool,
) -> Result<(), sqlx::Error> {
    let actor = crate::contract::DEPROVISION_IDENTITY;
    let mut tx = deps.pool.begin().await?;
    db::identities::set_workspace_user(&mut *tx, id, None, None, None).await?;
    crate::step::audit_left_behind(&mut tx, actor, user_id, id, left_behind).await?;
    db::identities::set_status(&mut *tx, id, IdentityStatus::Deleted, reason).await?;
    let detail = serde_json::json!({
        "identity_id": id,
        "left_behind": left_behind,
        "cancel_ignored": cancel_ignored,
    });
    db::audit::record(&mut *tx, actor, Some(user_id), "identity.deleted", detail).await?;
    tx.commit().await?;
    Ok(())
}
