//! How a workflow step treats failure: provider errors that may pass (timeouts, 5xx, rate
//! limits) are retried by Restate with backoff; the rest are terminal and start compensation.

use restate_sdk::prelude::*;
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
/// of deprovisioning alike).
pub async fn release_numbers(
    deps: &crate::deps::Deps,
    reference: &str,
) -> Result<(), HandlerError> {
    let numbers = deps
        .telnyx
        .numbers_by_reference(reference)
        .await
        .map_err(fail)?;
    for n in numbers {
        done_if_gone(deps.telnyx.release_number(&n.id).await)?;
    }
    Ok(())
}

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

/// Compensations and bookkeeping must finish: retried until they do.
pub fn until_done() -> RunRetryPolicy {
    RunRetryPolicy::new()
        .initial_delay(Duration::from_millis(200))
        .exponentiation_factor(2.0)
        .max_delay(Duration::from_secs(30))
}
