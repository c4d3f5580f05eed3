//! CloseAccount (workflow, key: the user id, so a second request joins the first): the GDPR
//! "deletion on request". In order, each a named, idempotent, journaled step:
//! 1. end access: every API key, OAuth grant, refresh token and portal session, and mark the
//!    account `closing` (the api did this in the request's transaction already; this repeats
//!    it for the case the api died between handing over and committing);
//! 2. bill the usage so far: UsageSync of last month and this month, while the subscription
//!    still names the plan;
//! 3. cancel the Stripe subscription, invoicing the reported usage at once;
//! 4. deprovision the identity (DeprovisionIdentity of its current generation, awaited: Signal
//!    unregistered, number released, Workspace user suspended then deleted after its own
//!    retention);
//! 5. wait until the account's `erase_after` (ACCOUNT_RETENTION_SECS after the request) on a
//!    durable timer;
//! 6. erase the personal data, keeping the billing records under the user's uuid.
//!
//! Closing cannot be undone (access ended at step 1), so nothing here stops it: a provider that
//! keeps refusing is reported in the `account.closed` audit entry and the rest goes on, and an
//! operator's cancel is noted and ignored, as DeprovisionIdentity does.

use crate::contract::{identity_key, DeprovisionRequest};
use crate::deprovision_identity::DeprovisionIdentityClient;
use crate::deps::SharedDeps;
use crate::step::{fail, is_cancel, must_finish, undo, Undone};
use crate::usage_sync::{SyncRequest, UsageSyncClient};
use billing::StripeApi;
use chrono::{DateTime, Utc};
use domain::Month;
use restate_sdk::prelude::*;
use std::time::Duration;
use uuid::Uuid;

pub struct CloseAccount {
    deps: SharedDeps,
    stripe: StripeApi,
}

impl CloseAccount {
    pub fn new(deps: SharedDeps, stripe: StripeApi) -> Self {
        Self { deps, stripe }
    }
}

/// Input of `run`: nothing yet (callers send `{}`).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct CloseRequest {}

/// What the closing did, once it is over.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct CloseOutcome {
    pub user_id: Uuid,
    pub canceled_subscriptions: Vec<String>,
    pub deprovisioned_identity: Option<Uuid>,
    /// What could not be done, each as "could not …: why".
    pub left_behind: Vec<String>,
    pub erased: bool,
}

/// Step 1's reading of the world (journaled, so a replay sees the same).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Start {
    erase_after_ms: i64,
    now_ms: i64,
    holdings: db::account_closing::Holdings,
}

#[restate_sdk::workflow]
impl CloseAccount {
    #[handler]
    async fn run(
        &self,
        ctx: WorkflowContext<'_>,
        _req: Json<CloseRequest>,
    ) -> Result<Json<CloseOutcome>, HandlerError> {
        let user_id: Uuid = ctx
            .key()
            .parse()
            .map_err(|_| TerminalError::new("CloseAccount key must be a user id"))?;
        let deps = self.deps.clone();
        let mut cancelled = false;
        let mut out = CloseOutcome {
            user_id,
            ..CloseOutcome::default()
        };

        let retention = self.deps.config.workflows.account_retention;
        let start = must_finish(&ctx, "end access", &mut cancelled, || {
            let deps = deps.clone();
            async move { end_access(&deps, user_id, retention).await.map(Json) }
        })
        .await?
        .into_inner();

        self.bill_usage_so_far(&ctx, user_id, start.now_ms, &mut out)
            .await?;

        for sub in &start.holdings.live_subscriptions {
            let stripe = self.stripe.clone();
            let s = sub.clone();
            let why =
                undo(
                    &ctx,
                    &format!("cancel subscription {sub}"),
                    &mut cancelled,
                    || {
                        let (stripe, sub) = (stripe.clone(), s.clone());
                        async move {
                            cancelled_at_stripe(stripe.close_subscription(&sub).await).map(Json)
                        }
                    },
                )
                .await?;
            match why {
                None => out.canceled_subscriptions.push(sub.clone()),
                Some(why) => out
                    .left_behind
                    .push(format!("could not cancel subscription {sub}: {why}")),
            }
        }

        if let Some((identity_id, generation, status)) = start.holdings.identity.clone() {
            if status != "deleted" {
                self.deprovision(&ctx, identity_id, generation, &mut cancelled)
                    .await?;
                out.deprovisioned_identity = Some(identity_id);
            }
        }

        self.wait_until(&ctx, start.erase_after_ms, &mut cancelled)
            .await?;

        let left = out.left_behind.clone();
        let cancel_ignored = cancelled;
        out.erased = must_finish(&ctx, "erase personal data", &mut cancelled, || {
            let (deps, left) = (deps.clone(), left.clone());
            async move {
                // No personal data in it: what was left at a provider is named by its id.
                let detail =
                    serde_json::json!({"left_behind": left, "cancel_ignored": cancel_ignored});
                let erased = db::account_closing::erase(&deps.pool, user_id, detail)
                    .await
                    .map_err(fail)?;
                Ok(erased)
            }
        })
        .await?;
        Ok(Json(out))
    }
}

impl CloseAccount {
    /// Step 2: report the overage so far while the subscription still names the plan (UsageSync
    /// reads it), so the final invoice of step 3 carries it. Re-running a sync is always safe;
    /// one that fails for good is reported and closing goes on.
    async fn bill_usage_so_far(
        &self,
        ctx: &WorkflowContext<'_>,
        user_id: Uuid,
        now_ms: i64,
        out: &mut CloseOutcome,
    ) -> Result<(), TerminalError> {
        let today = DateTime::<Utc>::from_timestamp_millis(now_ms)
            .unwrap_or_default()
            .date_naive();
        let this = Month::containing(today);
        let previous = Month::containing(this.first_day() - chrono::Duration::days(1));
        for month in [previous, this] {
            let mut tries = 0;
            loop {
                let res = ctx
                    .object_client::<UsageSyncClient>(format!("{user_id}:{month}"))
                    .sync(Json(SyncRequest::default()))
                    .call()
                    .await;
                match res {
                    Ok(_) => break,
                    // A cancel reaches whatever is awaited: the sync is idempotent, run it again.
                    Err(e) if is_cancel(&e) && tries < 3 => tries += 1,
                    Err(e) => {
                        out.left_behind
                            .push(format!("could not bill usage of {month}: {}", e.message()));
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// Step 4: DeprovisionIdentity of the identity's current generation, awaited. A workflow
    /// runs once per key and a second `run` call is refused, while the
    /// `customer.subscription.deleted` webhook of step 3 may have started this very run: so the
    /// run is *sent* (a duplicate is dropped; a workflow run's invocation id follows from its
    /// key, so the handle names the one run either way) and then attached to.
    async fn deprovision(
        &self,
        ctx: &WorkflowContext<'_>,
        identity_id: Uuid,
        generation: i32,
        cancelled: &mut bool,
    ) -> Result<(), TerminalError> {
        let key = identity_key(identity_id, generation);
        let run = ctx
            .workflow_client::<DeprovisionIdentityClient>(key)
            .run(Json(DeprovisionRequest { identity_id }))
            .send()
            .await?;
        loop {
            match run.attach::<String>().await {
                Ok(_) => return Ok(()),
                Err(e) if is_cancel(&e) => *cancelled = true,
                Err(e) => return Err(e),
            }
        }
    }

    /// Step 5: a durable timer up to `deadline_ms`. A cancel cuts a timer short, so the rest is
    /// waited again: a cancel never shortens the retention.
    async fn wait_until(
        &self,
        ctx: &WorkflowContext<'_>,
        deadline_ms: i64,
        cancelled: &mut bool,
    ) -> Result<(), TerminalError> {
        let mut reading = 0u32;
        loop {
            reading += 1;
            let now = must_finish(
                ctx,
                &format!("read the clock ({reading})"),
                cancelled,
                || async { Ok(now_ms()) },
            )
            .await?;
            if now >= deadline_ms {
                return Ok(());
            }
            let wait = Duration::from_millis(u64::try_from(deadline_ms - now).unwrap_or(0));
            match ctx.sleep(wait).await {
                Ok(()) => return Ok(()),
                Err(e) if is_cancel(&e) => *cancelled = true,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Step 1: ends access (idempotently, after the api did it too) and reads what is to undo.
async fn end_access(
    deps: &crate::deps::Deps,
    user_id: Uuid,
    retention: Duration,
) -> Result<Start, HandlerError> {
    let mut tx = deps.pool.begin().await.map_err(fail)?;
    let now = now_ms();
    let erase_after = DateTime::<Utc>::from_timestamp_millis(now).unwrap_or_default()
        + chrono::Duration::from_std(retention).unwrap_or_default();
    let ended = db::account_closing::end_access(&mut tx, user_id, erase_after)
        .await
        .map_err(fail)?
        .ok_or_else(|| TerminalError::new("no such user"))?;
    if ended.newly_closing {
        db::audit::record(
            &mut *tx,
            "CloseAccount",
            Some(user_id),
            "account.closing_requested",
            serde_json::json!({"via": "workflow"}),
        )
        .await
        .map_err(fail)?;
    }
    tx.commit().await.map_err(fail)?;
    let holdings = db::account_closing::holdings(&deps.pool, user_id)
        .await
        .map_err(fail)?;
    Ok(Start {
        // The api decided it with the request; the workflow only when the api's commit was lost.
        erase_after_ms: ended
            .state
            .erase_after
            .map_or(erase_after.timestamp_millis(), |t| t.timestamp_millis()),
        now_ms: now,
        holdings,
    })
}

/// Sorts Stripe's answer to a cancel: done, or already gone (404), or a refusal to report;
/// trouble that may pass is retried.
fn cancelled_at_stripe(result: Result<(), billing::StripeFailure>) -> Result<Undone, HandlerError> {
    match result {
        Ok(()) => Ok(Undone::Done),
        Err(billing::StripeFailure::Rejected { status: 404, .. }) => Ok(Undone::Done),
        Err(e) if e.is_retryable() => Err(e.into()),
        Err(e) => Ok(Undone::Refused(e.to_string())),
    }
}

/// Milliseconds since the epoch; only ever read inside `ctx.run`.
fn now_ms() -> i64 {
    #[allow(clippy::disallowed_methods)] // journaled by the caller's ctx.run
    let now = Utc::now().timestamp_millis();
    now
}
