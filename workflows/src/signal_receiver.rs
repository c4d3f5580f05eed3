//! SignalReceiver (virtual object, key: the phone number): receives from signal-cli on a durable
//! timer whether or not Dex polls, so nothing waits in signal-cli (which hands each message out
//! once) and the account keeps up with Signal (signal-cli's advice: receive regularly).
//!
//! Each `tick` checks the identity, then receives in one journaled step and stores what it got
//! in Postgres in the next, before scheduling the next tick as a delayed self-call. The received
//! messages are in Restate's journal once the receive step completes, so a crash (or a database
//! outage) between receive and store replays the store with the same messages; the natural key
//! (identity, sender, envelope timestamp) makes a store that runs twice a no-op. What remains is
//! the window inside the receive step itself: signal-cli answered, the journal entry is not yet
//! written.
//!
//! Timing: every `signal_receive_interval` while messages come in; after a few empty receives
//! the pause doubles up to `signal_receive_max_interval`. A registration still in progress is
//! waited for. The loop stops by itself when the identity is no longer active with Signal
//! registered (suspended, deprovisioned, failed); `start` begins it again (resumption, a new
//! registration) and is a no-op while it runs. signal-cli reporting the account unregistered
//! marks Signal `failed` with the reason and stops.

use crate::deps::SharedDeps;
use crate::step::{fail, until_done};
use db::status::{IdentityStatus, SignalStatus};
use providers::SignalError;
use restate_sdk::prelude::*;
use std::time::Duration;
use uuid::Uuid;

pub struct SignalReceiver {
    deps: SharedDeps,
}

impl SignalReceiver {
    /// Check the identity, receive, store; with `generation`, schedule the loop's next round.
    async fn round(
        &self,
        ctx: &ObjectContext<'_>,
        mut s: ReceiverStatus,
        generation: Option<u64>,
    ) -> Result<String, HandlerError> {
        let number = ctx.key().to_owned();

        let deps = self.deps.clone();
        let n = number.clone();
        let check = ctx
            .run(|| async move {
                let i = db::identities::find_by_phone(&deps.pool, &n)
                    .await
                    .map_err(fail)?;
                Ok(Json(match i {
                    None => Check::Stop {
                        identity: None,
                        why: "no identity holds this number".into(),
                    },
                    Some(i)
                        if i.status == IdentityStatus::Active
                            && i.signal_status == SignalStatus::Registered =>
                    {
                        Check::Receive(i.id)
                    }
                    Some(i)
                        if matches!(
                            i.status,
                            IdentityStatus::Active | IdentityStatus::Provisioning
                        ) && i.signal_status.in_progress() =>
                    {
                        Check::Wait
                    }
                    Some(i) => Check::Stop {
                        identity: Some(i.id),
                        why: format!("identity {}, Signal {}", i.status, i.signal_status),
                    },
                }))
            })
            .name("check identity")
            .retry_policy(until_done())
            .await?
            .into_inner();
        let settings = self.deps.config.workflows.clone();
        let identity = match check {
            Check::Stop { identity, why } => {
                s.running = false;
                s.last = Some(format!("stopped: {why}"));
                ctx.set(STATE, Json(s));
                self.record_running(ctx, identity, false).await?;
                return Ok(format!("stopped: {why}"));
            }
            Check::Wait => {
                // A registration can wait long (a captcha, an operator): back off as when quiet.
                s.quiet = s.quiet.saturating_add(1);
                let delay = next_delay(
                    settings.signal_receive_interval,
                    settings.signal_receive_max_interval,
                    s.quiet,
                );
                s.last = Some("waiting for the registration".into());
                ctx.set(STATE, Json(s));
                if let Some(generation) = generation {
                    ctx.object_client::<SignalReceiverClient>(number)
                        .tick(generation)
                        .send_after(delay);
                }
                return Ok("waiting for the registration".into());
            }
            Check::Receive(id) => id,
        };

        let deps = self.deps.clone();
        let n = number.clone();
        let receipt = ctx
            .run(|| async move {
                let result = deps.signal.receive(&n).await;
                let outcome = match &result {
                    Ok(got) => {
                        metrics::counter!("poindexter_signal_messages_received_total")
                            .increment(got.len() as u64);
                        #[allow(clippy::disallowed_methods)] // inside ctx.run, for the metric only
                        let now = chrono::Utc::now().timestamp() as f64;
                        // No number label: a phone number is personal data and one series per number.
                        metrics::gauge!("poindexter_signal_last_receive_timestamp_seconds")
                            .set(now);
                        "ok"
                    }
                    Err(SignalError::NotRegistered(_)) => "unregistered",
                    Err(_) => "failed",
                };
                metrics::counter!("poindexter_signal_receives_total", "outcome" => outcome)
                    .increment(1);
                Ok(Json(match result {
                    Ok(got) => Receipt::Messages(
                        got.into_iter()
                            .map(|m| Message {
                                sender: m.source,
                                sender_name: m.source_name.filter(|n| !n.is_empty()),
                                sent_at_ms: m.timestamp,
                                body: m.message,
                            })
                            .collect(),
                    ),
                    Err(SignalError::NotRegistered(m)) => Receipt::Unregistered(m),
                    Err(e) => Receipt::Failed(e.to_string()),
                }))
            })
            .name("receive from signal-cli")
            .await?
            .into_inner();

        let deps = self.deps.clone();
        let n = number.clone();
        let retention =
            i64::try_from(settings.signal_message_retention.as_secs()).unwrap_or(i64::MAX);
        let (outcome, received) = match receipt {
            Receipt::Messages(messages) => {
                let count = messages.len();
                let new = ctx
                    .run(|| async move {
                        let rows: Vec<db::signal_messages::NewMessage> = messages
                            .into_iter()
                            .map(|m| db::signal_messages::NewMessage {
                                sender: m.sender,
                                sender_name: m.sender_name,
                                sent_at_ms: m.sent_at_ms,
                                body: m.body,
                            })
                            .collect();
                        let new = db::signal_messages::store(&deps.pool, identity, &n, &rows)
                            .await
                            .map_err(fail)?;
                        db::signal_messages::erase_older_than(&deps.pool, identity, retention)
                            .await
                            .map_err(fail)?;
                        Ok(new)
                    })
                    .name("store messages")
                    .retry_policy(until_done())
                    .await?;
                (format!("received {count}, {new} new"), count > 0)
            }
            Receipt::Unregistered(m) => {
                let why = format!(
                    "signal-cli reports the account unregistered ({m}); an operator must \
                     re-register the number (docs/operations.md, Signal receivers)"
                );
                let w = why.clone();
                ctx.run(|| async move {
                    db::signal_messages::record_error(&deps.pool, &n, identity, &w)
                        .await
                        .map_err(fail)?;
                    db::identities::set_signal_if_wanted(
                        &deps.pool,
                        identity,
                        &n,
                        SignalStatus::Failed,
                        Some(&w),
                    )
                    .await
                    .map_err(fail)?;
                    db::signal_messages::set_running(&deps.pool, &n, identity, false)
                        .await
                        .map_err(fail)?;
                    Ok(())
                })
                .name("mark signal failed")
                .retry_policy(until_done())
                .await?;
                s.running = false;
                s.last = Some(format!("stopped: {why}"));
                ctx.set(STATE, Json(s));
                return Ok(format!("stopped: {why}"));
            }
            Receipt::Failed(m) => {
                let w = m.clone();
                ctx.run(|| async move {
                    db::signal_messages::record_error(&deps.pool, &n, identity, &w)
                        .await
                        .map_err(fail)?;
                    Ok(())
                })
                .name("record receive error")
                .retry_policy(until_done())
                .await?;
                (format!("receive failed: {m}"), false)
            }
        };
        s.quiet = if received {
            0
        } else {
            s.quiet.saturating_add(1)
        };
        let delay = next_delay(
            settings.signal_receive_interval,
            settings.signal_receive_max_interval,
            s.quiet,
        );
        s.last = Some(outcome.clone());
        ctx.set(STATE, Json(s));
        if let Some(generation) = generation {
            ctx.object_client::<SignalReceiverClient>(number)
                .tick(generation)
                .send_after(delay);
        }
        Ok(outcome)
    }

    pub fn new(deps: SharedDeps) -> Self {
        Self { deps }
    }
}

/// What the identity holding the number allows.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
enum Check {
    Receive(Uuid),
    /// Registration in progress: look again later.
    Wait,
    Stop {
        identity: Option<Uuid>,
        why: String,
    },
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Message {
    sender: String,
    sender_name: Option<String>,
    sent_at_ms: i64,
    body: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
enum Receipt {
    Messages(Vec<Message>),
    Unregistered(String),
    /// signal-cli failed this time (recorded; the next tick tries again).
    Failed(String),
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ReceiverStatus {
    pub running: bool,
    pub generation: u64,
    /// Empty receives in a row.
    pub quiet: u32,
    pub last: Option<String>,
}

const STATE: &str = "state";
/// Empty receives before the pause starts doubling.
const QUIET_BEFORE_BACKOFF: u32 = 6;

/// The pause before the next receive after `quiet` empty ones in a row.
pub fn next_delay(interval: Duration, max: Duration, quiet: u32) -> Duration {
    let doublings = quiet.saturating_sub(QUIET_BEFORE_BACKOFF).min(16);
    interval
        .saturating_mul(1 << doublings)
        .min(max.max(interval))
}

#[restate_sdk::object]
impl SignalReceiver {
    /// Begins the receive loop (no-op while it runs).
    #[handler]
    async fn start(&self, ctx: ObjectContext<'_>) -> Result<String, HandlerError> {
        let mut s = ctx
            .get::<Json<ReceiverStatus>>(STATE)
            .await?
            .map(Json::into_inner)
            .unwrap_or_default();
        if s.running {
            return Ok("already running".into());
        }
        s.running = true;
        s.generation += 1;
        s.quiet = 0;
        s.last = Some("started".into());
        let generation = s.generation;
        ctx.set(STATE, Json(s));
        ctx.object_client::<SignalReceiverClient>(ctx.key())
            .tick(generation)
            .send();
        Ok("started".into())
    }

    /// Stops the loop (the scheduled tick finds itself stale).
    #[handler]
    async fn stop(&self, ctx: ObjectContext<'_>) -> Result<String, HandlerError> {
        let Some(Json(mut s)) = ctx.get::<Json<ReceiverStatus>>(STATE).await? else {
            return Ok("not running".into());
        };
        s.running = false;
        s.last = Some("stopped by request".into());
        ctx.set(STATE, Json(s));
        self.record_running(&ctx, None, false).await?;
        Ok("stopped".into())
    }

    /// One round of the loop: check, receive, store, schedule the next.
    #[handler]
    async fn tick(&self, ctx: ObjectContext<'_>, generation: u64) -> Result<String, HandlerError> {
        let Some(Json(s)) = ctx.get::<Json<ReceiverStatus>>(STATE).await? else {
            return Ok("stale tick".into());
        };
        if !s.running || s.generation != generation {
            return Ok("stale tick".into());
        }
        self.round(&ctx, s, Some(generation)).await
    }

    /// One round now, for a read of the messages: received messages are journaled before
    /// they are stored, as in the loop, so a crash of the reader loses none. Schedules nothing.
    #[handler]
    async fn receive_now(&self, ctx: ObjectContext<'_>) -> Result<String, HandlerError> {
        let s = ctx
            .get::<Json<ReceiverStatus>>(STATE)
            .await?
            .map(Json::into_inner)
            .unwrap_or_default();
        self.round(&ctx, s, None).await
    }
    #[handler]
    async fn status(
        &self,
        ctx: SharedObjectContext<'_>,
    ) -> Result<Json<ReceiverStatus>, HandlerError> {
        Ok(ctx
            .get::<Json<ReceiverStatus>>(STATE)
            .await?
            .unwrap_or_default())
    }
}

impl SignalReceiver {
    /// Mirrors the loop's state into `signal_receivers.running` for the operator view.
    async fn record_running(
        &self,
        ctx: &ObjectContext<'_>,
        identity: Option<Uuid>,
        running: bool,
    ) -> Result<(), HandlerError> {
        let deps = self.deps.clone();
        let number = ctx.key().to_owned();
        ctx.run(|| async move {
            let identity = match identity {
                Some(i) => Some(i),
                None => db::identities::find_by_phone(&deps.pool, &number)
                    .await
                    .map_err(fail)?
                    .map(|i| i.id),
            };
            // No identity holds the number any more: its row went with it.
            if let Some(identity) = identity {
                db::signal_messages::set_running(&deps.pool, &number, identity, running)
                    .await
                    .map_err(fail)?;
            }
            Ok(())
        })
        .name(if running {
            "record running"
        } else {
            "record stopped"
        })
        .retry_policy(until_done())
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::next_delay;
    use std::time::Duration;

    #[test]
    fn quiet_numbers_back_off_to_the_maximum() {
        let (i, max) = (Duration::from_secs(10), Duration::from_secs(300));
        assert_eq!(next_delay(i, max, 0), i);
        assert_eq!(next_delay(i, max, 6), i);
        assert_eq!(next_delay(i, max, 7), Duration::from_secs(20));
        assert_eq!(next_delay(i, max, 9), Duration::from_secs(80));
        assert_eq!(next_delay(i, max, 100), max);
    }
}
