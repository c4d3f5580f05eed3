//! Metering: one `UsageEvent` per proxied request, appended to a local journal and handed to a
//! batched writer without waiting. The writer inserts batches; while Postgres is unreachable it
//! appends them to a local spill file and replays that file, in order, once the database is
//! back. The journal covers a crash between the two (see `journal`).

mod insert;
mod journal;
mod record;
mod spill;
mod writer;

pub use writer::Writer;

use crate::keys::UserState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::mpsc;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UsageEvent {
    pub request_id: String,
    pub user_id: Uuid,
    pub api_key_id: Uuid,
    pub model: String,
    pub provider: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub cost_microdollars: i64,
    pub latency_ms: i32,
    pub status_code: i32,
    pub estimated: bool,
    pub created_at: DateTime<Utc>,
}

/// Cheap to clone; every request holds one.
#[derive(Clone)]
pub struct Meter {
    tx: mpsc::UnboundedSender<UsageEvent>,
    journal: Arc<journal::Journal>,
    backlog: Arc<writer::Backlog>,
}

impl Meter {
    /// Records an event and counts it against the user's period at once.
    pub fn record(&self, user: &UserState, event: UsageEvent) {
        user.add_usage(
            event.input_tokens + event.output_tokens,
            event.cost_microdollars,
        );
        crate::hot_metrics::metered(
            &event.provider,
            &event.model,
            event.input_tokens,
            event.output_tokens,
        );
        // Journaled before the answer's last byte leaves: a SIGKILL after answering loses
        // nothing (the next start replays the journal).
        if self.journal.append(event, &self.tx) {
            self.backlog.added();
        }
    }
}
