//! The batched writer task. Events arrive on a channel; a batch is written when it is full or
//! `batch_wait` after its first event. While a spill file exists every new batch is appended
//! to it (so order is kept) and the file is replayed every half second until Postgres takes it.

use crate::usage::journal::Journal;
use crate::usage::{insert, spill, Meter, UsageEvent};
use sqlx::PgPool;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify};

const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Writer {
    stop: watch::Sender<bool>,
    done: tokio::sync::oneshot::Receiver<()>,
}

/// How many events wait in the channel, and a wake-up for the writer when they make a full
/// batch: a gathering batch then sleeps out its wait in one go (one wake-up per batch at a
/// low rate, where polling for fullness cost a wake-up every few milliseconds) and still
/// goes the moment it is full.
pub(super) struct Backlog {
    queued: AtomicUsize,
    full: Notify,
    max: usize,
}

impl Backlog {
    fn new(max: usize) -> Self {
        Self {
            queued: AtomicUsize::new(0),
            full: Notify::new(),
            max,
        }
    }

    /// One more event queued. Counts go up one at a time, so exactly one event makes the count
    /// reach `max` (whatever the writer takes meanwhile) and wakes the writer. The writer may
    /// take an event before its sender counts it: the count then dips below zero for a moment,
    /// hence the wrapping.
    pub(super) fn added(&self) {
        if self.queued.fetch_add(1, Ordering::Relaxed).wrapping_add(1) == self.max {
            self.full.notify_one();
        }
    }

    fn taken(&self, n: usize) {
        self.queued.fetch_sub(n, Ordering::Relaxed);
    }
}

struct Task {
    pool: PgPool,
    journal: Arc<Journal>,
    backlog: Arc<Backlog>,
    path: Arc<PathBuf>,
    max: usize,
    spilled: bool,
}

impl Writer {
    /// Runs the writer on its own thread and runtime, with its own connection pool, so that
    /// encoding and sending batches never holds up a worker that serves requests.
    pub fn start(
        database_url: &str,
        spill_path: PathBuf,
        max: usize,
        wait: Duration,
    ) -> std::io::Result<(Meter, Self)> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (stop, stop_rx) = watch::channel(false);
        let (done_tx, done) = tokio::sync::oneshot::channel();
        let max = max.max(1);
        let backlog = Arc::new(Backlog::new(max));
        // What a killed predecessor journaled goes to the spill file before the writer looks.
        let journal = Arc::new(Journal::open(&spill_path)?);
        let task_journal = journal.clone();
        let task_backlog = backlog.clone();
        let path = Arc::new(spill_path);
        let url = database_url.to_owned();
        let task_path = path.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("usage-writer".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match db::connect_lazy(&url) {
                        Ok(pool) => {
                            let task = Task {
                                pool,
                                journal: task_journal,
                                backlog: task_backlog,
                                spilled: !spill::is_empty(&task_path),
                                path: task_path,
                                max,
                            };
                            task.run(rx, wait, stop_rx).await;
                        }
                        Err(e) => tracing::error!(error = %e, "usage writer cannot start"),
                    }
                });
                let _ = done_tx.send(());
            })?;
        Ok((
            Meter {
                tx,
                journal,
                backlog,
            },
            Self { stop, done },
        ))
    }

    /// Writes everything still queued (to Postgres, or to the spill file if it is down).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if self.done.await.is_err() {
            tracing::error!("usage writer ended abnormally");
        }
    }
}

impl Task {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<UsageEvent>,
        wait: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut replay_tick = tokio::time::interval(Duration::from_millis(500));
        metrics::gauge!("poindexter_usage_spill_events").set(0.0); // until a replay counts the file
        loop {
            if *stop.borrow() {
                break;
            }
            tokio::select! {
                first = rx.recv() => {
                    let Some(first) = first else { break };
                    let batch = self.gather(first, &mut rx, wait, &mut stop).await;
                    self.write_journaled(batch, &mut rx).await;
                }
                _ = replay_tick.tick(), if self.spilled => self.replay().await,
                _ = stop.changed() => break,
            }
        }
        rx.close();
        self.write_journaled(Vec::new(), &mut rx).await;
        if self.spilled {
            self.replay().await;
        }
        if self.spilled {
            tracing::warn!("usage events left in the spill file; they are replayed at next start");
        }
    }

    /// The batch that `first` opens: whatever else arrives within `wait`, up to `max`. It
    /// sleeps out the wait (or until the backlog says a batch is full) and then drains the
    /// channel, rather than waking for each event, so a busy proxy costs this thread one
    /// wake-up per batch, not one per request.
    async fn gather(
        &self,
        first: UsageEvent,
        rx: &mut mpsc::UnboundedReceiver<UsageEvent>,
        wait: Duration,
        stop: &mut watch::Receiver<bool>,
    ) -> Vec<UsageEvent> {
        let mut batch = Vec::with_capacity(self.max.min(1024));
        batch.push(first);
        // A full batch goes at once: under load each write is then about `max` events, a
        // steady trickle for Postgres rather than one long burst per `wait`.
        if rx.len() + 1 < self.max {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.backlog.full.notified() => {}
                _ = stop.changed() => {}
            }
        }
        while batch.len() < self.max {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        self.backlog.taken(batch.len());
        metrics::gauge!("poindexter_usage_writer_backlog_events").set(rx.len() as f64);
        batch
    }

    /// Closes the journal's segment, takes every event still queued (all of that segment's
    /// are, once it is closed), writes them, and deletes the segment once they are durable.
    async fn write_journaled(
        &mut self,
        mut batch: Vec<UsageEvent>,
        rx: &mut mpsc::UnboundedReceiver<UsageEvent>,
    ) {
        let closed = self.journal.rotate();
        let gathered = batch.len();
        while let Ok(e) = rx.try_recv() {
            batch.push(e);
        }
        self.backlog.taken(batch.len() - gathered);
        let mut durable = true;
        for chunk in batch.chunks(self.max) {
            durable &= self.write(chunk.to_vec()).await;
        }
        if durable {
            self.journal.remove(closed);
        }
    }

    /// Writes to Postgres, or else to the spill file; false if neither took the batch.
    async fn write(&mut self, batch: Vec<UsageEvent>) -> bool {
        if batch.is_empty() {
            return true;
        }
        if !self.spilled {
            match insert_with_partitions(&self.pool, &batch).await {
                Ok(()) => {
                    metrics::counter!("poindexter_usage_written_events_total")
                        .increment(batch.len() as u64);
                    return true;
                }
                Err(e) => {
                    tracing::warn!(error = %e, events = batch.len(), "usage write failed; spilling to disk");
                }
            }
        }
        self.spill(batch).await
    }

    async fn spill(&mut self, batch: Vec<UsageEvent>) -> bool {
        let path = self.path.clone();
        let n = batch.len();
        let res = tokio::task::spawn_blocking(move || spill::append(&path, &batch)).await;
        match res {
            Ok(Ok(())) => {
                metrics::counter!("poindexter_usage_spilled_events_total").increment(n as u64);
                metrics::gauge!("poindexter_usage_spill_events").increment(n as f64);
                self.spilled = true;
                true
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, events = n, "cannot write the usage spill file; the journal keeps them");
                false
            }
            Err(e) => {
                tracing::error!(error = %e, events = n, "spill task failed; the journal keeps them");
                false
            }
        }
    }

    /// Writes the spill file to Postgres in order; keeps what could not be written.
    async fn replay(&mut self) {
        let path = self.path.clone();
        let events = match tokio::task::spawn_blocking(move || spill::read(&path)).await {
            Ok(Ok(e)) => e,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot read the usage spill file");
                return;
            }
            Err(_) => return,
        };
        let mut written = 0;
        for chunk in events.chunks(self.max) {
            match insert_with_partitions(&self.pool, chunk).await {
                Ok(()) => {}
                // One event Postgres will never take must not hold up every event after it.
                Err(e) if never_stored(&e) => {
                    if !self.set_aside_rejected(chunk).await {
                        break;
                    }
                }
                Err(_) => break,
            }
            written += chunk.len();
        }
        metrics::gauge!("poindexter_usage_spill_events").set((events.len() - written) as f64);
        if written == 0 && !events.is_empty() {
            return;
        }
        let rest = events[written..].to_vec();
        let path = self.path.clone();
        let done = rest.is_empty();
        match tokio::task::spawn_blocking(move || spill::rewrite(&path, &rest)).await {
            Ok(Ok(())) => {
                if done {
                    tracing::info!(events = written, "usage spill file replayed into Postgres");
                    self.spilled = false;
                }
            }
            _ => tracing::error!("cannot rewrite the usage spill file"),
        }
    }

    /// Writes `chunk` event by event, moving each that Postgres refuses to the rejected file
    /// beside the spill file (kept for an operator, and logged). False if Postgres stopped
    /// answering meanwhile: the chunk stays in the spill file, and a replay writes what is
    /// already in at most once.
    async fn set_aside_rejected(&self, chunk: &[UsageEvent]) -> bool {
        for event in chunk {
            match insert_with_partitions(&self.pool, std::slice::from_ref(event)).await {
                Ok(()) => {}
                Err(e) if never_stored(&e) => {
                    let rejected = self.path.with_extension("rejected");
                    let kept = event.clone();
                    let saved = tokio::task::spawn_blocking(move || {
                        spill::append(&rejected, std::slice::from_ref(&kept))
                    })
                    .await;
                    if !matches!(saved, Ok(Ok(()))) {
                        return false;
                    }
                    metrics::counter!("poindexter_usage_rejected_events_total").increment(1);
                    tracing::error!(
                        request_id = %event.request_id,
                        error = %e,
                        "Postgres refuses a usage event; it is set aside in the rejected file"
                    );
                }
                Err(_) => return false,
            }
        }
        true
    }
}

/// Postgres refused the data itself (a check or another constraint, a value out of range), so
/// no retry can store it; anything else (a lost connection, a timeout) may pass later.
fn never_stored(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(e) => e
            .code()
            .is_some_and(|c| c.starts_with("22") || c.starts_with("23")),
        _ => false,
    }
}

/// Inserts a batch, creating a missing monthly partition once if Postgres reports one missing.
async fn insert_with_partitions(pool: &PgPool, batch: &[UsageEvent]) -> Result<(), sqlx::Error> {
    let first = tokio::time::timeout(WRITE_TIMEOUT, insert::batch(pool, batch)).await;
    match first {
        Err(_) => Err(sqlx::Error::PoolTimedOut),
        // "No partition of relation … found for row": a CHECK violation's SQLSTATE, but with
        // no constraint named (a real CHECK violation names its constraint, and no partition
        // would help it).
        Ok(Err(sqlx::Error::Database(e)))
            if e.code().as_deref() == Some("23514") && e.constraint().is_none() =>
        {
            let mut months: Vec<chrono::NaiveDate> =
                batch.iter().map(|e| e.created_at.date_naive()).collect();
            months.sort_unstable();
            months.dedup();
            for m in months {
                sqlx::query("SELECT ensure_usage_partition($1)")
                    .bind(m)
                    .execute(pool)
                    .await?;
            }
            insert::batch(pool, batch).await
        }
        Ok(other) => other,
    }
}
