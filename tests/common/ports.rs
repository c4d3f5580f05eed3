//! Free loopback ports for processes a test starts.
//!
//! A port is found free by binding it and released for the process to bind, so something else
//! can take it in between. The kernel hands out ports for outgoing connections (and for
//! `bind(…:0)`) from the ephemeral range, 32768–60999 by default, and the tests open thousands
//! of connections a second: a port from that range was taken in that window often enough to
//! fail a CI run. So ports are picked at random below it, where only another test's pick can
//! collide (one chance in some thousands per port held at the time), and checked by binding.

use std::net::TcpListener;

/// Below the kernel's ephemeral range and above the usual services' ports.
pub const PICKED: std::ops::Range<u16> = 20_000..32_768;

pub fn free_port() -> u16 {
    for _ in 0..1_000 {
        let span = u128::from(PICKED.end - PICKED.start);
        let port = PICKED.start + (uuid::Uuid::new_v4().as_u128() % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {PICKED:?} after 1,000 tries");
}
