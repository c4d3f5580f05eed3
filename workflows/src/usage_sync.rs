//! UsageSync (virtual object keyed `{user_id}:{YYYY-MM}`, so runs for one user and month never
//! overlap): aggregates the month's usage_events into usage_monthly, computes the overage above
//! the plan's included tokens, reports only the not-yet-reported part to Stripe as meter events
//! and records what Stripe accepted.
//!
//! Exactly once: the overage a run reports is fixed by its journaled aggregation step, so a
//! replay after a crash re-sends the same meter event under the same identifier (derived from
//! user, month, kind and the cumulative total) and Stripe counts it once. What was accepted is
//! recorded in usage_monthly.reported_* and usage_reports; that record, not Stripe's ~24 h
//! dedupe window, decides what a later run (an hour or weeks later) still has to send. Each
//! event is written down before it is sent, so a run that stops after Stripe took one (refused
//! on a retry, killed) leaves it on record as unconfirmed: the next run sends it again under its
//! identifier and counts anything new on top of it.

use billing::meter::{self, Kind};
use billing::overage::{self, Served};
use billing::StripeApi;
use chrono::{NaiveDate, Utc};
use db::usage::MeterEvent;
use domain::{Month, Plan};
use restate_sdk::prelude::*;
use sqlx::PgPool;
use uuid::Uuid;

pub struct UsageSync {
    pool: PgPool,
    stripe: StripeApi,
}

/// The state of a month as one run saw it (journaled, so a replay sees the same).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Snapshot {
    plan: Option<Plan>,
    customer: Option<String>,
    input_tokens: i64,
    output_tokens: i64,
    overage_input_tokens: i64,
    overage_output_tokens: i64,
    reported_input_tokens: i64,
    reported_output_tokens: i64,
}

/// Input of `sync`: nothing yet (an object, so callers send `{}` and options can be added).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct SyncRequest {}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SentReport {
    pub kind: Kind,
    pub identifier: String,
    pub delta: i64,
    pub cumulative: i64,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SyncReport {
    pub user_id: Uuid,
    pub month: String,
    pub plan: Option<Plan>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub overage_input_tokens: i64,
    pub overage_output_tokens: i64,
    pub overage_cost_microdollars: i64,
    /// Meter events this run sent.
    pub sent: Vec<SentReport>,
    /// Cumulative overage Stripe has accepted after this run.
    pub reported_input_tokens: i64,
    pub reported_output_tokens: i64,
    /// The month is over and this was its final run.
    pub closed: bool,
}

fn parse_key(key: &str) -> Result<(Uuid, Month), TerminalError> {
    let bad = || {
        TerminalError::new(format!(
            "UsageSync key `{key}` is not `{{user_id}}:{{YYYY-MM}}`"
        ))
    };
    let (user, month) = key.split_once(':').ok_or_else(bad)?;
    Ok((
        Uuid::parse_str(user).map_err(|_| bad())?,
        Month::parse(month).map_err(|_| bad())?,
    ))
}

/// Stripe refusing is terminal (retrying cannot help); anything else Restate retries.
fn stripe_error(e: billing::StripeFailure) -> HandlerError {
    if e.is_retryable() {
        e.into()
    } else {
        TerminalError::new(e.to_string()).into()
    }
}

/// The row of one meter event of `kind`.
fn meter_report(kind: Kind, e: &MeterEvent) -> db::usage::Report<'_> {
    db::usage::Report {
        identifier: &e.identifier,
        event_name: kind.event_name(),
        kind: kind.as_str(),
        cumulative: e.cumulative,
        delta: e.delta,
    }
}

impl UsageSync {
    pub fn new(pool: PgPool, stripe: StripeApi) -> Self {
        Self { pool, stripe }
    }

    /// Sends one meter event and records that Stripe accepted it. It is written down first,
    /// so that if the run ends before the record (refused, killed), the next run knows Stripe
    /// may have counted it.
    async fn report(
        &self,
        ctx: &ObjectContext<'_>,
        (user_id, month): (Uuid, Month),
        kind: Kind,
        customer: &str,
        event: &MeterEvent,
        now: i64,
    ) -> Result<(), HandlerError> {
        let (pool, stripe) = (self.pool.clone(), self.stripe.clone());
        let (e, customer) = (event.clone(), customer.to_owned());
        let ts = meter::event_timestamp(month, now);
        ctx.run(|| async move {
            db::usage::intend_report(&pool, user_id, month, &meter_report(kind, &e)).await?;
            stripe
                .report_meter_event(kind, &customer, e.delta, &e.identifier, ts)
                .await
                .map_err(stripe_error)
        })
        .name(format!(
            "report {} overage up to {}",
            kind.as_str(),
            event.cumulative
        ))
        .await?;

        let (pool, e) = (self.pool.clone(), event.clone());
        ctx.run(|| async move {
            db::usage::record_report(&pool, user_id, month, &meter_report(kind, &e)).await?;
            Ok(())
        })
        .name(format!("record {} report", kind.as_str()))
        .await?;
        Ok(())
    }

    async fn aggregate(
        pool: &PgPool,
        user_id: Uuid,
        month: Month,
        month_is_over: bool,
    ) -> Result<Snapshot, HandlerError> {
        let monthly = db::usage::monthly(pool, user_id, month)
            .await?
            .unwrap_or_default();
        let sub = db::subscriptions::current(pool, user_id).await?;
        let current = sub.as_ref().and_then(|s| Plan::parse(&s.plan).ok());
        let recorded = monthly.plan.as_deref().and_then(|p| Plan::parse(p).ok());
        let plan = overage::plan_for_month(recorded, current, month_is_over);
        let customer = match sub {
            Some(s) => Some(s.stripe_customer_id),
            None => db::stripe_customers::of_user(pool, user_id).await?,
        };
        let served = db::usage::served(pool, user_id, month).await?;
        let served = served.into_iter().map(|(i, o)| Served {
            input_tokens: i,
            output_tokens: o,
        });
        // Without a plan nothing is billable as overage (the proxy serves no one without one).
        let totals = overage::compute_with_allowance(plan.map(Plan::included_tokens), served);
        let cost = db::usage::totals(pool, user_id, month)
            .await?
            .cost_microdollars;
        db::usage::store_aggregate(
            pool,
            user_id,
            month,
            &db::usage::Aggregate {
                plan: plan.map(Plan::as_str),
                input_tokens: totals.input_tokens,
                output_tokens: totals.output_tokens,
                cost_microdollars: cost,
                overage_input_tokens: totals.overage.input_tokens,
                overage_output_tokens: totals.overage.output_tokens,
            },
        )
        .await?;
        Ok(Snapshot {
            plan,
            customer,
            input_tokens: totals.input_tokens,
            output_tokens: totals.output_tokens,
            overage_input_tokens: totals.overage.input_tokens,
            overage_output_tokens: totals.overage.output_tokens,
            reported_input_tokens: monthly.reported_input_tokens,
            reported_output_tokens: monthly.reported_output_tokens,
        })
    }
}

#[restate_sdk::object]
impl UsageSync {
    /// One reconciliation of this user's month; safe to run any number of times.
    #[handler]
    async fn sync(
        &self,
        ctx: ObjectContext<'_>,
        _req: Json<SyncRequest>,
    ) -> Result<Json<SyncReport>, HandlerError> {
        let (user_id, month) = parse_key(ctx.key())?;
        let now = ctx
            .run(|| async {
                #[allow(clippy::disallowed_methods)] // the one journaled clock read
                let now = Utc::now().timestamp();
                Ok(now)
            })
            .name("read clock")
            .await?;
        let today = chrono::DateTime::from_timestamp(now, 0)
            .map(|t| t.date_naive())
            .unwrap_or(NaiveDate::MIN);
        let month_is_over = month < Month::containing(today);

        let pool = self.pool.clone();
        let Json(snap) = ctx
            .run(|| async move {
                Ok(Json(
                    Self::aggregate(&pool, user_id, month, month_is_over).await?,
                ))
            })
            .name("aggregate usage")
            .await?;

        let mut report = SyncReport {
            user_id,
            month: month.to_string(),
            plan: snap.plan,
            input_tokens: snap.input_tokens,
            output_tokens: snap.output_tokens,
            overage_input_tokens: snap.overage_input_tokens,
            overage_output_tokens: snap.overage_output_tokens,
            overage_cost_microdollars: snap.plan.map_or(0, |p| {
                overage::Overage {
                    input_tokens: snap.overage_input_tokens,
                    output_tokens: snap.overage_output_tokens,
                }
                .cost_microdollars(p)
            }),
            sent: Vec::new(),
            reported_input_tokens: snap.reported_input_tokens,
            reported_output_tokens: snap.reported_output_tokens,
            closed: false,
        };

        for kind in Kind::ALL {
            let (target, reported) = match kind {
                Kind::Input => (snap.overage_input_tokens, snap.reported_input_tokens),
                Kind::Output => (snap.overage_output_tokens, snap.reported_output_tokens),
            };
            // What an earlier run sent, or may have sent, without recording Stripe's answer:
            // a run refused or killed after Stripe took its event. It goes again under its own
            // identifier (Stripe counts it once), and anything new is counted on top of it,
            // never from a total that leaves it out.
            let pool = self.pool.clone();
            let Json(state) = ctx
                .run(|| async move {
                    Ok(Json(
                        db::usage::report_state(&pool, user_id, month, kind.event_name()).await?,
                    ))
                })
                .name(format!("find unrecorded {} reports", kind.as_str()))
                .await?;
            let mut base = reported.max(state.reported);
            let mut owed: Vec<MeterEvent> = state
                .unconfirmed
                .into_iter()
                .filter(|u| u.cumulative > base)
                .collect();
            let top = owed.last().map_or(base, |o| o.cumulative);
            // Reported overage never goes back: after an upgrade raised the allowance, what was
            // billed stays billed and nothing more is sent until usage passes it again.
            if target > top {
                owed.push(MeterEvent {
                    identifier: meter::identifier(user_id, month, kind, target),
                    cumulative: target,
                    delta: target - top,
                });
            }
            if owed.is_empty() {
                continue;
            }
            let Some(customer) = snap.customer.clone() else {
                tracing::warn!(%user_id, %month, "overage but no Stripe customer; not reported");
                break;
            };
            for event in owed {
                self.report(&ctx, (user_id, month), kind, &customer, &event, now)
                    .await?;
                let MeterEvent {
                    identifier,
                    cumulative,
                    delta,
                } = event;
                base = base.max(cumulative);
                report.sent.push(SentReport {
                    kind,
                    identifier,
                    delta,
                    cumulative,
                });
            }
            match kind {
                Kind::Input => report.reported_input_tokens = base,
                Kind::Output => report.reported_output_tokens = base,
            }
        }

        if month_is_over {
            let pool = self.pool.clone();
            ctx.run(|| async move { Ok(db::usage::close(&pool, user_id, month).await?) })
                .name("close month")
                .await?;
            report.closed = true;
        }
        Ok(Json(report))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_key;

    #[test]
    fn keys_name_a_user_and_a_month() {
        let (u, m) = parse_key("00000000-0000-0000-0000-000000000001:2026-11").unwrap();
        assert_eq!(u.to_string(), "00000000-0000-0000-0000-000000000001");
        assert_eq!(m.to_string(), "2026-11");
        assert!(parse_key("nope").is_err());
        assert!(parse_key("00000000-0000-0000-0000-000000000001:2026-13").is_err());
    }
}
