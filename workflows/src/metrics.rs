//! Provisioning metrics, each recorded with one line from the saga, inside the journaled step
//! that does the thing (so a replay of the workflow does not count it again):
//! `poindexter_provisioning_{started,succeeded,failed}_total` and
//! `poindexter_provisioning_time_to_active_seconds`.

use uuid::Uuid;

/// Shows the counters at 0 from start-up: `increase()` in an alert needs a sample before the
/// first failure to see it.
pub fn register() {
    for name in [
        "poindexter_provisioning_started_total",
        "poindexter_provisioning_succeeded_total",
        "poindexter_provisioning_failed_total",
    ] {
        metrics::counter!(name).increment(0);
    }
}

pub fn provisioning_started() {
    metrics::counter!("poindexter_provisioning_started_total").increment(1);
}

/// Counts a success and records the time from the identity's first provisioning step to now.
/// The start is read from Postgres (`provisioning_steps.started_at`), not held in memory,
/// so a workflows restart in the middle still gives the whole time.
pub async fn provisioning_succeeded(pool: &sqlx::PgPool, identity: Uuid) {
    metrics::counter!("poindexter_provisioning_succeeded_total").increment(1);
    let took: Result<Option<f64>, _> = sqlx::query_scalar(
        "SELECT extract(epoch FROM now() - min(started_at))::float8
           FROM provisioning_steps WHERE identity_id = $1",
    )
    .bind(identity)
    .fetch_one(pool)
    .await;
    match took {
        Ok(Some(secs)) => {
            metrics::histogram!(server::metrics::PROVISIONING_TIME_TO_ACTIVE).record(secs.max(0.0))
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "could not read when provisioning started"),
    }
}

pub fn provisioning_failed() {
    metrics::counter!("poindexter_provisioning_failed_total").increment(1);
}
