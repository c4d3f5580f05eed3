//! `last_used_at` for API keys and OAuth grants without a database write per request: uses
//! are remembered in memory and written in one batched statement every few seconds (and on
//! shutdown).

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

#[derive(Clone, Default)]
pub struct KeyUsage {
    pending: Arc<Mutex<HashMap<Uuid, DateTime<Utc>>>>,
    grants: Arc<Mutex<HashMap<Uuid, DateTime<Utc>>>>,
}

impl KeyUsage {
    pub fn touch(&self, key_id: Uuid) {
        if let Ok(mut p) = self.pending.lock() {
            p.insert(key_id, Utc::now());
        }
    }

    pub fn touch_grant(&self, grant_id: Uuid) {
        if let Ok(mut p) = self.grants.lock() {
            p.insert(grant_id, Utc::now());
        }
    }

    pub async fn flush(&self, pool: &PgPool) {
        let grants: Vec<(Uuid, DateTime<Utc>)> = match self.grants.lock() {
            Ok(mut p) => p.drain().collect(),
            Err(_) => Vec::new(),
        };
        // Last-use times of grants are a courtesy: one lost on a database error is refreshed
        // by the next call.
        if let Err(e) = db::oauth::record_last_used(pool, &grants).await {
            tracing::debug!(error = %e, "could not record grant usage");
        }
        let batch: Vec<(Uuid, DateTime<Utc>)> = match self.pending.lock() {
            Ok(mut p) => p.drain().collect(),
            Err(_) => return,
        };
        if let Err(e) = db::api_keys::record_last_used(pool, &batch).await {
            tracing::warn!(error = %e, keys = batch.len(), "could not record key usage; will retry");
            if let Ok(mut p) = self.pending.lock() {
                for (id, at) in batch {
                    let slot = p.entry(id).or_insert(at);
                    *slot = (*slot).max(at);
                }
            }
        }
    }

    /// Flushes every `every` until the returned handle is aborted.
    pub fn spawn_flusher(&self, pool: PgPool, every: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                this.flush(&pool).await;
            }
        })
    }
}
