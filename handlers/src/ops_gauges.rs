//! Gauges an operator watches that no single request updates, read when `/metrics` is
//! scraped (so nothing is queried while nobody watches):
//! - `poindexter_signal_registrations_waiting`: identities whose Signal registration waits
//!   for a code or a captcha;
//! - `poindexter_usage_sync_last_success_timestamp_seconds`: when a usage sync last recorded
//!   a month (the alert compares it with `time()`);
//! - `poindexter_restate_invocations_backing_off`: invocations Restate is retrying after a
//!   failure, from its admin query API; `poindexter_restate_admin_up` says whether it answered.
//!
//! Read from Postgres and Restate rather than counted in memory, so every api replica reports
//! the same truth and a restart loses nothing (dashboards take `max` across replicas).

use crate::orchestration::Restate;
use futures::FutureExt;
use server::health::ScrapeHook;
use std::sync::Arc;

/// The hook `/metrics` runs before it answers; also shows the webhook counters alerts watch.
pub fn on_scrape(pool: sqlx::PgPool, restate: Restate) -> ScrapeHook {
    server::metrics::register_webhooks();
    Arc::new(move || {
        let (pool, restate) = (pool.clone(), restate.clone());
        async move { refresh(&pool, &restate).await }.boxed()
    })
}

/// Reads everything first and then sets the gauges together, so one scrape never mixes a
/// new reading with the previous round's.
async fn refresh(pool: &sqlx::PgPool, restate: &Restate) {
    let waiting: Result<i64, _> = sqlx::query_scalar(
        "SELECT count(*) FROM identities
          WHERE signal_status IN ('pending', 'captcha_required') AND deleted_at IS NULL",
    )
    .fetch_one(pool)
    .await;
    let synced: Result<Option<f64>, _> =
        sqlx::query_scalar("SELECT extract(epoch FROM max(synced_at))::float8 FROM usage_monthly")
            .fetch_one(pool)
            .await;
    let backing_off = restate
        .query("SELECT count(*) AS n FROM sys_invocation WHERE status = 'backing-off'")
        .await;

    match waiting {
        Ok(n) => metrics::gauge!("poindexter_signal_registrations_waiting").set(n as f64),
        Err(e) => tracing::warn!(error = %e, "could not count waiting Signal registrations"),
    }
    match synced {
        Ok(Some(at)) => {
            metrics::gauge!("poindexter_usage_sync_last_success_timestamp_seconds").set(at)
        }
        // No month synced yet: no sample, rather than a 1970 timestamp that would alert.
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "could not read the last usage sync"),
    }
    match backing_off {
        Ok(rows) => {
            let n = rows
                .first()
                .and_then(|r| r["n"].as_f64())
                .unwrap_or_default();
            metrics::gauge!("poindexter_restate_invocations_backing_off").set(n);
            metrics::gauge!("poindexter_restate_admin_up").set(1.0);
        }
        Err(e) => {
            tracing::warn!(error = %e, "Restate's admin query API did not answer");
            metrics::gauge!("poindexter_restate_admin_up").set(0.0);
        }
    }
}
