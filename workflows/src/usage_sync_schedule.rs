//! UsageSync scheduling, driven by UsageScheduler: every hour (just after the hour), a sync of
//! the current month for every user with usage in it, and a final sync of the previous month
//! for every user whose month is not closed yet. The first round after a month ends therefore
//! runs about a minute after the period closes, inside Stripe's one-hour grace period before
//! invoices are finalized.

use crate::usage_sync::{SyncRequest, UsageSyncClient};
use chrono::{Duration as ChronoDuration, NaiveDate, Utc};
use domain::Month;
use restate_sdk::prelude::*;
use sqlx::PgPool;
use std::time::Duration;

/// Seconds after the hour a round runs.
const AFTER_THE_HOUR_SECS: i64 = 60;

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct RoundReport {
    /// `{user_id}:{YYYY-MM}` keys of the UsageSync runs started.
    pub started: Vec<String>,
}

/// Runs one round; returns what it started and when the next round is due.
pub async fn round(
    pool: &PgPool,
    ctx: &ObjectContext<'_>,
) -> Result<(RoundReport, Duration), HandlerError> {
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
    let this = Month::containing(today);
    let previous = Month::containing(this.first_day() - ChronoDuration::days(1));
    let mut report = RoundReport::default();
    for month in [previous, this] {
        let p = pool.clone();
        let Json(users) = ctx
            .run(|| async move {
                let users = db::usage::users_to_sync(&p, month).await?;
                Ok(Json(
                    users.into_iter().map(|u| u.to_string()).collect::<Vec<_>>(),
                ))
            })
            .name(format!("users to sync for {month}"))
            .await?;
        for user in users {
            let key = format!("{user}:{month}");
            ctx.object_client::<UsageSyncClient>(key.clone())
                .sync(Json(SyncRequest::default()))
                .send();
            report.started.push(key);
        }
    }
    Ok((report, Duration::from_secs(next_round_in(now))))
}

/// Seconds until a minute past the next hour.
pub fn next_round_in(now: i64) -> u64 {
    let next = (now.div_euclid(3600) + 1) * 3600 + AFTER_THE_HOUR_SECS;
    u64::try_from(next - now).unwrap_or(3600)
}

#[cfg(test)]
mod tests {
    use super::next_round_in;

    #[test]
    fn rounds_run_a_minute_past_each_hour() {
        assert_eq!(next_round_in(0), 3660);
        assert_eq!(next_round_in(3600 - 10), 70);
        assert_eq!(next_round_in(3600 + 60), 3600);
    }
}
