//! The spill file: JSON lines of usage events not yet in Postgres, oldest first.

use crate::usage::UsageEvent;
use std::io::{BufRead, Write};
use std::path::Path;

pub fn append(path: &Path, events: &[UsageEvent]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut buf = Vec::with_capacity(events.len() * 300);
    for e in events {
        serde_json::to_writer(&mut buf, e)?;
        buf.push(b'\n');
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(&buf)?;
    // The point of spilling is surviving a crash too.
    f.sync_data()
}

pub fn read(path: &Path) -> std::io::Result<Vec<UsageEvent>> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut events = Vec::new();
    for line in std::io::BufReader::new(f).lines() {
        let line = line?;
        match serde_json::from_str(&line) {
            Ok(e) => events.push(e),
            // A torn last line (crash mid-write) is skipped, not fatal.
            Err(_) if !line.trim().is_empty() => {
                tracing::warn!("skipping an unreadable line of the usage spill file")
            }
            Err(_) => {}
        }
    }
    Ok(events)
}

pub fn is_empty(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.len() == 0)
        .unwrap_or(true)
}

/// Replaces the file with `rest` (what is still unwritten), atomically.
pub fn rewrite(path: &Path, rest: &[UsageEvent]) -> std::io::Result<()> {
    if rest.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    let tmp = path.with_extension("spill.tmp");
    let _ = std::fs::remove_file(&tmp);
    append(&tmp, rest)?;
    std::fs::rename(&tmp, path)
}
