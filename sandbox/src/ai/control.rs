//! `PUT /_sandbox/ai` sets how the AI emulators answer (latency, length, failures);
//! `GET` shows the settings and what was received; `DELETE` restores the defaults.
//!
//! Body of `PUT` (every field optional):
//! `{"first_token_ms": 0, "inter_token_ms": 0, "tokens": 16, "cached_tokens": 0,
//!   "fail_status": 429, "fail_count": 2, "retry_after_s": 1, "cut_after": 5, "stall_after": 3}`
//! - `fail_status` (429, 500, 503, 529, ...) answers the next `fail_count` requests (all, when
//!   absent) with that status and the provider's error JSON; 429 carries `retry-after`.
//! - `cut_after` ends every stream abruptly after that many tokens (no final events), and
//!   breaks off every non-streamed answer halfway through its body.
//! - `stall_after` makes every stream go quiet after that many tokens, its connection open.
//! - `first_token_ms` delays a non-streamed answer's headers (a streamed one's first token):
//!   a long value emulates a provider that accepts a request and then hangs.
//!
//! `GET` also reports `requests` (received), `abandoned_streams` (streams whose reader hung
//! up before the end) and `last_request` (the last body per provider).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Delay before the first token (before the whole answer when not streaming).
    pub first_token_ms: u64,
    /// Delay between streamed tokens.
    pub inter_token_ms: u64,
    /// Completion tokens per answer (capped by the request's max_tokens).
    pub tokens: u32,
    /// Input tokens reported as served from the prompt cache.
    pub cached_tokens: u32,
    pub fail_status: Option<u16>,
    pub fail_count: Option<u64>,
    pub retry_after_s: u64,
    pub cut_after: Option<u32>,
    /// Streams go quiet after this many tokens, the connection held open, as a hung
    /// provider's would be.
    pub stall_after: Option<u32>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            first_token_ms: 0,
            inter_token_ms: 0,
            tokens: 16,
            cached_tokens: 0,
            fail_status: None,
            fail_count: None,
            retry_after_s: 1,
            cut_after: None,
            stall_after: None,
        }
    }
}

#[derive(Default)]
pub struct AiState {
    settings: RwLock<Settings>,
    failures_left: AtomicU64,
    requests: AtomicU64,
    /// Streams whose reader went away before the end.
    pub abandoned: Arc<AtomicU64>,
    /// The last request body per provider, so tests can see what an upstream was asked.
    last: Mutex<serde_json::Map<String, serde_json::Value>>,
}

/// What one request should get, decided once when it arrives.
pub enum Verdict {
    Fail { status: u16, retry_after_s: u64 },
    Serve(Settings),
}

impl AiState {
    pub fn admit(&self, provider: &str, body: &serde_json::Value) -> Verdict {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last.lock() {
            last.insert(provider.to_owned(), body.clone());
        }
        let settings = match self.settings.read() {
            Ok(s) => s.clone(),
            Err(_) => Settings::default(),
        };
        if let Some(status) = settings.fail_status {
            let take = self
                .failures_left
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok();
            if take {
                return Verdict::Fail {
                    status,
                    retry_after_s: settings.retry_after_s,
                };
            }
        }
        Verdict::Serve(settings)
    }

    pub fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
}

pub async fn show(State(state): State<Arc<AiState>>) -> impl IntoResponse {
    let settings = state.settings.read().map(|s| s.clone()).unwrap_or_default();
    let last = state
        .last
        .lock()
        .map(|l| serde_json::Value::Object(l.clone()))
        .unwrap_or_default();
    Json(serde_json::json!({
        "settings": settings,
        "requests": state.requests.load(Ordering::Relaxed),
        "failures_left": state.failures_left.load(Ordering::Relaxed),
        "abandoned_streams": state.abandoned.load(Ordering::Relaxed),
        "last_request": last,
    }))
}

pub async fn set(
    State(state): State<Arc<AiState>>,
    Json(new): Json<Settings>,
) -> impl IntoResponse {
    state
        .failures_left
        .store(new.fail_count.unwrap_or(u64::MAX), Ordering::Release);
    if let Ok(mut s) = state.settings.write() {
        *s = new.clone();
    }
    (StatusCode::OK, Json(new))
}

pub async fn reset(State(state): State<Arc<AiState>>) -> impl IntoResponse {
    state.reset();
    StatusCode::NO_CONTENT
}

impl AiState {
    /// Default settings, no pending failures, counters at zero.
    pub fn reset(&self) {
        self.failures_left.store(0, Ordering::Release);
        self.requests.store(0, Ordering::Relaxed);
        self.abandoned.store(0, Ordering::Relaxed);
        if let Ok(mut s) = self.settings.write() {
            *s = Settings::default();
        }
        if let Ok(mut l) = self.last.lock() {
            l.clear();
        }
    }
}
