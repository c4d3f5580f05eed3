//! Each thread's keys found recently, so that a key presented again is not hashed again.
//!
//! Finding a key in the table takes its SHA-256 (the table holds hashes only): ~4k
//! instructions, ~5% of a proxied request, for the same few keys over and over. A thread
//! remembers what it found for the keys it saw, with the table's version (`stamp`) at the
//! time; any change to the table gives it a new stamp, so an entry from before a revocation
//! or a plan change is never used: it is looked up again.
//!
//! The keys remembered are those already in this process's memory (every request carries
//! one); the lookup is by a randomly seeded hash, so a caller cannot time it to learn a key.

use super::KeyEntry;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// A thread forgets all it remembers when it has this many keys.
const MAX_KEYS: usize = 1024;

thread_local! {
    static RECENT: RefCell<HashMap<Box<str>, (u64, KeyEntry)>> = RefCell::default();
}

/// A stamp no table of this process has had: tables built side by side (tests) never share
/// remembered keys.
pub fn new_stamp() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// What this thread found for `presented` while the table had `stamp`, if it did.
pub fn get(presented: &str, stamp: u64) -> Option<KeyEntry> {
    RECENT.with_borrow(|recent| {
        recent
            .get(presented)
            .filter(|(s, _)| *s == stamp)
            .map(|(_, e)| e.clone())
    })
}

pub fn remember(presented: &str, stamp: u64, entry: &KeyEntry) {
    RECENT.with_borrow_mut(|recent| {
        if let Some(slot) = recent.get_mut(presented) {
            *slot = (stamp, entry.clone());
            return;
        }
        if recent.len() >= MAX_KEYS {
            recent.clear();
        }
        recent.insert(presented.into(), (stamp, entry.clone()));
    });
}
