//! Real processes for black-box tests: the `poindexter` binary and restate-server, on free
//! ports, killed when dropped.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How a process's start ended.
pub enum Started {
    Healthy,
    /// It exited first; what happened, with its log.
    Exited(String),
}

pub struct Proc {
    pub child: Child,
    pub name: String,
    /// Where its stdout and stderr go.
    pub log: std::path::PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, program: &str, args: &[&str], env: &HashMap<String, String>) -> Self {
        let log = std::env::temp_dir().join(format!(
            "pdx-test-{name}-{}-{}.log",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(program)
            .args(args)
            .envs(env)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        Self {
            child,
            name: name.into(),
            log,
        }
    }

    /// `poindexter <subcommand>` built by cargo for this test run.
    pub fn poindexter(sub: &str, env: &HashMap<String, String>) -> Self {
        Self::spawn(sub, env!("CARGO_BIN_EXE_poindexter"), &[sub], env)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: plain syscall on a child we own.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// SIGKILL, no chance to clean up: a crash.
    pub fn kill9(&mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
    }

    /// Polls `url` until it answers 2xx, or the process exits first (then its log says why, at
    /// once, rather than after `limit`).
    pub async fn wait_started(&mut self, url: &str, limit: Duration) -> Started {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + limit;
        loop {
            if answers(&client, url).await {
                return Started::Healthy;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let name = &self.name;
                return Started::Exited(format!(
                    "{name} exited ({status}) before {url} answered:\n{log}"
                ));
            }
            assert!(
                Instant::now() < deadline,
                "{url} not healthy within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for exit up to `limit`; None if still running.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

/// Every instance of a process the test restarts, oldest first: those killed earlier (held so
/// that a failed test keeps their logs), then the one running.
pub fn instances<'a>(
    retired: &'a [Proc],
    current: &'a Option<Proc>,
) -> impl Iterator<Item = &'a Proc> {
    retired.iter().chain(current)
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // A failing test keeps its processes' logs to read.
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Whether `url` answers 2xx within a second.
async fn answers(client: &reqwest::Client, url: &str) -> bool {
    let res = client.get(url).timeout(Duration::from_secs(1)).send().await;
    res.is_ok_and(|r| r.status().is_success())
}

/// Polls `url` until it answers 2xx.
pub async fn wait_healthy(url: &str, limit: Duration) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + limit;
    loop {
        if answers(&client, url).await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{url} not healthy within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
