//! UsageScheduler (virtual object, one key: `global`): keeps `usage_events` partitions ready
//! ahead of time. `start` begins a daily loop on a durable timer; `ensure_partitions` creates
//! this month's and the coming months' partitions, each as its own journaled step, so a crash
//! mid-way resumes where it stopped and no creation is repeated. `start` also begins the
//! hourly UsageSync rounds (`sync_tick`, see usage_sync_schedule); `sync_all` runs one round now.

use chrono::{NaiveDate, Utc};
use domain::Month;
use restate_sdk::prelude::*;
use sqlx::PgPool;
use std::time::Duration;

pub struct UsageScheduler {
    pool: PgPool,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct EnsurePartitions {
    /// How many months after the current one to prepare (at most 24).
    pub months_ahead: u32,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct PartitionReport {
    /// Months whose partition this invocation created.
    pub created: Vec<String>,
    /// Months whose partition already existed.
    pub existing: Vec<String>,
}

const ACTIVE: &str = "active";
const SYNC_ACTIVE: &str = "sync_active";
const DEFAULT_MONTHS_AHEAD: u32 = 3;
const TICK: Duration = Duration::from_secs(24 * 3600);

impl UsageScheduler {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn ensure(
        &self,
        ctx: &ObjectContext<'_>,
        months_ahead: u32,
    ) -> Result<PartitionReport, HandlerError> {
        if months_ahead > 24 {
            return Err(TerminalError::new("months_ahead must be at most 24").into());
        }
        let today = ctx
            .run(|| async {
                #[allow(clippy::disallowed_methods)] // the one journaled clock read
                let today = Utc::now().date_naive().to_string();
                Ok(today)
            })
            .name("read clock")
            .await?;
        let today: NaiveDate = today
            .parse()
            .map_err(|_| TerminalError::new("journaled date is malformed"))?;
        let mut month = Month::containing(today);
        let mut report = PartitionReport::default();
        for _ in 0..=months_ahead {
            let pool = self.pool.clone();
            let created = ctx
                .run(|| async move {
                    Ok(
                        db::partitions::ensure_usage_partition(&pool, month, "UsageScheduler")
                            .await?,
                    )
                })
                .name(format!("create partition {month}"))
                .await?;
            if created {
                report.created.push(month.to_string());
            } else {
                report.existing.push(month.to_string());
            }
            month = month.next();
        }
        Ok(report)
    }
}

#[restate_sdk::object]
impl UsageScheduler {
    /// Creates the current month's partition and `months_ahead` more.
    #[handler]
    async fn ensure_partitions(
        &self,
        ctx: ObjectContext<'_>,
        req: Json<EnsurePartitions>,
    ) -> Result<Json<PartitionReport>, HandlerError> {
        let report = self.ensure(&ctx, req.into_inner().months_ahead).await?;
        Ok(Json(report))
    }

    /// Starts the daily loop and the hourly UsageSync loop (idempotent: a loop already
    /// running is not started twice).
    #[handler]
    async fn start(&self, ctx: ObjectContext<'_>) -> Result<(), HandlerError> {
        if !ctx.get::<bool>(ACTIVE).await?.unwrap_or(false) {
            ctx.set(ACTIVE, true);
            ctx.object_client::<UsageSchedulerClient>(ctx.key())
                .tick()
                .send();
        }
        if !ctx.get::<bool>(SYNC_ACTIVE).await?.unwrap_or(false) {
            ctx.set(SYNC_ACTIVE, true);
            ctx.object_client::<UsageSchedulerClient>(ctx.key())
                .sync_tick()
                .send();
        }
        Ok(())
    }

    /// One hourly UsageSync round; schedules the next a minute past the next hour.
    #[handler]
    async fn sync_tick(&self, ctx: ObjectContext<'_>) -> Result<(), HandlerError> {
        if !ctx.get::<bool>(SYNC_ACTIVE).await?.unwrap_or(false) {
            return Ok(());
        }
        let (_, next) = crate::usage_sync_schedule::round(&self.pool, &ctx).await?;
        ctx.object_client::<UsageSchedulerClient>(ctx.key())
            .sync_tick()
            .send_after(next);
        Ok(())
    }

    /// One UsageSync round now (operators; the loop keeps its own schedule).
    #[handler]
    async fn sync_all(
        &self,
        ctx: ObjectContext<'_>,
    ) -> Result<Json<crate::usage_sync_schedule::RoundReport>, HandlerError> {
        let (report, _) = crate::usage_sync_schedule::round(&self.pool, &ctx).await?;
        Ok(Json(report))
    }

    /// One round of the loop; schedules the next on a durable timer.
    #[handler]
    async fn tick(&self, ctx: ObjectContext<'_>) -> Result<(), HandlerError> {
        if !ctx.get::<bool>(ACTIVE).await?.unwrap_or(false) {
            return Ok(());
        }
        self.ensure(&ctx, DEFAULT_MONTHS_AHEAD).await?;
        ctx.object_client::<UsageSchedulerClient>(ctx.key())
            .tick()
            .send_after(TICK);
        Ok(())
    }

    /// Stops the loop after the current round.
    #[handler]
    async fn stop(&self, ctx: ObjectContext<'_>) -> Result<(), HandlerError> {
        ctx.clear(ACTIVE);
        ctx.clear(SYNC_ACTIVE);
        Ok(())
    }
}
