//! Free loopback ports for processes a test starts.
//!
//! A port is found free by binding it, then released for the process to bind, so something
//! else can take it in between. Two things could: another test process picking the same port
//! (two tests run at once, each in its own process), and the kernel giving it to an outgoing
//! connection. So ports come from one counter shared by every test process on the machine (a
//! file they lock in turn), which hands each port out once until it wraps, and from below the
//! kernel's ephemeral range (32768–60999 by default), which outgoing connections draw from.

use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpListener;
use std::os::fd::AsRawFd;

/// Below the kernel's ephemeral range and above the usual services' ports.
pub const PICKED: std::ops::Range<u16> = 20_000..32_768;

pub fn free_port() -> u16 {
    let path = std::env::temp_dir().join("pdx-test-next-port");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // SAFETY: flock on a descriptor this function holds; closing it releases the lock.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(locked, 0, "lock {}", path.display());
    let mut text = String::new();
    file.read_to_string(&mut text)
        .expect("read the port counter");
    let span = PICKED.end - PICKED.start;
    let mut next = text
        .trim()
        .parse()
        .ok()
        .filter(|p| PICKED.contains(p))
        .unwrap_or(PICKED.start);
    let mut found = None;
    for _ in 0..span {
        let port = next;
        next = PICKED.start + (next - PICKED.start + 1) % span;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            found = Some(port);
            break;
        }
    }
    file.set_len(0).expect("write the port counter");
    file.seek(SeekFrom::Start(0))
        .expect("write the port counter");
    write!(file, "{next}").expect("write the port counter");
    found.unwrap_or_else(|| panic!("no free port in {PICKED:?}"))
}
