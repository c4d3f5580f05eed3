//! ProvisionIdentity (workflow, key `contract::identity_key`): the steps of SPEC's provisioning,
//! each one line beside what undoes it. A terminal failure, or an operator's cancel, runs the
//! registered compensations in reverse, each until done (`step::undo`; what cannot be undone is
//! reported, never fatal), and marks the identity `failed` with the reason. Signal failing later
//! does not roll anything back: its registration runs on its own.

use crate::contract::{self, ProvisionOutcome, ProvisionRequest, SignalRequest};
use crate::deps::SharedDeps;
use crate::saga::Compensation;
use crate::signal_registration::SignalRegistrationClient;
use crate::step::{
    fail, is_cancel, must_finish, provider_policy, undo, until_done, Gone, StepFailure,
};
use db::status::{IdentityStatus, SignalStatus, StepStatus};
use restate_sdk::prelude::*;
use std::future::Future;
use uuid::Uuid;

pub struct ProvisionIdentity {
    deps: SharedDeps,
}

impl ProvisionIdentity {
    pub fn new(deps: SharedDeps) -> Self {
        Self { deps }
    }
}

/// The steps in order, as `/v1/identity/status` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    WorkspaceUser,
    Credentials,
    PhoneNumber,
    Messaging,
    Signal,
    Activate,
}

impl Step {
    pub const ALL: [Step; 6] = [
        Step::WorkspaceUser,
        Step::Credentials,
        Step::PhoneNumber,
        Step::Messaging,
        Step::Signal,
        Step::Activate,
    ];

    /// The step's id in the api and the progress table.
    pub fn id(self) -> &'static str {
        match self {
            Self::WorkspaceUser => "workspace_user",
            Self::Credentials => "credentials",
            Self::PhoneNumber => "phone_number",
            Self::Messaging => "messaging",
            Self::Signal => "signal",
            Self::Activate => "activate",
        }
    }

    /// The name of its journal entry in the Restate UI.
    fn title(self) -> &'static str {
        match self {
            Self::WorkspaceUser => "create workspace user",
            Self::Credentials => "store credentials",
            Self::PhoneNumber => "order phone number",
            Self::Messaging => "configure messaging",
            Self::Signal => "mark signal pending",
            Self::Activate => "activate",
        }
    }

    /// Provider calls back off for about a minute, then count as failed so the saga
    /// compensates instead of hanging; bookkeeping in our own database is retried until done.
    fn policy(self) -> RunRetryPolicy {
        match self {
            Self::WorkspaceUser | Self::PhoneNumber | Self::Messaging => provider_policy(),
            Self::Credentials | Self::Signal | Self::Activate => until_done(),
        }
    }
}

/// A step's journaled result, and what its progress row shows when it is done.
trait StepValue: serde::Serialize + serde::de::DeserializeOwned + Send + 'static {
    fn detail(&self) -> Option<String> {
        None
    }
}
impl StepValue for () {}
impl StepValue for String {}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Number {
    id: String,
    e164: String,
}
impl StepValue for Number {
    fn detail(&self) -> Option<String> {
        Some(self.e164.clone())
    }
}

/// What the saga needs to know about the identity it provisions.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Target {
    short_id: String,
    generation: i32,
}

/// Queues a step's progress for the api (written off the step's path: see `progress`); never
/// fails the step it describes. `starts_attempt` for the record an attempt begins with, not for
/// a failure Restate retries.
fn progress(
    deps: &crate::deps::Deps,
    identity: Uuid,
    step: Step,
    status: StepStatus,
    detail: Option<String>,
    starts_attempt: bool,
) {
    let position = step as i32;
    deps.progress.record(
        identity,
        step.id(),
        position,
        status,
        detail,
        starts_attempt,
    );
}

/// One provisioning run: the journal, the identity, and what to undo if it fails.
struct Saga<'a, 'ctx> {
    ctx: &'a WorkflowContext<'ctx>,
    deps: SharedDeps,
    identity: Uuid,
    compensations: Vec<Compensation>,
}

impl Saga<'_, '_> {
    /// Registers the step's compensation first (a step that timed out may still have
    /// happened), then runs it as one named, journaled `ctx.run` that records its progress.
    async fn step<T, F, Fut>(
        &mut self,
        step: Step,
        compensation: Option<Compensation>,
        work: F,
    ) -> Result<T, TerminalError>
    where
        T: StepValue,
        F: FnOnce(SharedDeps) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, StepFailure>> + Send + 'static,
    {
        self.compensations.extend(compensation);
        let (deps, id) = (self.deps.clone(), self.identity);
        let done = self
            .ctx
            .run(move || async move {
                progress(&deps, id, step, StepStatus::Running, None, true);
                match work(deps.clone()).await {
                    Ok(value) => {
                        // `activate` records its own, with the status.
                        if step != Step::Activate {
                            progress(&deps, id, step, StepStatus::Done, value.detail(), false);
                        }
                        Ok(Json(value))
                    }
                    Err(failure) => {
                        // A failure that may pass leaves the step running (Restate retries it).
                        let status = match failure.retryable {
                            true => StepStatus::Running,
                            false => StepStatus::Failed,
                        };
                        let reason = Some(failure.message.clone());
                        progress(&deps, id, step, status, reason, false);
                        Err(failure.into_handler_error())
                    }
                }
            })
            .name(step.title())
            .retry_policy(step.policy())
            .await?;
        Ok(done.into_inner())
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

        // A cancel this early still ends the identity `failed` below, never `provisioning`.
        let mut cancelled_early = false;
        must_finish(&ctx, "mark provisioning", &mut cancelled_early, || {
            let deps = deps.clone();
            async move {
                let steps = Step::ALL.map(Step::id);
                db::identities::mark_provisioning(&deps.pool, id, &steps)
                    .await
                    .map_err(fail)?;
                crate::metrics::provisioning_started();
                Ok(())
            }
        })
        .await?;
        ctx.set(PROGRESS_KEY, "provisioning".to_string());

        let mut saga = Saga {
            ctx: &ctx,
            deps: deps.clone(),
            identity: id,
            compensations: Vec::new(),
        };
        let provisioned = if cancelled_early {
            Err(TerminalError::new_with_code(409, "cancelled"))
        } else {
            provision(&mut saga, &req).await
        };
        let failure = match provisioned {
            Ok(outcome) => {
                ctx.set(PROGRESS_KEY, "active".to_string());
                return Ok(Json(outcome));
            }
            Err(failure) => failure,
        };
        // Restate hands an operator's cancel to the step the saga was awaiting: say so.
        let reason = if is_cancel(&failure) {
            "cancelled by an operator".to_owned()
        } else {
            failure.message().to_owned()
        };
        ctx.set(PROGRESS_KEY, "compensating".to_string());
        let compensations = std::mem::take(&mut saga.compensations);
        let reason = roll_back(&ctx, &deps, &req, compensations, reason).await?;
        ctx.set(PROGRESS_KEY, "failed".to_string());
        Err(TerminalError::new(format!("provisioning failed: {reason}")).into())
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

/// The steps, as SPEC lists them. Each provider resource has a deterministic name (address,
/// order reference), so a retried step finds what an earlier attempt made instead of
/// duplicating it.
async fn provision(
    saga: &mut Saga<'_, '_>,
    req: &ProvisionRequest,
) -> Result<ProvisionOutcome, TerminalError> {
    let (id, user_id) = (req.identity_id, req.user_id);
    let target = load_target(saga, id).await?;
    let email = saga.deps.google.workspace_address(&target.short_id);
    let reference = contract::identity_key(id, target.generation);
    let owner = user_id.to_string();
    let user = WorkspaceUser {
        email: email.clone(),
        family_name: target.short_id.clone(),
        owner: owner.clone(),
        password_purpose: format!("workspace-password:{reference}"),
    };

    let undo_user = Compensation::DeleteWorkspaceUser {
        email: email.clone(),
        owner,
    };
    let undo_number = Compensation::ReleaseNumbers {
        reference: reference.clone(),
    };
    let u = user.clone();
    let google_id = saga
        .step(Step::WorkspaceUser, Some(undo_user), |d| create_user(d, u))
        .await?;
    saga.step(Step::Credentials, None, move |d| {
        store_credentials(d, id, user, google_id)
    })
    .await?;
    let r = reference.clone();
    let number = saga
        .step(Step::PhoneNumber, Some(undo_number), |d| order_number(d, r))
        .await?;
    let n = number.clone();
    saga.step(Step::Messaging, None, move |d| {
        configure_messaging(d, id, reference, n)
    })
    .await?;
    saga.step(Step::Signal, None, move |d| mark_signal_pending(d, id))
        .await?;
    let registration = SignalRequest {
        identity_id: id,
        number: number.e164.clone(),
    };
    saga.ctx
        .workflow_client::<SignalRegistrationClient>(number.e164.clone())
        .run(Json(registration))
        .send();
    saga.step(Step::Activate, None, move |d| activate(d, id, user_id))
        .await?;
    Ok(ProvisionOutcome {
        email: Some(email),
        phone: Some(number.e164),
    })
}

async fn load_target(saga: &Saga<'_, '_>, id: Uuid) -> Result<Target, TerminalError> {
    let deps = saga.deps.clone();
    let target = saga
        .ctx
        .run(|| async move {
            let i = db::identities::find(&deps.pool, id).await.map_err(fail)?;
            let i = i.ok_or_else(|| TerminalError::new("identity does not exist"))?;
            Ok(Json(Target {
                short_id: i.short_id,
                generation: i.generation,
            }))
        })
        .name("load identity")
        .retry_policy(until_done())
        .await?;
    Ok(target.into_inner())
}

/// The Workspace user to create; its password is derived from `password_purpose` whenever it is
/// needed and never journaled.
#[derive(Debug, Clone)]
struct WorkspaceUser {
    email: String,
    family_name: String,
    owner: String,
    password_purpose: String,
}

async fn create_user(deps: SharedDeps, user: WorkspaceUser) -> Result<String, StepFailure> {
    let new = providers::google::NewUser {
        primary_email: user.email,
        given_name: "Dex".into(),
        family_name: user.family_name,
        password: deps.secrets.derive_password(&user.password_purpose),
        owner: Some(user.owner),
    };
    let (created, _fresh) = deps.google.ensure_user(&new).await?;
    Ok(created.id)
}

/// The Workspace credentials, encrypted at rest.
async fn store_credentials(
    deps: SharedDeps,
    id: Uuid,
    user: WorkspaceUser,
    google_id: String,
) -> Result<(), StepFailure> {
    let password = deps.secrets.derive_password(&user.password_purpose);
    let sealed = deps.secrets.seal(password.as_bytes());
    let (email, google_id) = (Some(user.email.as_str()), Some(google_id.as_str()));
    db::identities::set_workspace_user(&deps.pool, id, email, google_id, Some(&sealed)).await?;
    Ok(())
}

/// A number ordered under `reference`, so a retry finds the one already bought.
async fn order_number(deps: SharedDeps, reference: String) -> Result<Number, StepFailure> {
    let profile = Some(deps.config.telnyx.messaging_profile_id.as_str()).filter(|p| !p.is_empty());
    let ordered = deps
        .telnyx
        .ensure_number(&reference, &Default::default(), profile)
        .await?;
    Ok(Number {
        id: ordered.number.id,
        e164: ordered.number.phone_number,
    })
}

/// Inbound SMS for the number reach /webhooks/telnyx. Any other number under the reference is
/// released: two attempts of the number step running at once (an old attempt a Restate fail-over
/// left running beside the new one) can each buy one, and only `number` was recorded (seen in
/// the chaos test: an active identity holding two numbers).
async fn configure_messaging(
    deps: SharedDeps,
    id: Uuid,
    reference: String,
    number: Number,
) -> Result<(), StepFailure> {
    let profile = &deps.config.telnyx.messaging_profile_id;
    if !profile.is_empty() {
        let hook = format!("{}/webhooks/telnyx", deps.config.public_base_url);
        deps.telnyx.set_profile_webhook(profile, &hook).await?;
        deps.telnyx
            .set_messaging_profile(&number.id, profile)
            .await?;
    }
    // Last, so that it also sees what an attempt still running bought meanwhile.
    for other in deps.telnyx.numbers_by_reference(&reference).await? {
        if other.id != number.id {
            tracing::warn!(identity_id = %id, "releasing a second number bought for one identity");
            match deps.telnyx.release_number(&other.id).await {
                Err(e) if !e.gone() => return Err(e.into()),
                _ => {}
            }
        }
    }
    db::identities::set_number(&deps.pool, id, Some(&number.e164), Some(&number.id)).await?;
    Ok(())
}

async fn mark_signal_pending(deps: SharedDeps, id: Uuid) -> Result<(), StepFailure> {
    db::identities::set_signal(&deps.pool, id, SignalStatus::Pending, None).await?;
    Ok(())
}

/// Active. No API key is issued here: a connected Dex holds OAuth tokens, and a key nobody was
/// shown would only be a live secret at rest; users make keys at /keys.
async fn activate(deps: SharedDeps, id: Uuid, user_id: Uuid) -> Result<(), StepFailure> {
    // The steps' queued progress first, so that none of it lands after the status. Then one
    // transaction: whoever sees `active` also sees every step done (this one, and any whose
    // own record was lost with a stopped process) and the audit entry, and an attempt that
    // fails part-way leaves nothing for its retry to write twice.
    deps.progress.flush().await;
    let mut tx = deps.pool.begin().await?;
    let audit = serde_json::json!({ "identity_id": id });
    let actor = contract::PROVISION_IDENTITY;
    db::audit::record(&mut *tx, actor, Some(user_id), "identity.active", audit).await?;
    db::identities::finish_steps(&mut *tx, id).await?;
    db::identities::set_status(&mut *tx, id, IdentityStatus::Active, None).await?;
    tx.commit().await?;
    crate::metrics::provisioning_succeeded(&deps.pool, id).await;
    Ok(())
}

/// Runs every compensation in reverse, whatever happened to the one before it, then marks the
/// identity `failed`. Returns the failure reason, with what could not be undone appended.
async fn roll_back(
    ctx: &WorkflowContext<'_>,
    deps: &SharedDeps,
    req: &ProvisionRequest,
    compensations: Vec<Compensation>,
    reason: String,
) -> Result<String, TerminalError> {
    let (id, user_id) = (req.identity_id, req.user_id);
    let mut left_behind: Vec<String> = Vec::new();
    let mut cancelled = false;
    for c in compensations.into_iter().rev() {
        let (d, c2) = (deps.clone(), c.clone());
        let undone = undo(ctx, &c.name(), &mut cancelled, move || {
            let (deps, c) = (d.clone(), c2.clone());
            async move { c.run(&deps).await.map(Json) }
        })
        .await?;
        if let Some(why) = undone {
            let what = c.name().trim_start_matches("compensate: ").to_owned();
            left_behind.push(format!("could not undo {what}: {why}"));
        }
    }
    let reason = match left_behind.is_empty() {
        true => reason,
        false => format!("{reason}; {}", left_behind.join("; ")),
    };
    let (deps, why) = (deps.clone(), reason.clone());
    must_finish(ctx, "mark failed", &mut cancelled, move || {
        let (deps, reason, left) = (deps.clone(), why.clone(), left_behind.clone());
        async move {
            mark_failed(&deps, id, user_id, &reason, &left)
                .await
                .map_err(fail)
        }
    })
    .await?;
    Ok(reason)
}

async fn mark_failed(
    deps: &crate::deps::Deps,
    id: Uuid,
    user_id: Uuid,
    reason: &str,
    left_behind: &[String],
) -> Result<(), sqlx::Error> {
    let actor = contract::PROVISION_IDENTITY;
    // The steps' queued progress first, as in `activate`. Then one transaction: whoever sees
    // `failed` also sees where each step ended (the one it stopped at failed, even if its own
    // record was lost), the cleared address and number and the audit entries, and an attempt
    // that fails part-way leaves nothing for its retry to write twice.
    deps.progress.flush().await;
    let mut tx = deps.pool.begin().await?;
    db::identities::fail_running_steps(&mut *tx, id, reason).await?;
    db::identities::set_workspace_user(&mut *tx, id, None, None, None).await?;
    db::identities::set_number(&mut *tx, id, None, None).await?;
    crate::step::audit_left_behind(&mut tx, actor, user_id, id, left_behind).await?;
    db::identities::set_status(&mut *tx, id, IdentityStatus::Failed, Some(reason)).await?;
    let detail =
        serde_json::json!({ "identity_id": id, "reason": reason, "left_behind": left_behind });
    db::audit::record(&mut *tx, actor, Some(user_id), "identity.failed", detail).await?;
    tx.commit().await?;
    crate::metrics::provisioning_failed();
    Ok(())
}
