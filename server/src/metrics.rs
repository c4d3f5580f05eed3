//! One process-wide Prometheus recorder; `render()` produces the text for `GET /metrics`.
//!
//! Every metric is named `poindexter_<what>_<unit>` (`_total` for counters, `_seconds` for
//! times). Labels hold only small fixed sets (route templates, status classes, error codes,
//! provider and model family), never ids, addresses or numbers: a label per user would grow
//! the series without bound. The names an operator sees are in `docs/operations.md`.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Request latencies: fine below the 500 ms alert threshold, coarse above it.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Provisioning takes seconds to minutes (provider calls with retries, a Signal code).
const PROVISIONING_BUCKETS: &[f64] = &[
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];
/// Stripe delivers within seconds and retries for days.
const WEBHOOK_LAG_BUCKETS: &[f64] = &[
    0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0,
];

pub const PROVISIONING_TIME_TO_ACTIVE: &str = "poindexter_provisioning_time_to_active_seconds";
pub const WEBHOOK_LAG: &str = "poindexter_webhook_lag_seconds";

/// Installs the recorder on first call; later calls reuse it.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE.get_or_init(install).as_ref()
}

pub fn render() -> String {
    handle().map(|h| h.render()).unwrap_or_default()
}

fn install() -> Option<PrometheusHandle> {
    // Buckets make histograms (aggregatable across replicas, `histogram_quantile` in alerts)
    // rather than per-process summaries.
    let recorder = PrometheusBuilder::new()
        .set_buckets(LATENCY_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full(PROVISIONING_TIME_TO_ACTIVE.into()),
                PROVISIONING_BUCKETS,
            )
        })
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full(WEBHOOK_LAG.into()), WEBHOOK_LAG_BUCKETS)
        })
        .ok()?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).ok()?;
    // Without a scrape, histogram samples pile up until the next render: fold them regularly.
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_secs(5));
            upkeep.run_upkeep();
        })
        .ok()?;
    Some(handle)
}

/// `2xx`, `3xx`, `4xx` or `5xx`.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// An AI answer's tokens, by provider and model family (`poindexter_ai_tokens_total`);
/// `rate()` of it is the proxy's token throughput.
pub fn ai_tokens(provider: &str, model: &str, input: i64, output: i64) {
    let provider = match provider {
        "anthropic" => "anthropic",
        "openai" => "openai",
        _ => "other",
    };
    let family = model_family(model);
    let labels = |direction: &'static str| {
        [
            ("provider", provider),
            ("family", family),
            ("direction", direction),
        ]
    };
    metrics::counter!("poindexter_ai_tokens_total", &labels("input"))
        .increment(input.max(0) as u64);
    metrics::counter!("poindexter_ai_tokens_total", &labels("output"))
        .increment(output.max(0) as u64);
}

/// A handful of families, longest prefix first; a model name itself is caller input, so it
/// never becomes a label.
pub fn model_family(model: &str) -> &'static str {
    const FAMILIES: &[&str] = &[
        "claude-opus",
        "claude-sonnet",
        "claude-haiku",
        "claude-3-opus",
        "claude-3-5-sonnet",
        "claude-3-7-sonnet",
        "claude-3-5-haiku",
        "claude-3-haiku",
        "gpt-4o-mini",
        "gpt-4o",
        "gpt-4.1",
        "gpt-5",
        "o1",
        "o3",
        "o4",
        "text-embedding",
    ];
    FAMILIES
        .iter()
        .find(|f| model.starts_with(*f))
        .copied()
        .unwrap_or(if model.starts_with("claude") {
            "claude-other"
        } else if model.starts_with("gpt") {
            "gpt-other"
        } else {
            "other"
        })
}

/// The proxy answered an AI request (`dialect`: `openai` or `anthropic`) with `status`,
/// `elapsed` after it arrived; for a stream that is the time to the answer's head.
pub fn proxy_answered(dialect: &'static str, status: u16, elapsed: Duration) {
    metrics::histogram!(
        "poindexter_proxy_request_duration_seconds",
        "dialect" => dialect,
        "status_class" => status_class(status)
    )
    .record(elapsed.as_secs_f64());
}

/// Shows the webhook counters that alerts watch at 0 from start-up (`increase()` needs a
/// sample before the first event to see it).
pub fn register_webhooks() {
    for event in ["invoice.payment_failed", "invoice.paid"] {
        metrics::counter!("poindexter_webhook_events_total", "provider" => "stripe", "event" => event)
            .increment(0);
    }
}

/// A provider's webhook was handled: counted by event type (a fixed set; others are `other`)
/// and timed from the event's creation at the provider (`created_unix`) to now.
pub fn webhook_handled(provider: &'static str, event: &str, created_unix: i64) {
    const EVENTS: &[&str] = &[
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice.payment_failed",
        "message.received",
    ];
    let event = EVENTS
        .iter()
        .find(|e| **e == event)
        .copied()
        .unwrap_or("other");
    metrics::counter!("poindexter_webhook_events_total", "provider" => provider, "event" => event)
        .increment(1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    // A provider clock ahead of ours is not a negative lag.
    let lag = (now - created_unix as f64).max(0.0);
    metrics::histogram!(WEBHOOK_LAG, "provider" => provider).record(lag);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_few_and_fixed() {
        assert_eq!(model_family("claude-sonnet-4-5-20250929"), "claude-sonnet");
        assert_eq!(model_family("gpt-4o-mini-2024-07-18"), "gpt-4o-mini");
        assert_eq!(model_family("gpt-4o"), "gpt-4o");
        assert_eq!(model_family("claude-something-new"), "claude-other");
        assert_eq!(model_family("x".repeat(500).as_str()), "other");
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(429), "4xx");
        assert_eq!(status_class(503), "5xx");
    }
}
