//! How a workflow step treats failure: provider errors that may pass (timeouts, 5xx, rate
//! limits) are retried by Restate with backoff; the rest are terminal and start compensation.
//! Undoing (compensations, deprovisioning) is different: it is tried until it is done, and
//! when it truly cannot be done it is reported and the workflow carries on (`undo`).

use restate_sdk::prelude::*;
use restate_sdk::serde::{Deserialize, Serialize};
use std::future::Future;
use std::time::Duration;

/// Errors that know whether trying again can help.
pub trait Retryable: std::error::Error + Send + Sync + 'static {
    fn retryable(&self) -> bool;
}

impl Retryable for providers::GoogleError {
    fn retryable(&self) -> bool {
        self.is_retryable()
    }
}
impl Retryable for providers::TelnyxError {
    fn retryable(&self) -> bool {
        self.is_retryable()
    }
}
impl Retryable for providers::SignalError {
    fn retryable(&self) -> bool {
        self.is_retryable()
    }
}
impl Retryable for sqlx::Error {
    /// The database is ours: every failure is worth retrying.
    fn retryable(&self) -> bool {
        true
    }
}

/// Errors that can say "the resource is already gone": for a removal, that counts as done.
pub trait Gone {
    fn gone(&self) -> bool;
}

impl Gone for providers::GoogleError {
    fn gone(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }
}
impl Gone for providers::TelnyxError {
    fn gone(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }
}
impl Gone for providers::SignalError {
    fn gone(&self) -> bool {
        matches!(self, Self::NotRegistered(_))
    }
}

/// The outcome of an idempotent removal (or suspension): done, or already gone, or a failure
/// for Restate to retry or treat as terminal.
pub fn done_if_gone<T, E: Retryable + Gone>(result: Result<T, E>) -> Result<(), HandlerError> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.gone() => Ok(()),
        Err(e) => Err(fail(e)),
    }
}

/// Releases every number ordered under `reference` (a compensation of provisioning and a step
/// of deprovisioning alike); a refusal names the number that was refused.
pub async fn release_numbers(
    deps: &crate::deps::Deps,
    reference: &str,
) -> Result<Undone, HandlerError> {
    let numbers = match deps.telnyx.numbers_by_reference(reference).await {
        Ok(numbers) => numbers,
        Err(e) => return undone(Err::<(), _>(e)),
    };
    let mut refused = Vec::new();
    for n in numbers {
        if let Undone::Refused(why) = undone(deps.telnyx.release_number(&n.id).await)? {
            refused.push(format!("{} ({}): {why}", n.phone_number, n.id));
        }
    }
    if refused.is_empty() {
        Ok(Undone::Done)
    } else {
        Ok(Undone::Refused(refused.join("; ")))
    }
}

/// A forward step's failure, already sorted: one that may pass is retried by Restate, the
/// rest end the saga (which then compensates). `?` converts any `Retryable` error into it.
#[derive(Debug)]
pub struct StepFailure {
    pub message: String,
    pub retryable: bool,
}

impl<E: Retryable> From<E> for StepFailure {
    fn from(e: E) -> Self {
        Self {
            retryable: e.retryable(),
            message: e.to_string(),
        }
    }
}

impl std::fmt::Display for StepFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl StepFailure {
    pub fn into_handler_error(self) -> HandlerError {
        if self.retryable {
            Transient(self.message).into()
        } else {
            TerminalError::new(self.message).into()
        }
    }
}

/// A failure Restate should retry, carrying only its message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Transient(String);

/// Converts a failure inside `ctx.run` into what Restate should do with it.
pub fn fail<E: Retryable>(e: E) -> HandlerError {
    if e.retryable() {
        e.into()
    } else {
        TerminalError::new(e.to_string()).into()
    }
}

/// Provider steps: retried with backoff for about a minute, then treated as terminal so the
/// saga compensates instead of hanging forever.
pub fn provider_policy() -> RunRetryPolicy {
    RunRetryPolicy::default()
        .initial_delay(Duration::from_millis(100))
        .exponentiation_factor(2.0)
        .max_delay(Duration::from_secs(5))
        .max_attempts(12)
}

/// Bookkeeping in our own database must finish: retried until it does (see `must_finish`).
pub fn until_done() -> RunRetryPolicy {
    RunRetryPolicy::new()
        .initial_delay(Duration::from_millis(200))
        .exponentiation_factor(2.0)
        .max_delay(Duration::from_secs(30))
}

/// Transient failures (5xx, timeouts) of an undo step: retried with backoff for up to half an
/// hour, after which the step is reported as not undone and the workflow carries on.
pub fn undo_policy() -> RunRetryPolicy {
    RunRetryPolicy::new()
        .initial_delay(Duration::from_millis(200))
        .exponentiation_factor(2.0)
        .max_delay(Duration::from_secs(30))
        .max_duration(Duration::from_secs(30 * 60))
}

/// How often a refused undo (403, 400…) is tried before it is reported as not undone, and the
/// first wait between tries (doubling): about half a minute in all.
pub const REFUSED_TRIES: u32 = 5;
pub const REFUSED_BACKOFF: Duration = Duration::from_secs(2);

/// The outcome of one try at undoing something (journaled).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Undone {
    /// Done, or already gone.
    Done,
    /// The provider refused; why.
    Refused(String),
}

/// Sorts a provider answer to an idempotent removal: done or gone is `Done`, a refusal is
/// `Refused` (tried again a few times by `undo`), anything that may pass is retried by Restate.
pub fn undone<T, E: Retryable + Gone>(result: Result<T, E>) -> Result<Undone, HandlerError> {
    match result {
        Ok(_) => Ok(Undone::Done),
        Err(e) if e.gone() => Ok(Undone::Done),
        Err(e) if e.retryable() => Err(e.into()),
        Err(e) => Ok(Undone::Refused(e.to_string())),
    }
}

/// True for the error Restate's SDK hands the workflow when an operator cancelled the
/// invocation (delivered once, to whatever the workflow awaited at that moment).
pub fn is_cancel(e: &TerminalError) -> bool {
    e.code() == 409 && e.message() == "cancelled"
}

/// Runs an undo step (`what` names the resource) until it is done: a refusal is tried again
/// `REFUSED_TRIES` times with a durable backoff, transient failures are retried under
/// `undo_policy`, and a cancel does not interrupt it. `Ok(None)` when done, `Ok(Some(why))`
/// when it could not be undone: the caller reports it and carries on.
pub async fn undo<F, Fut>(
    ctx: &WorkflowContext<'_>,
    what: &str,
    cancelled: &mut bool,
    step: F,
) -> Result<Option<String>, TerminalError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Json<Undone>, HandlerError>> + Send + 'static,
{
    let mut backoff = REFUSED_BACKOFF;
    let mut tries = 0u32;
    let mut journal_entry = 0u32;
    loop {
        journal_entry += 1;
        let name = if journal_entry == 1 {
            what.to_owned()
        } else {
            format!("{what} (try {journal_entry})")
        };
        let fut = step();
        let why = match ctx
            .run(move || fut)
            .name(name)
            .retry_policy(undo_policy())
            .await
        {
            Ok(Json(Undone::Done)) => return Ok(None),
            Ok(Json(Undone::Refused(why))) => why,
            Err(e) if is_cancel(&e) => {
                *cancelled = true;
                continue;
            }
            // The transient failures outlasted `undo_policy`.
            Err(e) => return Ok(Some(e.message().to_owned())),
        };
        tries += 1;
        if tries >= REFUSED_TRIES {
            return Ok(Some(why));
        }
        if let Err(e) = ctx.sleep(backoff).await {
            if !is_cancel(&e) {
                return Err(e);
            }
            *cancelled = true;
        }
        backoff *= 2;
    }
}

/// Reports what `undo` could not undo, one `identity.left_behind` audit entry each, as part of
/// the transaction that closes the identity (`failed` after a rollback, `deleted`).
pub async fn audit_left_behind(
    tx: &mut sqlx::PgConnection,
    actor: &str,
    user_id: uuid::Uuid,
    identity_id: uuid::Uuid,
    left_behind: &[String],
) -> Result<(), sqlx::Error> {
    for what in left_behind {
        let detail = serde_json::json!({ "identity_id": identity_id, "what": what });
        db::audit::record(
            &mut *tx,
            actor,
            Some(user_id),
            "identity.left_behind",
            detail,
        )
        .await?;
    }
    Ok(())
}

/// Runs bookkeeping that must finish (our own database), retried until done; a cancel does
/// not interrupt it (it runs again: it is idempotent).
pub async fn must_finish<T, F, Fut>(
    ctx: &WorkflowContext<'_>,
    name: &str,
    cancelled: &mut bool,
    step: F,
) -> Result<T, TerminalError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, HandlerError>> + Send + 'static,
    T: Serialize + Deserialize + 'static,
{
    loop {
        let fut = step();
        match ctx
            .run(move || fut)
            .name(name)
            .retry_policy(until_done())
            .await
        {
            Err(e) if is_cancel(&e) => *cancelled = true,
            other => return other,
        }
    }
}
