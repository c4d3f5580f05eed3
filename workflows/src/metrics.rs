//! Provisioning metrics, each recorded with one line from the saga, inside the journaled step
//! that does the thing (so a replay of the workflow does not count it again):
//! `poindexter_provisioning_{started,succeeded,failed}_total` and
//! `poindexter_provisioning_time_to_active_seconds`.

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

/// Counts a success and records its time to active: from the identity's first provisioning
/// step (`provisioning_steps.started_at`, so a workflows restart midway still gives the whole
/// time) to now, as `db::identities::activate` returns it.
pub fn provisioning_succeeded(time_to_active: Option<f64>) {
    metrics::counter!("poindexter_provisioning_succeeded_total").increment(1);
    if let Some(secs) = time_to_active {
        metrics::histogram!(server::metrics::PROVISIONING_TIME_TO_ACTIVE).record(secs.max(0.0));
    }
}

pub fn provisioning_failed() {
    metrics::counter!("poindexter_provisioning_failed_total").increment(1);
}
