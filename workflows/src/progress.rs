//! Provisioning progress, written off the steps' path. A step used to wait for two writes of
//! its own (running, then done), each queued for a pooled connection and for Postgres behind
//! every other provisioning's; now it hands its records to one writer task and goes on. The
//! writer takes whatever has queued while its last write ran and writes it in one statement
//! (`db::identities::record_progress`), so under load many records share a round trip and a
//! commit. Each record carries the moment the step saw, not the moment it was written.
//!
//! The status written after the steps (`active`, `failed`) must not overtake them: whoever sees
//! it must see every step's last record, as before. Its writers call `flush` first.

use chrono::Utc;
use db::identities::ProgressRow;
use db::status::StepStatus;
use sqlx::PgPool;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// How many records one statement takes at most.
const MAX_BATCH: usize = 512;
/// Attempts of a batch before its records are given up (progress is shown, never acted on:
/// the step's next record, or its retry's, rewrites the row).
const ATTEMPTS: u32 = 3;

enum Message {
    Record(ProgressRow),
    /// Answered once everything queued before it has been written (or given up).
    Flush(oneshot::Sender<()>),
}

pub struct ProgressWriter {
    pool: PgPool,
    /// Started on first use, inside the runtime that serves the workflows.
    queue: OnceLock<mpsc::UnboundedSender<Message>>,
}

impl ProgressWriter {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            queue: OnceLock::new(),
        }
    }

    /// Queues a step's record, stamped now; never waits. Called inside the step's `ctx.run`.
    // The clock is read inside the step's `ctx.run`, where clippy's rule wants it.
    #[allow(clippy::disallowed_methods)]
    pub fn record(
        &self,
        identity_id: Uuid,
        step: &'static str,
        position: i32,
        status: StepStatus,
        detail: Option<String>,
        starts_attempt: bool,
    ) {
        let now = Utc::now();
        let finished = matches!(
            status,
            StepStatus::Done | StepStatus::Failed | StepStatus::Compensated
        );
        self.send(Message::Record(ProgressRow {
            identity_id,
            step,
            position,
            status,
            detail,
            attempts: i32::from(starts_attempt),
            started_at: (status != StepStatus::Pending).then_some(now),
            finished_at: finished.then_some(now),
        }));
    }

    /// Returns once every record queued before the call has been written, or given up.
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        self.send(Message::Flush(done));
        let _ = written.await;
    }

    // Not a handler's background work (which clippy's rule is about): the one writer for the
    // process, started with the first record and ending with the runtime.
    #[allow(clippy::disallowed_methods)]
    fn send(&self, message: Message) {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(write_queued(self.pool.clone(), rx));
            tx
        });
        // The writer ends only with the runtime, and the runtime's end ends every step too.
        let _ = queue.send(message);
    }
}

/// The writer: each round takes what has queued (up to `MAX_BATCH`), writes it in one
/// statement, then answers the flushes that were queued behind those records.
async fn write_queued(pool: PgPool, mut queue: mpsc::UnboundedReceiver<Message>) {
    let mut rows = Vec::new();
    let mut flushes = Vec::new();
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Record(row) => rows.push(row),
                Message::Flush(done) => flushes.push(done),
            }
            if rows.len() < MAX_BATCH {
                next = queue.try_recv().ok();
            }
        }
        if !rows.is_empty() {
            write(&pool, &rows).await;
            rows.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

/// One batch, retried briefly when Postgres could not be reached; a batch it refuses (an
/// identity deleted meanwhile fails its rows' foreign key) is written row by row, without
/// retries, so that one row costs neither the others nor the writer's time.
async fn write(pool: &PgPool, rows: &[ProgressRow]) {
    let mut last = None;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        }
        match db::identities::record_progress(pool, rows).await {
            Ok(()) => return,
            // Refused, not failed: the same rows again would be refused again.
            Err(sqlx::Error::Database(e)) => {
                tracing::warn!(error = %e, rows = rows.len(), "provisioning progress refused");
                if rows.len() > 1 {
                    for row in rows {
                        let one = std::slice::from_ref(row);
                        if let Err(e) = db::identities::record_progress(pool, one).await {
                            tracing::warn!(error = %e, step = row.step, "could not record provisioning progress");
                        }
                    }
                }
                return;
            }
            Err(e) => last = Some(e),
        }
    }
    if let Some(e) = last {
        tracing::warn!(error = %e, rows = rows.len(), "could not record provisioning progress");
    }
}
