//! Child processes of `dev`: started with the dev environment, restarted with backoff when they
//! die, stopped with SIGTERM (then SIGKILL) on shutdown. Each child also gets PR_SET_PDEATHSIG,
//! so even if dev itself is killed no orphan is left.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct ChildSpec {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub extra_env: Vec<(String, String)>,
    /// Log file instead of the terminal (restate-server is chatty).
    pub log_to_file: bool,
}

impl ChildSpec {
    pub fn new(name: &str, program: PathBuf, args: Vec<String>) -> Self {
        Self {
            name: name.into(),
            program,
            args,
            extra_env: vec![],
            log_to_file: false,
        }
    }
}

pub struct Supervisor {
    env: HashMap<String, String>,
    log_dir: PathBuf,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Supervisor {
    pub fn new(env: HashMap<String, String>, log_dir: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&log_dir)?;
        let (stop, _) = watch::channel(false);
        Ok(Self {
            env,
            log_dir,
            stop,
            tasks: vec![],
        })
    }

    pub fn spawn(&mut self, spec: ChildSpec) {
        let env = self.env.clone();
        let log_dir = self.log_dir.clone();
        let mut stop = self.stop.subscribe();
        self.tasks.push(tokio::spawn(async move {
            let mut backoff = Duration::from_millis(500);
            loop {
                let started = Instant::now();
                let mut child = match start(&spec, &env, &log_dir) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(child = %spec.name, error = %e, "cannot start child");
                        if wait_or_stop(&mut stop, backoff).await {
                            return;
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                        continue;
                    }
                };
                tokio::select! {
                    status = child.wait() => {
                        // A child that ran for a minute was healthy: start over with short backoff.
                        if started.elapsed() > Duration::from_secs(60) {
                            backoff = Duration::from_millis(500);
                        }
                        tracing::warn!(child = %spec.name, ?status, restart_in_ms = backoff.as_millis() as u64, "child exited; restarting");
                        if wait_or_stop(&mut stop, backoff).await {
                            return;
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                    _ = stopped(&mut stop) => {
                        terminate(&spec.name, &mut child).await;
                        return;
                    }
                }
            }
        }));
    }

    /// Stops every child (in parallel) and waits until all are gone.
    pub async fn stop_all(&mut self) {
        let _ = self.stop.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

/// Waits `d`; true if a stop was requested meanwhile.
async fn wait_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stopped(stop) => return true,
    }
    let requested = *stop.borrow();
    requested
}

/// Resolves once a stop was requested (or the supervisor is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn start(
    spec: &ChildSpec,
    env: &HashMap<String, String>,
    log_dir: &std::path::Path,
) -> anyhow::Result<Child> {
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .envs(env)
        .envs(spec.extra_env.iter().cloned())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if spec.log_to_file {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_dir.join(format!("{}.log", spec.name)))?;
        cmd.stdout(log.try_clone()?).stderr(log);
    }
    // SAFETY: prctl is async-signal-safe and touches only this (forked) process.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    tracing::info!(child = %spec.name, pid = child.id(), "started");
    Ok(child)
}

async fn terminate(name: &str, child: &mut Child) {
    if let Some(pid) = child.id() {
        // SAFETY: plain syscall on a pid we own.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
    }
    if tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .is_err()
    {
        tracing::warn!(child = name, "did not stop within 10 s; killing");
        let _ = child.kill().await;
    }
}

/// Polls a URL until it answers 2xx (60 s at most).
pub async fn wait_http(url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(url).timeout(Duration::from_secs(2)).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            anyhow::bail!("{url} did not become healthy within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
