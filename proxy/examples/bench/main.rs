//! `scripts/bench-proxy`: the sandbox upstream and the proxy as separate processes (this
//! binary in other roles), a load generator here; direct-to-upstream against through-proxy
//! with auth, rate limiting and metering on, against a bare TCP relay (`relay.rs`), the
//! least any proxy could add on the same machine, and against an HTTP relay on the proxy's own
//! HTTP stack (`relay_http.rs`), the least a proxy built on it could add. Prints figures,
//! asserts nothing.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

mod http;
mod relay;
mod relay_http;
mod streams;
mod ticker;

// As the `poindexter` binary runs the proxy.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const CHAT: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}]}"#;
const CHAT_STREAM: &str =
    r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Say hello"}]}"#;

/// A chat request of about `bytes` bytes: turns of user and assistant text with the quotes,
/// newlines and code a real conversation has (so escapes every few dozen bytes).
fn conversation(bytes: usize) -> String {
    let turn =
        "Here is the function again:\n```rust\nfn add(a: i32, b: i32) -> i32 { a + b }\n```\n\
                It \"works\", but the tests say otherwise; what would you change? ";
    let mut messages = Vec::new();
    let mut size = 0;
    while size < bytes {
        let role = if messages.len() % 2 == 0 {
            "user"
        } else {
            "assistant"
        };
        let text = turn.repeat(8);
        size += text.len() + 40;
        messages.push(serde_json::json!({"role": role, "content": text}));
    }
    serde_json::json!({"model": "gpt-4o-mini", "messages": messages}).to_string()
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("upstream") => upstream(args[2].parse()?),
        Some("proxy") => proxy(args[2].parse()?, &args[3], args[4].parse()?),
        Some("relay") => relay::serve(args[2].parse()?, args[3].parse()?),
        Some("relay-http") => relay_http::serve(args[2].parse()?, args[3].parse()?),
        Some("ticker") => ticker::serve(
            args[2].parse()?,
            args[3].parse()?,
            Duration::from_millis(args[4].parse()?),
        ),
        _ => bench(),
    }
}

/// Keeps the calling thread (and threads it starts later) on one CPU. The load generator and
/// the upstream each get their own, so the direct path always crosses cores as the proxied
/// one does: left to the scheduler, direct runs sometimes shared one core and skipped the
/// wake-up of an idle one, and its sequential p50 swung between ~15 and ~70 µs from run to run.
/// The proxy is not pinned.
pub fn pin_to_cpu(cpu: usize) {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return;
    }
    // SAFETY: cpu_set_t is plain data, initialised by CPU_ZERO; pid 0 is this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The sandbox's AI emulator on one core.
fn upstream(addr: SocketAddr) -> anyhow::Result<()> {
    pin_to_cpu(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let config = config::Config::load(
            config::Component::Sandbox,
            &std::collections::HashMap::<String, String>::new(),
        )?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        axum::serve(listener, sandbox::build(&config)).await?;
        Ok(())
    })
}

/// The proxy exactly as `poindexter proxy` builds and serves it, with a rate limit high enough for a
/// benchmark (it is still checked on every request).
fn proxy(addr: SocketAddr, database_url: &str, upstream: SocketAddr) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let target = |path: &str, key: &str| proxy::Target {
            base_url: format!("http://{upstream}{path}"),
            api_key: key.into(),
        };
        let options = proxy::Options {
            database_url: database_url.to_owned(),
            redis_url: None,
            openai: vec![target("/openai/v1", "sk-sandbox")],
            anthropic: vec![target("/anthropic", "sk-ant-sandbox")],
            rate_per_minute: 1_000_000_000,
            rate_burst: 1_000_000,
            upstream_ca_file: None,
            spill_path: std::env::temp_dir()
                .join(format!("pdx-bench-{}.spill", std::process::id())),
            usage_refresh: Duration::from_secs(5),
            key_refresh: Duration::from_secs(60),
            batch_max: proxy::options::BATCH_MAX,
            batch_wait: proxy::options::BATCH_WAIT,
            max_attempts: 3,
            upstream_timeouts: proxy::options::UpstreamTimeouts::default(),
            shutdown_grace: Duration::from_secs(20),
            client_idle_timeout: Duration::from_secs(60),
        };
        let app = proxy::build_with(options).await?;
        app.serve(addr, server::shutdown::signal()).await?;
        app.shutdown().await;
        Ok(())
    })
}

pub struct Children(pub Vec<Child>);

impl Drop for Children {
    /// SIGTERM, so that a program the proxy runs under (BENCH_PROXY_UNDER) writes its report
    /// as the proxy exits; SIGKILL for what is still there after 30 s.
    fn drop(&mut self) {
        for c in &self.0 {
            // SAFETY: signals a child this process started and has not yet reaped.
            unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for c in &mut self.0 {
            while matches!(c.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `exe` as a command, run under the program (with its arguments) that the environment
/// variable `var` names, if set.
pub fn command_under(var: &str, exe: &std::path::Path) -> Command {
    let under: Vec<String> = std::env::var(var)
        .map(|v| v.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    match under.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(exe);
            c
        }
        None => Command::new(exe),
    }
}

pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
}

/// Starts a relay of this benchmark (`kind`: "relay" or "relay-http") on `listen` in front of
/// `upstream`, and waits until the upstream's health check answers through it.
pub fn start_relay(
    mut cmd: Command,
    kind: &str,
    listen: SocketAddr,
    upstream: SocketAddr,
) -> std::io::Result<Child> {
    let child = cmd
        .arg(kind)
        .arg(listen.to_string())
        .arg(upstream.to_string())
        .spawn()?;
    wait_ready(listen, "/healthz");
    Ok(child)
}

pub fn wait_ready(addr: SocketAddr, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            use std::io::{Read, Write};
            let _ = write!(
                s,
                "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
            );
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{addr}{path} did not become ready");
}

/// How long each core is taken away from a thread that only reads the clock, over `run`,
/// before anything of the benchmark runs. On a virtual machine whose host is busy a vCPU can
/// stop for milliseconds at a time, invisible to the guest's scheduler; every tail figure
/// below includes such stops, so they are measured and printed beside them.
fn core_stalls(run: Duration) -> Vec<(usize, Duration, Duration)> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads: Vec<_> = (0..cores)
        .map(|cpu| {
            std::thread::spawn(move || {
                pin_to_cpu(cpu);
                let started = Instant::now();
                let (mut last, mut count, mut total, mut longest) =
                    (started, 0, Duration::ZERO, Duration::ZERO);
                while last - started < run {
                    let now = Instant::now();
                    let gap = now - last;
                    if gap >= Duration::from_micros(500) {
                        count += 1;
                        total += gap;
                        longest = longest.max(gap);
                    }
                    last = now;
                }
                (count, total, longest)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

pub fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

async fn sequential(addr: SocketAddr, req: &[u8], n: usize) -> (Vec<Duration>, Vec<Duration>) {
    let mut conn = http::Conn::open(addr).await.unwrap();
    for _ in 0..n / 10 {
        conn.send(req).await.unwrap();
    }
    let mut total = Vec::with_capacity(n);
    let mut first = Vec::with_capacity(n);
    for _ in 0..n {
        let t = conn.send(req).await.unwrap();
        assert_eq!(t.status, 200);
        total.push(t.total);
        first.push(t.first_body_byte);
    }
    total.sort_unstable();
    first.sort_unstable();
    (total, first)
}

/// `conns` connections for `run`. Without a rate each sends as fast as it gets answers (a
/// closed loop: throughput). With `rate` (requests/s between them all) requests are released
/// evenly over time, like an open-loop load generator (vegeta, wrk2): a pacing thread hands
/// out permits every 100 µs, since the tokio timer's 1 ms ticks would release them in bursts
/// that measure the burst rather than the server. Latency runs from the moment a request is
/// sent; the achieved rate shows whether the schedule was kept.
/// `load` against `addr`, with the CPU seconds process `pid` spent meanwhile.
pub async fn load_cpu(
    addr: SocketAddr,
    req: &[u8],
    pid: u32,
    rate: Option<f64>,
    run: Duration,
) -> (f64, Vec<Duration>, f64) {
    let before = cpu_secs(pid);
    let (rps, latencies) = load(addr, req, 64, rate, run).await;
    (rps, latencies, cpu_secs(pid) - before)
}

pub async fn load(
    addr: SocketAddr,
    req: &[u8],
    conns: usize,
    rate: Option<f64>,
    run: Duration,
) -> (f64, Vec<Duration>) {
    let req = std::sync::Arc::new(req.to_vec());
    let started = tokio::time::Instant::now();
    let deadline = started + run;
    let permits = rate.map(|rate| pace(rate, run));
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let req = req.clone();
        let permits = permits.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = http::Conn::open(addr).await.unwrap();
            let mut lat = Vec::with_capacity(50_000);
            while tokio::time::Instant::now() < deadline {
                if let Some(permits) = &permits {
                    match permits.acquire().await {
                        Ok(p) => p.forget(),
                        Err(_) => break,
                    }
                }
                let t = conn.send(&req).await.unwrap();
                assert_eq!(t.status, 200);
                lat.push(t.total);
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort_unstable();
    (all.len() as f64 / secs, all)
}

/// Permits for `rate` requests a second over `run`, released as time passes (the count is
/// computed from the clock, so a late wake-up catches up rather than drifting); closed at the
/// end so that waiting connections stop.
fn pace(rate: f64, run: Duration) -> std::sync::Arc<tokio::sync::Semaphore> {
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let handed = permits.clone();
    std::thread::spawn(move || {
        let started = Instant::now();
        let mut released = 0u64;
        while started.elapsed() < run {
            std::thread::sleep(Duration::from_micros(100));
            let due = (started.elapsed().as_secs_f64() * rate) as u64;
            handed.add_permits((due - released) as usize);
            released = due;
        }
        handed.close();
    });
    permits
}

pub fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU seconds (user + system) a process has used so far.
pub fn cpu_secs(pid: u32) -> f64 {
    // Nanoseconds on a CPU (schedstat's first field): the clock ticks of /proc/<pid>/stat are
    // 10 ms, too coarse for a few seconds of a busy run.
    match schedstat_sum(pid, 0) {
        Some(ns) if ns > 0 => ns as f64 / 1e9,
        _ => cpu_ticks_secs(pid),
    }
}

/// How many times the process's threads were put on a CPU (schedstat's third field): at a low
/// rate, each is a wake-up from sleep, and what it costs beyond the work depends on the
/// machine (an idle virtual CPU woken by its host, cold caches).
pub fn on_cpu_times(pid: u32) -> u64 {
    schedstat_sum(pid, 2).unwrap_or(0)
}

/// Field `field` of /proc/<pid>/task/*/schedstat summed over the process's threads. Every
/// process measured here keeps its threads for its whole life.
fn schedstat_sum(pid: u32, field: usize) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    Some(
        tasks
            .filter_map(|t| t.ok())
            .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
            .filter_map(|s| s.split_whitespace().nth(field)?.parse::<u64>().ok())
            .sum(),
    )
}

/// Nanoseconds on a CPU by thread name, digits dropped (`serve-0` and `serve-1` count as
/// `serve-`): where a process's CPU goes, serving or its background work.
pub fn cpu_by_thread(pid: u32) -> std::collections::BTreeMap<String, f64> {
    let mut by = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by;
    };
    for t in tasks.filter_map(|t| t.ok()) {
        let read = |f: &str| std::fs::read_to_string(t.path().join(f)).unwrap_or_default();
        let ns = read("schedstat")
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok());
        let name: String = read("comm")
            .trim()
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .collect();
        *by.entry(name).or_insert(0.0) += ns.unwrap_or(0) as f64 / 1e9;
    }
    by
}

/// utime + stime from /proc/<pid>/stat, in 10 ms ticks: where schedstat is missing.
fn cpu_ticks_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// Ticks of all cores together from /proc/stat: (busy, stolen by the host, all). Not every
/// hypervisor reports steal: the stops `core_stalls` measures may show here as none.
pub fn machine_ticks() -> (u64, u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let at = |i: usize| f.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let all: u64 = (0..8).map(at).sum();
    (all - at(3) - at(4) - at(7), at(7), all)
}

/// "busy X%, stolen Y%" of all cores between two `machine_ticks` readings.
pub fn machine_share(before: (u64, u64, u64), after: (u64, u64, u64)) -> String {
    let all = (after.2 - before.2).max(1) as f64;
    format!(
        "busy {:.0}%, steal reported by the host {:.1}%",
        (after.0 - before.0) as f64 * 100.0 / all,
        (after.1 - before.1) as f64 * 100.0 / all
    )
}

fn bench() -> anyhow::Result<()> {
    let server = std::env::var("TEST_DATABASE_SERVER")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let database_url = format!("{server}/pdx_bench_{}", uuid::Uuid::new_v4().simple());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let key = rt.block_on(async {
        let pool = db::create_and_migrate(&database_url).await?;
        let user = uuid::Uuid::new_v4();
        sqlx::query("INSERT INTO users (id, email, password_hash) VALUES ($1, $2, 'x')")
            .bind(user)
            .bind(format!("{}@bench.test", user.simple()))
            .execute(&pool)
            .await?;
        sqlx::query(
            "INSERT INTO subscriptions (id, user_id, stripe_subscription_id, stripe_customer_id,
                plan, status, stripe_state_at) VALUES ($1, $2, $3, 'cus_bench', 'pro', 'active', now())",
        )
        .bind(uuid::Uuid::new_v4())
        .bind(user)
        .bind(format!("sub_{}", user.simple()))
        .execute(&pool)
        .await?;
        let secret = domain::ApiKeySecret::generate();
        db::api_keys::insert(&pool, uuid::Uuid::new_v4(), user, "bench", &secret).await?;
        pool.close().await;
        anyhow::Ok(secret.expose().to_owned())
    })?;

    let stall_run = Duration::from_secs(2);
    let stalls = core_stalls(stall_run);

    let exe = std::env::current_exe()?;
    // Counted before this thread is pinned to one of them.
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let up = free_addr();
    let px = free_addr();
    let mut children = Children(Vec::new());
    children.0.push(
        Command::new(&exe)
            .arg("upstream")
            .arg(up.to_string())
            .spawn()?,
    );
    wait_ready(up, "/healthz");
    // BENCH_PROXY_UNDER runs the proxy under another program, e.g. `valgrind --tool=callgrind`
    // to count the instructions a request costs (the same count whatever else the machine does).
    let mut proxy_cmd = command_under("BENCH_PROXY_UNDER", &exe);
    children.0.push(
        proxy_cmd
            .arg("proxy")
            .arg(px.to_string())
            .arg(&database_url)
            .arg(up.to_string())
            .spawn()?,
    );
    wait_ready(px, "/readyz");
    let rl = free_addr();
    children
        .0
        .push(start_relay(Command::new(&exe), "relay", rl, up)?);
    let hr = free_addr();
    // BENCH_HTTP_RELAY_UNDER: as BENCH_PROXY_UNDER, for the HTTP relay (the same requests go
    // through both, so their counts compare).
    let http_relay = command_under("BENCH_HTTP_RELAY_UNDER", &exe);
    children
        .0
        .push(start_relay(http_relay, "relay-http", hr, up)?);
    // After spawning the proxy and the relay, which would inherit the mask.
    pin_to_cpu(0);
    let proxy_pid = children.0[1].id();
    let upstream_pid = children.0[0].id();
    let relay_pid = children.0[2].id();
    let http_relay_pid = children.0[3].id();

    let direct = http::post(up, "/openai/v1/chat/completions", "sk-sandbox", CHAT);
    let through = http::post(px, "/v1/chat/completions", &key, CHAT);
    let direct_s = http::post(up, "/openai/v1/chat/completions", "sk-sandbox", CHAT_STREAM);
    let through_s = http::post(px, "/v1/chat/completions", &key, CHAT_STREAM);
    let n: usize = std::env::var("BENCH_SEQUENTIAL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let streamed: Option<usize> = std::env::var("BENCH_STREAMED")
        .ok()
        .and_then(|v| v.parse().ok());
    let secs: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);

    println!("poindexter proxy benchmark ({} cores; upstream = sandbox on 1 thread; auth, rate limit, metering on)", cores);
    println!(
        "\nthe machine alone: a thread spinning on each core for {} s was stopped for ≥ 0.5 ms",
        stall_run.as_secs()
    );
    for (cpu, (count, total, longest)) in stalls.iter().enumerate() {
        println!(
            "  core {cpu}: {count} times, {:.1} ms in all ({:.2}% of the time), longest {:.1} ms",
            total.as_secs_f64() * 1e3,
            total.as_secs_f64() * 100.0 / stall_run.as_secs_f64(),
            longest.as_secs_f64() * 1e3
        );
    }
    let mut proxied_requests = 0usize;
    rt.block_on(async {
        let (d, _) = sequential(up, &direct, n).await;
        let (p, _) = sequential(px, &through, n).await;
        let (r, _) = sequential(rl, &direct, n).await;
        let (h, _) = sequential(hr, &direct, n).await;
        proxied_requests += n + n / 10;
        let (d50, d99, p50, p99) = (pct(&d, 0.5), pct(&d, 0.99), pct(&p, 0.5), pct(&p, 0.99));
        let (r50, r99) = (pct(&r, 0.5), pct(&r, 0.99));
        println!("\nsequential, non-streaming, {n} requests each");
        println!("  direct        p50 {:>8.1} µs   p99 {:>8.1} µs", us(d50), us(d99));
        println!("  through proxy p50 {:>8.1} µs   p99 {:>8.1} µs", us(p50), us(p99));
        println!("  bare relay    p50 {:>8.1} µs   p99 {:>8.1} µs", us(r50), us(r99));
        println!("  HTTP relay    p50 {:>8.1} µs   p99 {:>8.1} µs", us(pct(&h, 0.5)), us(pct(&h, 0.99)));
        let (a50, a99) = (us(p50) - us(d50), us(p99) - us(d99));
        println!("  added         p50 {a50:>8.1} µs   p99 {a99:>8.1} µs   (targets ≤ 100 / ≤ 500)");
        println!("  relay added   p50 {:>8.1} µs   p99 {:>8.1} µs   (the floor for any proxy here)", us(r50) - us(d50), us(r99) - us(d99));

        let ns = streamed.unwrap_or(n / 2);
        let (ds, dsf) = sequential(up, &direct_s, ns).await;
        let (ps, psf) = sequential(px, &through_s, ns).await;
        let (hs, hsf) = sequential(hr, &direct_s, ns).await;
        proxied_requests += ns + ns / 10;
        println!("\nstreaming (SSE, 16 tokens), {ns} requests each: time to first body byte");
        println!("  direct        p50 {:>8.1} µs   p99 {:>8.1} µs   (whole stream p50 {:.1} µs)", us(pct(&dsf, 0.5)), us(pct(&dsf, 0.99)), us(pct(&ds, 0.5)));
        println!("  through proxy p50 {:>8.1} µs   p99 {:>8.1} µs   (whole stream p50 {:.1} µs)", us(pct(&psf, 0.5)), us(pct(&psf, 0.99)), us(pct(&ps, 0.5)));
        println!("  HTTP relay    p50 {:>8.1} µs   p99 {:>8.1} µs   (whole stream p50 {:.1} µs)", us(pct(&hsf, 0.5)), us(pct(&hsf, 0.99)), us(pct(&hs, 0.5)));
        println!("  added TTFB    p50 {:>8.1} µs   (target ≤ 200)", us(pct(&psf, 0.5)) - us(pct(&dsf, 0.5)));

        let run = Duration::from_secs(secs);
        let (drps, dl, up_cpu) = load_cpu(up, &direct, upstream_pid, None, run).await;
        let (prps, pl, px_cpu) = load_cpu(px, &through, proxy_pid, None, run).await;
        let (rrps, rll, rl_cpu) = load_cpu(rl, &direct, relay_pid, None, run).await;
        let (hrps, hll, hr_cpu) = load_cpu(hr, &direct, http_relay_pid, None, run).await;
        proxied_requests += pl.len();
        println!("\n64 concurrent connections as fast as they go (closed loop), non-streaming, {secs} s each");
        println!("  direct        {drps:>9.0} req/s   p50 {:>8.1} µs   p99 {:>8.1} µs   p99.9 {:>8.1} µs", us(pct(&dl, 0.5)), us(pct(&dl, 0.99)), us(pct(&dl, 0.999)));
        println!("  through proxy {prps:>9.0} req/s   p50 {:>8.1} µs   p99 {:>8.1} µs   p99.9 {:>8.1} µs", us(pct(&pl, 0.5)), us(pct(&pl, 0.99)), us(pct(&pl, 0.999)));
        println!("  bare relay    {rrps:>9.0} req/s   p50 {:>8.1} µs   p99 {:>8.1} µs   p99.9 {:>8.1} µs", us(pct(&rll, 0.5)), us(pct(&rll, 0.99)), us(pct(&rll, 0.999)));
        println!("  added p99 {:.1} µs (target ≤ 1000); proxy/direct throughput {:.2} (target ≥ 20000 req/s)", us(pct(&pl, 0.99)) - us(pct(&dl, 0.99)), prps / drps);
        println!("  HTTP relay    {hrps:>9.0} req/s   p50 {:>8.1} µs   p99 {:>8.1} µs   p99.9 {:>8.1} µs", us(pct(&hll, 0.5)), us(pct(&hll, 0.99)), us(pct(&hll, 0.999)));
        println!("  relay added p99 {:.1} µs; relay/direct throughput {:.2} (the floor for any proxy here)", us(pct(&rll, 0.99)) - us(pct(&dl, 0.99)), rrps / drps);
        if !dl.is_empty() && !pl.is_empty() && !rll.is_empty() && !hll.is_empty() {
            println!(
                "  CPU per request: upstream {:.1} µs (direct run), proxy {:.1} µs (auth, limit, relay, metering batches), bare relay {:.1} µs; proxy/relay {:.2} (target ≤ 2)",
                up_cpu * 1e6 / dl.len() as f64,
                px_cpu * 1e6 / pl.len() as f64,
                rl_cpu * 1e6 / rll.len() as f64,
                (px_cpu / pl.len() as f64) / (rl_cpu / rll.len() as f64)
            );
            let hr_req = hr_cpu / hll.len() as f64;
            println!(
                "  HTTP relay (hyper at both ends, nothing else) {:.1} µs, {:.2} × the bare relay: the floor for a proxy on this HTTP stack; the proxy is {:.2} × it",
                hr_req * 1e6,
                hr_req / (rl_cpu / rll.len() as f64),
                (px_cpu / pl.len() as f64) / hr_req
            );
        }

        // What Dex sends: the whole conversation each turn. The proxy reads `model` and
        // `stream` from it; the relays only copy it.
        let large_kb: usize = std::env::var("BENCH_LARGE_KB")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(48);
        if large_kb > 0 && secs > 0 {
            let body = conversation(large_kb * 1024);
            let direct_l = http::post(up, "/openai/v1/chat/completions", "sk-sandbox", &body);
            let through_l = http::post(px, "/v1/chat/completions", &key, &body);
            let (prps, pl, px_cpu) = load_cpu(px, &through_l, proxy_pid, None, run).await;
            let (rrps, rll, rl_cpu) = load_cpu(rl, &direct_l, relay_pid, None, run).await;
            let (hrps, hll, hr_cpu) = load_cpu(hr, &direct_l, http_relay_pid, None, run).await;
            proxied_requests += pl.len();
            println!("\n64 connections, closed loop, non-streaming, a {} KB conversation in each request, {secs} s each", body.len() / 1024);
            println!("  through proxy {prps:>9.0} req/s   p50 {:>8.1} µs   p99 {:>8.1} µs", us(pct(&pl, 0.5)), us(pct(&pl, 0.99)));
            println!("  bare relay    {rrps:>9.0} req/s   p50 {:>8.1} µs   p99 {:>8.1} µs", us(pct(&rll, 0.5)), us(pct(&rll, 0.99)));
            println!("  HTTP relay    {hrps:>9.0} req/s   p50 {:>8.1} µs   p99 {:>8.1} µs", us(pct(&hll, 0.5)), us(pct(&hll, 0.99)));
            let per = |cpu: f64, n: usize| cpu * 1e6 / n.max(1) as f64;
            let (x, r, h) = (per(px_cpu, pl.len()), per(rl_cpu, rll.len()), per(hr_cpu, hll.len()));
            println!("  CPU per request: proxy {x:.1} µs, bare relay {r:.1} µs, HTTP relay {h:.1} µs; proxy/relay {:.2}, proxy/HTTP relay {:.2}", x / r, x / h);
        }

        // Latency under a given load rather than at saturation: at saturation a closed loop's
        // latency is just 64 / throughput, and the proxy's extra CPU shows up twice.
        let rate: f64 = std::env::var("BENCH_RATE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000.0);
        let me = std::process::id();
        let (t0, g0) = (machine_ticks(), cpu_secs(me));
        let (drate, dl) = load(up, &direct, 64, Some(rate), run).await;
        let (t1, g1) = (machine_ticks(), cpu_secs(me));
        let (prate, pl) = load(px, &through, 64, Some(rate), run).await;
        let (t2, g2) = (machine_ticks(), cpu_secs(me));
        let (rrate, rll) = load(rl, &direct, 64, Some(rate), run).await;
        let t3 = machine_ticks();
        proxied_requests += pl.len();
        let kept = |achieved: f64| if achieved < rate * 0.98 { " (did NOT keep up with the rate)" } else { "" };
        println!("\n64 concurrent connections at a steady {rate:.0} req/s in all, non-streaming, {secs} s each");
        println!("  direct        {drate:>9.0} req/s   p50 {:>8.1} µs   p99 {:>8.1} µs   p99.9 {:>8.1} µs", us(pct(&dl, 0.5)), us(pct(&dl, 0.99)), us(pct(&dl, 0.999)));
        println!("  through proxy {prate:>9.0} req/s   p50 {:>8.1} µs   p99 {:>8.1} µs   p99.9 {:>8.1} µs", us(pct(&pl, 0.5)), us(pct(&pl, 0.99)), us(pct(&pl, 0.999)));
        println!("  bare relay    {rrate:>9.0} req/s   p50 {:>8.1} µs   p99 {:>8.1} µs   p99.9 {:>8.1} µs", us(pct(&rll, 0.5)), us(pct(&rll, 0.99)), us(pct(&rll, 0.999)));
        println!(
            "  added p50 {:.1} µs, p99 {:.1} µs (target ≤ 1000){}",
            us(pct(&pl, 0.5)) - us(pct(&dl, 0.5)),
            us(pct(&pl, 0.99)) - us(pct(&dl, 0.99)),
            kept(prate)
        );
        println!(
            "  relay added p50 {:.1} µs, p99 {:.1} µs{} (the floor for any proxy here)",
            us(pct(&rll, 0.5)) - us(pct(&dl, 0.5)),
            us(pct(&rll, 0.99)) - us(pct(&dl, 0.99)),
            kept(rrate)
        );
        // Everything shares these cores: on a small or slow machine they are nearly full at
        // this rate through the proxy, and the tail is then queueing, whatever the proxy does.
        println!(
            "  all cores: direct {}; through proxy {}; bare relay {}",
            machine_share(t0, t1),
            machine_share(t1, t2),
            machine_share(t2, t3)
        );
        println!(
            "  load generator CPU per request: direct {:.1} µs, through proxy {:.1} µs",
            (g1 - g0) * 1e6 / dl.len().max(1) as f64,
            (g2 - g1) * 1e6 / pl.len().max(1) as f64
        );

        let peers = streams::Peers { up, px, rl, hr, upstream_pid, proxy_pid, relay_pid, http_relay_pid };
        if secs > 0 {
            proxied_requests += streams::under_load(&peers, &direct_s, &through_s, run).await;
        }

        let (rss, hwm) = rss_mib(proxy_pid);
        println!("\nproxy memory: RSS {rss:.1} MiB now, peak {hwm:.1} MiB (target ≤ 64)");
        println!("\nfor scale (reported elsewhere, same kind of setup): Portkey adds ~2.7 ms and serves ~730 req/s at 64;");
        println!("LiteLLM adds ~18 ms and ~66 req/s; Bifrost adds ~0.44 ms.");
        println!("  added p50 vs Portkey: {:.0}x less; vs LiteLLM: {:.0}x less; vs Bifrost: {:.1}x less", 2700.0 / a50.max(1.0), 18000.0 / a50.max(1.0), 440.0 / a50.max(1.0));
        println!("  throughput vs Portkey: {:.0}x; vs LiteLLM: {:.0}x", prps / 730.0, prps / 66.0);
    });

    // A fresh proxy for the realistic run, so that its memory is that run's.
    if secs > 0 {
        proxied_requests += rt.block_on(streams::realistic(&exe, &database_url, &key))?;
    }
    let metered = rt.block_on(count_events(&database_url, proxied_requests))?;
    println!("\nmetering: {metered} usage events for {proxied_requests} proxied requests");
    drop(children);
    rt.block_on(db::drop_database(&database_url))?;
    Ok(())
}

/// The usage events recorded so far, once there are `expected` (or after 30 s). Every
/// proxied request must have become exactly one.
async fn count_events(database_url: &str, expected: usize) -> anyhow::Result<i64> {
    let pool = db::connect(database_url).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM usage_events")
            .fetch_one(&pool)
            .await?;
        if n as usize >= expected || Instant::now() > deadline {
            pool.close().await;
            return Ok(n);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
