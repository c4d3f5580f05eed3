//! SignalRegistration (workflow, key: the phone number): register with signal-cli, then wait on
//! a durable promise for the SMS code, which the api resolves when Telnyx delivers the SMS (a
//! code that arrives before the wait is kept by the promise). A wrong or expired code, or none
//! within the timeout, starts another round after a backoff; after the last round the
//! registration is `failed` and the workflow waits for an operator's retry. A captcha demand
//! waits on a promise for the operator's token; a registration lock is the operator's to solve.
//! An operator's cancel (Restate admin API) gives up the current attempt: the registration is
//! `failed` ("cancelled by an operator") and waits for a retry like any failure; the identity
//! stays as it is. A cancel while it already waits for a retry changes nothing.

use crate::contract::SignalRequest;
use crate::deps::SharedDeps;
use crate::step::{done_if_gone, fail, is_cancel, must_finish, until_done};
use db::status::SignalStatus;
use providers::signal::RegisterOptions;
use providers::SignalError;
use restate_sdk::prelude::*;
use std::time::Duration;
use uuid::Uuid;

pub struct SignalRegistration {
    deps: SharedDeps,
}

impl SignalRegistration {
    pub fn new(deps: SharedDeps) -> Self {
        Self { deps }
    }
}

/// How long and how often a registration tries. Journaled once when the workflow starts, so a
/// redeploy with other settings cannot change how an in-flight registration replays.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Settings {
    code_timeout_ms: u64,
    max_rounds: u32,
    backoff_ms: u64,
}

impl Settings {
    fn of(config: &config::WorkflowSettings) -> Self {
        Self {
            code_timeout_ms: config.signal_code_timeout.as_millis() as u64,
            max_rounds: config.signal_max_rounds,
            backoff_ms: config.signal_backoff.as_millis() as u64,
        }
    }
}

/// What one `register` call led to (journaled; never an error for expected outcomes).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
enum Registered {
    CodeRequested,
    CaptchaRequired,
    Locked(String),
    Refused(String),
    /// The identity is being deprovisioned or no longer holds the number.
    Abandoned,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
enum Verified {
    Registered,
    WrongCode,
    Refused(String),
    Abandoned,
}

const STATUS: &str = "status";
/// The promise the next code resolves; set before each wait so the shared handlers find it.
const CODE_PROMISE: &str = "code_promise";
const CAPTCHA_PROMISE: &str = "captcha_promise";
const RETRY_PROMISE: &str = "retry_promise";

/// How a run of registration rounds ended.
enum Attempt {
    Registered,
    /// Out of rounds, locked or refused: the operator's to retry.
    Failed(String),
    /// The identity is going away or moved to another number: stop for good.
    Abandoned,
}

/// Records `status` if the identity still wants `number` registered; false when it is going
/// away or moved to another number (db::identities::set_signal_if_wanted).
async fn wanted(
    deps: &crate::deps::Deps,
    identity: Uuid,
    number: &str,
    status: SignalStatus,
) -> Result<bool, HandlerError> {
    db::identities::set_signal_if_wanted(&deps.pool, identity, number, status, None)
        .await
        .map_err(fail)
}

/// Undoes a registration whose identity went away while signal-cli was working on it.
async fn undo(deps: &crate::deps::Deps, number: &str) -> Result<(), HandlerError> {
    done_if_gone(deps.signal.unregister(number, true).await)
}

/// Records the registration's state; a no-op once the identity is going away (the next
/// signal-cli step notices and stops).
async fn mark(
    deps: &crate::deps::Deps,
    identity: Uuid,
    number: &str,
    status: SignalStatus,
    reason: Option<&str>,
) -> Result<(), HandlerError> {
    db::identities::set_signal_if_wanted(&deps.pool, identity, number, status, reason)
        .await
        .map(|_| ())
        .map_err(fail)
}

#[restate_sdk::workflow]
impl SignalRegistration {
    #[handler]
    async fn run(
        &self,
        ctx: WorkflowContext<'_>,
        req: Json<SignalRequest>,
    ) -> Result<String, HandlerError> {
        let req = req.into_inner();
        let configured = Settings::of(&self.deps.config.workflows);
        let settings = ctx
            .run(|| async move { Ok(Json(configured)) })
            .name("registration settings")
            .await?
            .into_inner();
        let mut operator_round = 0u32;
        loop {
            let failure = match self.attempt(&ctx, &req, operator_round, &settings).await {
                Ok(Attempt::Registered) => return Ok("registered".into()),
                Ok(Attempt::Abandoned) => {
                    ctx.set(STATUS, "abandoned".to_string());
                    return Ok("abandoned".into());
                }
                Ok(Attempt::Failed(reason)) => reason,
                // An operator's cancel gives up the current attempt: it fails like any other,
                // and waits for a retry below (the identity is not touched).
                Err(e) if is_cancel(&e) => "cancelled by an operator".to_owned(),
                Err(e) => return Err(e.into()),
            };
            // Out of rounds (or locked, or cancelled): report, then wait for an operator to
            // retry. The state is set before the database says `failed`, so a retry the
            // operator sends as soon as they see it finds the promise to resolve.
            let retry_key = format!("retry-{operator_round}");
            ctx.set(RETRY_PROMISE, retry_key.clone());
            ctx.set(STATUS, format!("failed: {failure}"));
            let deps = self.deps.clone();
            let (id, number) = (req.identity_id, req.number.clone());
            let mut cancelled = false;
            must_finish(&ctx, "mark signal failed", &mut cancelled, || {
                let (deps, number, why) = (deps.clone(), number.clone(), failure.clone());
                async move { mark(&deps, id, &number, SignalStatus::Failed, Some(&why)).await }
            })
            .await?;
            // A cancel while it waits changes nothing: it is already failed.
            loop {
                match ctx.promise::<String>(&retry_key).await {
                    Ok(_) => break,
                    Err(e) if is_cancel(&e) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            operator_round += 1;
        }
    }

    /// Hands in the SMS text or the bare code (the api calls this from the Telnyx webhook).
    #[handler]
    async fn submit_code(
        &self,
        ctx: SharedWorkflowContext<'_>,
        code: String,
    ) -> Result<(), HandlerError> {
        let digits: String = code.chars().filter(char::is_ascii_digit).collect();
        if digits.len() != 6 {
            return Err(TerminalError::new("a Signal code has six digits").into());
        }
        let key = ctx
            .get::<String>(CODE_PROMISE)
            .await?
            .unwrap_or_else(|| "code-0-0".into());
        // A second delivery of a code for the same wait changes nothing.
        if ctx.peek_promise::<String>(&key).await?.is_none() {
            ctx.resolve_promise(&key, digits);
        }
        Ok(())
    }

    /// Hands in an operator's captcha token when the registration asked for one.
    #[handler]
    async fn submit_captcha(
        &self,
        ctx: SharedWorkflowContext<'_>,
        token: String,
    ) -> Result<(), HandlerError> {
        let Some(key) = ctx.get::<String>(CAPTCHA_PROMISE).await? else {
            return Err(
                TerminalError::new("this registration is not waiting for a captcha").into(),
            );
        };
        if ctx.peek_promise::<String>(&key).await?.is_none() {
            ctx.resolve_promise(&key, token);
        }
        Ok(())
    }

    /// Starts the registration over after it failed.
    #[handler]
    async fn retry(&self, ctx: SharedWorkflowContext<'_>) -> Result<(), HandlerError> {
        let status = ctx.get::<String>(STATUS).await?.unwrap_or_default();
        let Some(key) = ctx
            .get::<String>(RETRY_PROMISE)
            .await?
            .filter(|_| status.starts_with("failed"))
        else {
            return Err(
                TerminalError::new("this registration has not failed; nothing to retry").into(),
            );
        };
        if ctx.peek_promise::<String>(&key).await?.is_none() {
            ctx.resolve_promise(&key, "retry".to_string());
        }
        Ok(())
    }

    #[handler]
    async fn status(&self, ctx: SharedWorkflowContext<'_>) -> Result<String, HandlerError> {
        Ok(ctx
            .get::<String>(STATUS)
            .await?
            .unwrap_or_else(|| "starting".into()))
    }
}

impl SignalRegistration {
    /// Up to `max_rounds` registrations, ending registered, failed (why) or abandoned.
    async fn attempt(
        &self,
        ctx: &WorkflowContext<'_>,
        req: &SignalRequest,
        operator_round: u32,
        settings: &Settings,
    ) -> Result<Attempt, TerminalError> {
        let id = req.identity_id;
        let mut backoff = Duration::from_millis(settings.backoff_ms);
        let mut last = String::from("no code arrived");
        for round in 0..settings.max_rounds {
            let code_key = format!("code-{operator_round}-{round}");
            ctx.set(CODE_PROMISE, code_key.clone());
            ctx.set(STATUS, format!("registering (round {})", round + 1));
            let mut captcha: Option<String> = None;
            let mut captchas = 0u32;
            loop {
                let deps = self.deps.clone();
                let (number, token) = (req.number.clone(), captcha.clone());
                let outcome = ctx
                    .run(|| async move {
                        if !wanted(&deps, id, &number, SignalStatus::Pending).await? {
                            return Ok(Json(Registered::Abandoned));
                        }
                        let opts = RegisterOptions {
                            captcha: token,
                            use_voice: false,
                        };
                        let result = deps.signal.register(&number, &opts).await;
                        // Deprovisioning may have started while signal-cli worked.
                        if !wanted(&deps, id, &number, SignalStatus::Pending).await? {
                            undo(&deps, &number).await?;
                            return Ok(Json(Registered::Abandoned));
                        }
                        match result {
                            Ok(()) => Ok(Json(Registered::CodeRequested)),
                            Err(SignalError::CaptchaRequired(_)) => {
                                Ok(Json(Registered::CaptchaRequired))
                            }
                            Err(SignalError::RegistrationLocked(m)) => {
                                Ok(Json(Registered::Locked(m)))
                            }
                            Err(e) if !e.is_retryable() => {
                                Ok(Json(Registered::Refused(e.to_string())))
                            }
                            Err(e) => Err(fail(e)),
                        }
                    })
                    .name(format!("register with signal-cli (round {})", round + 1))
                    .retry_policy(until_done())
                    .await?
                    .into_inner();
                match outcome {
                    Registered::CodeRequested => break,
                    Registered::Abandoned => return Ok(Attempt::Abandoned),
                    Registered::Locked(m) => {
                        return Ok(Attempt::Failed(format!("registration lock: {m}")))
                    }
                    Registered::Refused(m) => return Ok(Attempt::Failed(m)),
                    Registered::CaptchaRequired => {
                        let key = format!("captcha-{operator_round}-{round}-{captchas}");
                        captchas += 1;
                        ctx.set(CAPTCHA_PROMISE, key.clone());
                        ctx.set(STATUS, "waiting for a captcha token".to_string());
                        let (deps, number) = (self.deps.clone(), req.number.clone());
                        ctx.run(|| async move {
                            mark(&deps, id, &number, SignalStatus::CaptchaRequired, None).await
                        })
                        .name("mark captcha required")
                        .retry_policy(until_done())
                        .await?;
                        captcha = Some(ctx.promise::<String>(&key).await?);
                        ctx.clear(CAPTCHA_PROMISE);
                    }
                }
            }

            ctx.set(
                STATUS,
                format!("waiting for the SMS code (round {})", round + 1),
            );
            let code: Option<String> = restate_sdk::select! {
                code = ctx.promise::<String>(&code_key) => Some(code?),
                _ = ctx.sleep(Duration::from_millis(settings.code_timeout_ms)) => None,
            };
            match code {
                Some(code) => {
                    let deps = self.deps.clone();
                    let number = req.number.clone();
                    let verified = ctx
                        .run(|| async move {
                            if !wanted(&deps, id, &number, SignalStatus::Pending).await? {
                                return Ok(Json(Verified::Abandoned));
                            }
                            match deps.signal.verify(&number, &code, None).await {
                                Ok(()) => {
                                    if wanted(&deps, id, &number, SignalStatus::Registered).await? {
                                        Ok(Json(Verified::Registered))
                                    } else {
                                        undo(&deps, &number).await?;
                                        Ok(Json(Verified::Abandoned))
                                    }
                                }
                                Err(SignalError::InvalidCode(_)) => Ok(Json(Verified::WrongCode)),
                                Err(e) if !e.is_retryable() => {
                                    Ok(Json(Verified::Refused(e.to_string())))
                                }
                                Err(e) => Err(fail(e)),
                            }
                        })
                        .name(format!("verify code (round {})", round + 1))
                        .retry_policy(until_done())
                        .await?
                        .into_inner();
                    match verified {
                        Verified::Registered => {
                            ctx.set(STATUS, "registered".to_string());
                            return Ok(Attempt::Registered);
                        }
                        Verified::Abandoned => return Ok(Attempt::Abandoned),
                        Verified::WrongCode => last = "the code was wrong or expired".into(),
                        Verified::Refused(m) => last = m,
                    }
                }
                None => last = "no code arrived in time".into(),
            }
            ctx.sleep(backoff).await?;
            backoff *= 2;
        }
        Ok(Attempt::Failed(format!(
            "{last} after {} rounds",
            settings.max_rounds
        )))
    }
}
