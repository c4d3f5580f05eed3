//! The per-request metering guard: created when a request goes upstream, it turns what the
//! request consumed into its one usage event (reported counts when the upstream sent them,
//! otherwise an estimate of about four characters a token, marked `estimated`), and meters
//! the request even when it is dropped half-way. (Unrelated to the `billing` crate, which
//! charges for subscriptions.)

use crate::catalog::{Prices, Provider, Tokens};
use crate::keys::UserState;
use crate::tally::Tally;
use crate::usage::{Meter, UsageEvent};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;

/// Status recorded for a stream the client abandoned (nginx's convention).
pub const CLIENT_CLOSED: u16 = 499;

/// Status recorded for a request sent upstream whose answer never came back through the
/// proxy because the proxy cut it (its shutdown grace ran out) or its task failed.
pub const CUT_BY_PROXY: u16 = 503;

pub struct RequestMeter {
    pub meter: Meter,
    pub user: Arc<UserState>,
    pub key_id: Uuid,
    pub request_id: Arc<str>,
    pub model: String,
    pub provider: Provider,
    pub prices: Prices,
    pub started: Instant,
    pub created_at: DateTime<Utc>,
    /// Size of the request body, for an input estimate when no usage arrived.
    pub request_bytes: usize,
    /// Recorded; a `RequestMeter` dropped before that still meters its request (see `Drop`).
    pub(crate) done: bool,
}

impl RequestMeter {
    /// Meters a request that got no answer: no tokens, the status the caller sees.
    pub fn fail(self, error: &crate::errors::ProxyError) {
        self.finish(&Tally::default(), error.status().as_u16());
    }

    pub fn finish(mut self, tally: &Tally, status: u16) {
        self.record(tally, status);
    }

    fn record(&mut self, tally: &Tally, status: u16) {
        self.done = true;
        let mut tokens = tally.tokens;
        let mut estimated = false;
        // Only answers produce tokens (499: the client left mid-answer); an error body is not output.
        if (200..300).contains(&status) || status == CLIENT_CLOSED {
            if !tally.input_seen {
                tokens.input = (self.request_bytes as u64).div_ceil(4);
                estimated = true;
            }
            if !tally.output_seen {
                tokens.output = tokens.output.max(tally.text_chars.div_ceil(4));
                estimated = true;
            }
        } else {
            tokens = Tokens::default();
        }
        let event = UsageEvent {
            request_id: self.request_id.to_string(),
            user_id: self.user.user_id,
            api_key_id: self.key_id,
            model: std::mem::take(&mut self.model),
            provider: self.provider.as_str().to_owned(),
            input_tokens: count(tokens.input),
            output_tokens: count(tokens.output),
            cache_read_tokens: count(tokens.cache_read),
            cache_write_tokens: count(tokens.cache_write),
            cost_microdollars: count(self.prices.cost(&tokens)),
            latency_ms: self.started.elapsed().as_millis().min(i32::MAX as u128) as i32,
            status_code: i32::from(status),
            estimated,
            created_at: self.created_at,
        };
        // Counts and ids only: never prompts, answers or keys.
        tracing::debug!(
            request_id = %event.request_id,
            model = %event.model,
            status = event.status_code,
            input_tokens = event.input_tokens,
            output_tokens = event.output_tokens,
            estimated = event.estimated,
            latency_ms = event.latency_ms,
            "request metered"
        );
        self.meter.record(&self.user, event);
    }
}

/// Created once a request is going upstream: every way out of the request meters it, and a
/// request dropped half-way (the runtime cut at the end of the shutdown grace) is no exception.
impl Drop for RequestMeter {
    fn drop(&mut self) {
        if !self.done {
            self.record(&Tally::default(), CUT_BY_PROXY);
        }
    }
}

/// A count as stored. No request comes near 2^40 tokens or microdollars; the cap keeps an
/// absurd upstream report from wrapping negative and any month's sum within `bigint`.
fn count(n: u64) -> i64 {
    n.min(1 << 40) as i64
}
