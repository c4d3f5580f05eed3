//! The metrics every proxied request updates, through handles each serving thread keeps.
//!
//! `metrics::counter!(name, labels)` builds a key, hashes it and looks it up in the recorder's
//! registry on every call: five of them a request cost ~6k instructions, ~7% of a proxied
//! request. A handle, once fetched, is the registry's own atomic, so each thread fetches each
//! labelled series once and reuses it. (The recorder is installed when the proxy is built,
//! `server::health::router`, before any request: no handle is fetched from the no-op one.)
//! Names and labels are those of `server::metrics`, which documents them.

use crate::errors::Dialect;
use metrics::{Counter, Histogram};
use std::cell::RefCell;
use std::time::Duration;

const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

#[derive(Default)]
struct Handles {
    /// `poindexter_proxy_requests_total` by dialect and status class (2xx, 4xx, 5xx).
    requests: [[Option<Counter>; 3]; 2],
    /// `poindexter_proxy_request_duration_seconds` by dialect and status class.
    durations: [[Option<Histogram>; 5]; 2],
    usage_events: Option<Counter>,
    /// `poindexter_ai_tokens_total`: (provider, family, input, output). The labels are
    /// `&'static str`s from fixed lists, so a handful of entries.
    tokens: Vec<(&'static str, &'static str, Counter, Counter)>,
}

thread_local! {
    static HANDLES: RefCell<Handles> = RefCell::default();
}

fn dialect_label(dialect: Dialect) -> (usize, &'static str) {
    match dialect {
        Dialect::OpenAi => (0, "openai"),
        Dialect::Anthropic => (1, "anthropic"),
    }
}

/// `poindexter_proxy_requests_total{dialect, status_class}`: 2xx, 4xx, and anything else as
/// 5xx.
pub fn request_answered(dialect: Dialect, status: u16) {
    let (d, dialect) = dialect_label(dialect);
    let (c, class) = match status {
        200..=299 => (0, "2xx"),
        400..=499 => (1, "4xx"),
        _ => (2, "5xx"),
    };
    HANDLES.with_borrow_mut(|h| {
        h.requests[d][c]
            .get_or_insert_with(|| {
                metrics::counter!("poindexter_proxy_requests_total", "dialect" => dialect, "status_class" => class)
            })
            .increment(1);
    });
}

/// As `server::metrics::proxy_answered`.
pub fn answered_in(dialect: Dialect, status: u16, elapsed: Duration) {
    let (d, dialect) = dialect_label(dialect);
    let class = server::metrics::status_class(status);
    let c = STATUS_CLASSES.iter().position(|s| *s == class).unwrap_or(4);
    HANDLES.with_borrow_mut(|h| {
        h.durations[d][c]
            .get_or_insert_with(|| {
                metrics::histogram!(
                    "poindexter_proxy_request_duration_seconds",
                    "dialect" => dialect,
                    "status_class" => STATUS_CLASSES[c]
                )
            })
            .record(elapsed.as_secs_f64());
    });
}

/// `poindexter_usage_events_total` and, as `server::metrics::ai_tokens`, the answer's tokens.
pub fn metered(provider: &str, model: &str, input: i64, output: i64) {
    let provider = match provider {
        "anthropic" => "anthropic",
        "openai" => "openai",
        _ => "other",
    };
    let family = server::metrics::model_family(model);
    HANDLES.with_borrow_mut(|h| {
        h.usage_events
            .get_or_insert_with(|| metrics::counter!("poindexter_usage_events_total"))
            .increment(1);
        let i = match h
            .tokens
            .iter()
            .position(|(p, f, _, _)| *p == provider && *f == family)
        {
            Some(i) => i,
            None => {
                let labels = |direction: &'static str| {
                    [
                        ("provider", provider),
                        ("family", family),
                        ("direction", direction),
                    ]
                };
                h.tokens.push((
                    provider,
                    family,
                    metrics::counter!("poindexter_ai_tokens_total", &labels("input")),
                    metrics::counter!("poindexter_ai_tokens_total", &labels("output")),
                ));
                h.tokens.len() - 1
            }
        };
        let (_, _, inputs, outputs) = &h.tokens[i];
        inputs.increment(input.max(0) as u64);
        outputs.increment(output.max(0) as u64);
    });
}
