//! The write-ahead journal: every usage event is appended to a local file (one `write(2)`,
//! no fsync) before its request's answer ends, so a proxy killed with SIGKILL after answering
//! still meters the request: the kernel has the bytes, and the next start moves them into the
//! spill file, whose replay skips what Postgres already has. The batched writer rotates the
//! journal before it takes a batch and deletes the old segment once the batch is durable
//! (in Postgres or the fsynced spill file), so the journal holds about one batch.
//!
//! Events are journaled as binary records (`record`): this runs once per request, on the
//! serving path. A segment starts with `MAGIC`; one without it is JSON lines, as an older
//! proxy wrote them, and is read as such.

use crate::usage::{record, spill, UsageEvent};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tokio::sync::mpsc;

/// The first bytes of a segment of binary records.
const MAGIC: &[u8] = b"PDXJ1\n";

pub struct Journal {
    base: PathBuf,
    current: Mutex<Segment>,
}

struct Segment {
    seq: u64,
    /// None when the file could not be opened: events then go on unjournaled (logged once).
    file: Option<File>,
    buf: Vec<u8>,
}

impl Journal {
    /// Moves what an earlier process left in its journal into the spill file, then opens a
    /// fresh segment. `spill_path` names both: segments are `<spill_path>.journal.<n>`.
    pub fn open(spill_path: &Path) -> std::io::Result<Self> {
        recover(spill_path)?;
        let base = spill_path.to_path_buf();
        let file = open_segment(&base, 0);
        Ok(Self {
            base,
            current: Mutex::new(Segment {
                seq: 0,
                file,
                buf: Vec::with_capacity(512),
            }),
        })
    }

    /// Appends `event` to the journal and hands it to the writer, in that order and under one
    /// lock, so that once `rotate` returns every event of the old segment is in the channel.
    /// Once the writer has stopped (shutdown) the journal alone keeps the event for the next
    /// start; without a journal it goes to the spill file. True if the writer got the event.
    pub fn append(&self, event: UsageEvent, tx: &mpsc::UnboundedSender<UsageEvent>) -> bool {
        let mut seg = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let Segment { file, buf, seq } = &mut *seg;
        let mut journaled = false;
        if let Some(f) = file {
            buf.clear();
            record::encode(&event, buf);
            match f.write_all(buf) {
                Ok(()) => journaled = true,
                Err(e) => {
                    tracing::error!(error = %e, segment = *seq, "usage journal write failed");
                    *file = None;
                }
            }
        }
        let Err(mpsc::error::SendError(event)) = tx.send(event) else {
            return true;
        };
        if !journaled {
            if let Err(e) = spill::append(&self.base, std::slice::from_ref(&event)) {
                tracing::error!(error = %e, request_id = %event.request_id, "usage event lost");
            }
        }
        false
    }

    /// Starts a new segment; the old one's number, to `remove` once its events are durable.
    pub fn rotate(&self) -> u64 {
        let mut seg = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let old = seg.seq;
        seg.seq += 1;
        seg.file = open_segment(&self.base, seg.seq);
        old
    }

    /// Deletes segment `seq` (its events are durable). A segment whose batch could not be
    /// written anywhere stays until the next start replays it.
    pub fn remove(&self, seq: u64) {
        let _ = std::fs::remove_file(segment_path(&self.base, seq));
    }
}

fn segment_path(base: &Path, seq: u64) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(format!(".journal.{seq}"));
    PathBuf::from(name)
}

fn open_segment(base: &Path, seq: u64) -> Option<File> {
    let path = segment_path(base, seq);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(dir);
    }
    let opened = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(MAGIC).map(|()| f));
    match opened {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::error!(error = %e, path = %path.display(), "cannot open the usage journal; a crash may lose the last batch");
            None
        }
    }
}

/// The journal's segments on disk, oldest first.
fn segments(base: &Path) -> Vec<(u64, PathBuf)> {
    let dir = match base.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.to_path_buf(),
        None => PathBuf::from("."),
    };
    let prefix = format!(
        "{}.journal.",
        base.file_name().unwrap_or_default().to_string_lossy()
    );
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let n = name.strip_prefix(&prefix)?.parse().ok()?;
                    Some((n, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// Appends every leftover segment to the spill file (fsynced) and deletes it.
fn recover(base: &Path) -> std::io::Result<()> {
    for (_, path) in segments(base) {
        let events = read_segment(&path)?;
        if !events.is_empty() {
            tracing::warn!(
                events = events.len(),
                "usage events journaled by a proxy that stopped without writing them; replaying"
            );
            spill::append(base, &events)?;
        }
        std::fs::remove_file(&path)?;
    }
    Ok(())
}

fn read_segment(path: &Path) -> std::io::Result<Vec<UsageEvent>> {
    let bytes = std::fs::read(path)?;
    match bytes.strip_prefix(MAGIC) {
        Some(records) => Ok(record::decode_all(records)),
        None => spill::read(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str) -> UsageEvent {
        UsageEvent {
            request_id: id.into(),
            user_id: uuid::Uuid::nil(),
            api_key_id: uuid::Uuid::nil(),
            model: "gpt-4o-mini".into(),
            provider: "openai".into(),
            input_tokens: 3,
            output_tokens: 5,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            cost_microdollars: 1,
            latency_ms: 1,
            status_code: 200,
            estimated: false,
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn what_a_killed_process_journaled_reaches_the_spill_file_at_the_next_open() {
        let dir = std::env::temp_dir().join(format!("pdx-journal-{}", uuid::Uuid::new_v4()));
        let spill_path = dir.join("usage.spill");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let j = Journal::open(&spill_path).unwrap();
        j.append(event("a"), &tx);
        let old = j.rotate();
        j.append(event("b"), &tx);
        // "a" was written durably by the writer: its segment goes; "b" is not yet.
        assert_eq!(rx.try_recv().unwrap().request_id, "a");
        j.remove(old);
        drop(j); // the process dies here, "b" only in its journal
        assert!(spill::is_empty(&spill_path));

        let _again = Journal::open(&spill_path).unwrap();
        let spilled: Vec<String> = spill::read(&spill_path)
            .unwrap()
            .into_iter()
            .map(|e| e.request_id)
            .collect();
        assert_eq!(spilled, ["b"]);
        assert_eq!(
            segments(&spill_path).len(),
            1,
            "only the new, empty segment"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A proxy upgraded from one that journaled JSON lines replays what that one left.
    #[test]
    fn a_segment_of_json_lines_from_an_older_proxy_is_replayed() {
        let dir = std::env::temp_dir().join(format!("pdx-journal-{}", uuid::Uuid::new_v4()));
        let spill_path = dir.join("usage.spill");
        std::fs::create_dir_all(&dir).unwrap();
        let mut old = serde_json::to_vec(&event("old")).unwrap();
        old.push(b'\n');
        std::fs::write(segment_path(&spill_path, 7), old).unwrap();

        let _j = Journal::open(&spill_path).unwrap();
        let spilled = spill::read(&spill_path).unwrap();
        assert_eq!(spilled, [event_like(&spilled[0], "old")]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn event_like(read: &UsageEvent, id: &str) -> UsageEvent {
        UsageEvent {
            created_at: read.created_at,
            ..event(id)
        }
    }
}
