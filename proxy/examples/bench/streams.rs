//! Streams under load (issue #16): a closed loop at 64 connections and a steady rate, direct
//! vs through the proxy vs through the bare relay and the HTTP relay, with the CPU each spends per streamed
//! request and per chunk; then the realistic run, many long streams at a token every 20 ms
//! from the ticking upstream (`ticker.rs`), with the proxy's memory, its CPU per token and
//! the delay it adds to each chunk.

use crate::{
    command_under, cpu_by_thread, cpu_secs, free_addr, http, load, load_cpu, machine_share,
    machine_ticks, on_cpu_times, pct, rss_mib, start_relay, us, wait_ready, Children,
};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Peers {
    pub up: SocketAddr,
    pub px: SocketAddr,
    pub rl: SocketAddr,
    pub hr: SocketAddr,
    pub upstream_pid: u32,
    pub proxy_pid: u32,
    pub relay_pid: u32,
    pub http_relay_pid: u32,
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// SSE events in one answer to `request` (read on a connection of its own).
fn events_per_stream(addr: SocketAddr, request: &[u8]) -> usize {
    use std::io::{Read, Write};
    let text = String::from_utf8_lossy(request).replacen("\r\n", "\r\nconnection: close\r\n", 1);
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(text.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    memchr::memmem::find_iter(&out, b"data: ").count()
}

/// The closed loop and the steady rate; returns how many requests went through the proxy.
pub async fn under_load(p: &Peers, direct_s: &[u8], through_s: &[u8], run: Duration) -> usize {
    let events = events_per_stream(p.px, through_s);
    let direct_events = events_per_stream(p.up, direct_s);
    let secs = run.as_secs_f64();

    let cpu = cpu_secs;
    let (d_rps, dl, u_cpu) = load_cpu(p.up, direct_s, p.upstream_pid, None, run).await;
    let (p_rps, pl, x_cpu) = load_cpu(p.px, through_s, p.proxy_pid, None, run).await;
    let (r_rps, rll, r_cpu) = load_cpu(p.rl, direct_s, p.relay_pid, None, run).await;
    let (h_rps, hl, h_cpu) = load_cpu(p.hr, direct_s, p.http_relay_pid, None, run).await;
    // The stream `events_per_stream` read through the proxy, too.
    let mut proxied = pl.len() + 1;
    println!(
        "\nstreaming (SSE, {events} events a stream through the proxy, {direct_events} direct): \
         64 connections as fast as they go (closed loop), {secs:.0} s each"
    );
    row("direct", d_rps, &dl);
    row("through proxy", p_rps, &pl);
    row("bare relay", r_rps, &rll);
    row("HTTP relay", h_rps, &hl);
    println!(
        "  proxy/direct throughput {:.2} (target ≥ 0.5); relay/direct {:.2} (the floor for any proxy here)",
        p_rps / d_rps,
        r_rps / d_rps
    );
    let per = |cpu: f64, n: usize| cpu * 1e6 / n.max(1) as f64;
    let (x_req, r_req) = (per(x_cpu, pl.len()), per(r_cpu, rll.len()));
    println!(
        "  CPU per streamed request: upstream {:.1} µs (direct run), proxy {x_req:.1} µs, bare relay {r_req:.1} µs; proxy/relay {:.2} (target ≤ 2)",
        per(u_cpu, dl.len()),
        x_req / r_req
    );
    println!(
        "  CPU per chunk (event): proxy {:.2} µs, bare relay {:.2} µs",
        x_req / events as f64,
        r_req / events as f64
    );
    http_relay_line(per(h_cpu, hl.len()), r_req, x_req);

    let rate: f64 = env("BENCH_STREAM_RATE", 2_000.0);
    let t0 = machine_ticks();
    let (d_rate, dl) = load(p.up, direct_s, 64, Some(rate), run).await;
    let t1 = machine_ticks();
    let (x0, by0) = (cpu(p.proxy_pid), cpu_by_thread(p.proxy_pid));
    let x_on = on_cpu_times(p.proxy_pid);
    let (p_rate, pl) = load(p.px, through_s, 64, Some(rate), run).await;
    let (x_cpu, by1) = (cpu(p.proxy_pid) - x0, cpu_by_thread(p.proxy_pid));
    let x_on = on_cpu_times(p.proxy_pid) - x_on;
    let t2 = machine_ticks();
    let r_on = on_cpu_times(p.relay_pid);
    let (r_rate, rll, r_cpu) = load_cpu(p.rl, direct_s, p.relay_pid, Some(rate), run).await;
    let r_on = on_cpu_times(p.relay_pid) - r_on;
    let t3 = machine_ticks();
    let h_on = on_cpu_times(p.http_relay_pid);
    let (h_rate, hl, h_cpu) = load_cpu(p.hr, direct_s, p.http_relay_pid, Some(rate), run).await;
    let h_on = on_cpu_times(p.http_relay_pid) - h_on;
    proxied += pl.len();
    println!("\nstreaming, 64 connections at a steady {rate:.0} streams/s in all, {secs:.0} s each (whole-stream latency)");
    row("direct", d_rate, &dl);
    row("through proxy", p_rate, &pl);
    row("bare relay", r_rate, &rll);
    row("HTTP relay", h_rate, &hl);
    println!(
        "  added p50 {:.1} µs, p99 {:.1} µs; relay added p50 {:.1} µs, p99 {:.1} µs",
        us(pct(&pl, 0.5)) - us(pct(&dl, 0.5)),
        us(pct(&pl, 0.99)) - us(pct(&dl, 0.99)),
        us(pct(&rll, 0.5)) - us(pct(&dl, 0.5)),
        us(pct(&rll, 0.99)) - us(pct(&dl, 0.99)),
    );
    let (x_req, r_req) = (per(x_cpu, pl.len()), per(r_cpu, rll.len()));
    println!(
        "  CPU per streamed request: proxy {x_req:.1} µs ({:.2} µs a chunk), bare relay {r_req:.1} µs ({:.2} µs a chunk); proxy/relay {:.2} (target ≤ 2)",
        x_req / events as f64,
        r_req / events as f64,
        x_req / r_req
    );
    http_relay_line(per(h_cpu, hl.len()), r_req, x_req);
    // Serving threads against the proxy's background work (the usage writer's batches, key
    // and usage refreshes), whose cost per batch or tick is spread over fewer requests at a
    // low rate than in the closed loop.
    let split: Vec<String> = by1
        .iter()
        .map(|(name, t)| (name, t - by0.get(name).copied().unwrap_or(0.0)))
        .filter(|(_, t)| *t > 0.0)
        .map(|(name, t)| format!("{name} {:.1} µs", per(t, pl.len())))
        .collect();
    println!(
        "  the proxy's CPU per streamed request by thread: {}",
        split.join(", ")
    );
    let times = |n: u64, streams: usize| n as f64 / streams.max(1) as f64;
    println!(
        "  times a thread was put on a CPU, a stream: proxy {:.2}, bare relay {:.2}, HTTP relay {:.2}",
        times(x_on, pl.len()),
        times(r_on, rll.len()),
        times(h_on, hl.len())
    );
    println!(
        "  all cores: direct {}; through proxy {}; bare relay {}",
        machine_share(t0, t1),
        machine_share(t1, t2),
        machine_share(t2, t3)
    );
    proxied
}

/// The HTTP relay's CPU per streamed request beside the bare relay's and the proxy's.
fn http_relay_line(h_req: f64, r_req: f64, x_req: f64) {
    println!(
        "  HTTP relay (hyper at both ends, nothing else) {h_req:.1} µs, {:.2} × the bare relay: the floor for a proxy on this HTTP stack; the proxy is {:.2} × it",
        h_req / r_req,
        x_req / h_req
    );
}

fn row(name: &str, rps: f64, lat: &[Duration]) {
    println!(
        "  {name:<13} {rps:>9.0} req/s   p50 {:>8.1} µs   p99 {:>8.1} µs   p99.9 {:>8.1} µs",
        us(pct(lat, 0.5)),
        us(pct(lat, 0.99)),
        us(pct(lat, 0.999))
    );
}

/// `cmd` allowed on `cpus` (a list of CPU numbers), or on every CPU: the bench's own thread
/// is pinned to one by now, and a child would inherit that.
fn on_cpus(cmd: &mut Command, cpus: Option<Vec<usize>>) -> &mut Command {
    // Every CPU the kernel could have (CPU_SETSIZE).
    let cpus = cpus.unwrap_or_else(|| (0..1024).collect());
    // SAFETY: only sched_setaffinity, which is async-signal-safe, runs in the child.
    unsafe {
        cmd.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_ZERO(&mut set);
            for &c in &cpus {
                libc::CPU_SET(c, &mut set);
            }
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
            Ok(())
        })
    }
}

/// The realistic run with a proxy and the two relays of its own in front of the ticking upstream;
/// returns how many streams went through the proxy. `BENCH_STREAMS` (1000), `BENCH_TICKS`
/// (500) and `BENCH_CADENCE_MS` (20) size it; `BENCH_REALISTIC_CPUS` (e.g. `0`) restricts the
/// proxy to those CPUs, and so to that many serving threads; `BENCH_REALISTIC_UNDER` runs it
/// under another program.
pub async fn realistic(
    exe: &std::path::Path,
    database_url: &str,
    key: &str,
) -> anyhow::Result<usize> {
    let streams: usize = env("BENCH_STREAMS", 1_000);
    let ticks: u32 = env("BENCH_TICKS", 500);
    let cadence = Duration::from_millis(env("BENCH_CADENCE_MS", 20));
    let cpus: Option<Vec<usize>> = std::env::var("BENCH_REALISTIC_CPUS")
        .ok()
        .map(|v| v.split(',').filter_map(|c| c.trim().parse().ok()).collect());
    let (tk, px, rl, hr) = (free_addr(), free_addr(), free_addr(), free_addr());
    let mut children = Children(Vec::new());
    children.0.push(
        on_cpus(Command::new(exe).arg("ticker"), None)
            .arg(tk.to_string())
            .arg(ticks.to_string())
            .arg(cadence.as_millis().to_string())
            .spawn()?,
    );
    wait_ready(tk, "/healthz");
    // BENCH_REALISTIC_UNDER runs this proxy under another program, e.g. valgrind's dhat to see
    // what each open stream holds (with few, slow streams: BENCH_STREAMS, BENCH_CADENCE_MS).
    let mut proxy_cmd = command_under("BENCH_REALISTIC_UNDER", exe);
    children.0.push(
        on_cpus(proxy_cmd.arg("proxy"), cpus.clone())
            .arg(px.to_string())
            .arg(database_url)
            .arg(tk.to_string())
            .spawn()?,
    );
    wait_ready(px, "/readyz");
    for (kind, listen) in [("relay", rl), ("relay-http", hr)] {
        let mut relay = Command::new(exe);
        on_cpus(&mut relay, None);
        children.0.push(start_relay(relay, kind, listen, tk)?);
    }
    let (proxy_pid, relay_pid) = (children.0[1].id(), children.0[2].id());
    let http_relay_pid = children.0[3].id();
    let body = r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Say hello"}]}"#;
    let request = |host: SocketAddr, path: &str, auth: &str| {
        let r = http::post(host, path, auth, body);
        String::from_utf8(r)
            .unwrap()
            .replacen("\r\n", "\r\nconnection: close\r\n", 1)
            .into_bytes()
    };
    let (rss_idle, _) = rss_mib(proxy_pid);
    let direct = crate::ticker::read_streams(
        tk,
        request(tk, "/openai/v1/chat/completions", "sk"),
        streams,
        cadence,
    )
    .await;

    // Memory sampled while every stream is open, half-way through.
    let half = cadence * ticks / 2;
    let sampler = rss_after(proxy_pid, half);
    let started = Instant::now();
    let (through, x_cpu) = streams_cpu(
        px,
        request(px, "/v1/chat/completions", key),
        proxy_pid,
        streams,
        cadence,
    )
    .await;
    let took = started.elapsed();
    let rss_open = sampler.join().unwrap_or_default();
    let (_, rss_peak) = rss_mib(proxy_pid);

    let (relay_idle, _) = rss_mib(relay_pid);
    let relay_sampler = rss_after(relay_pid, half);
    let (relayed, r_cpu) = streams_cpu(
        rl,
        request(rl, "/openai/v1/chat/completions", "sk"),
        relay_pid,
        streams,
        cadence,
    )
    .await;
    let relay_open = relay_sampler.join().unwrap_or_default();

    let (http_relayed, h_cpu) = streams_cpu(
        hr,
        request(hr, "/openai/v1/chat/completions", "sk"),
        http_relay_pid,
        streams,
        cadence,
    )
    .await;

    // The CPUs online, not this thread's: it is pinned to one by now.
    // SAFETY: sysconf only reads a system setting.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
    let threads = cpus.as_ref().map_or(online, Vec::len);
    println!(
        "\nrealistic streams: {streams} at once, a token every {} ms for {ticks} tokens ({:.0} s) each; \
         proxy with {threads} serving thread(s)",
        cadence.as_millis(),
        (cadence * ticks).as_secs_f64()
    );
    for (name, seen) in [
        ("direct", &direct),
        ("through proxy", &through),
        ("bare relay", &relayed),
        ("HTTP relay", &http_relayed),
    ] {
        println!(
            "  {name:<13} {:>6} of {streams} streams complete, {:>7} tokens   delay per chunk p50 {:>7.1} µs   p99 {:>8.1} µs   p99.9 {:>8.1} µs",
            seen.complete,
            seen.delays.len(),
            us(pct(&seen.delays, 0.5)),
            us(pct(&seen.delays, 0.99)),
            us(pct(&seen.delays, 0.999)),
        );
    }
    let added = |q| us(pct(&through.delays, q)) - us(pct(&direct.delays, q));
    let relay_added = |q| us(pct(&relayed.delays, q)) - us(pct(&direct.delays, q));
    let http_added = |q| us(pct(&http_relayed.delays, q)) - us(pct(&direct.delays, q));
    println!(
        "  added delay per chunk: proxy p50 {:.1} µs, p99 {:.1} µs (target ≤ 1000); relay p50 {:.1} µs, p99 {:.1} µs; \
         HTTP relay p50 {:.1} µs, p99 {:.1} µs",
        added(0.5),
        added(0.99),
        relay_added(0.5),
        relay_added(0.99),
        http_added(0.5),
        http_added(0.99)
    );
    println!(
        "  CPU per token: proxy {:.2} µs, bare relay {:.2} µs, HTTP relay {:.2} µs ({:.1} s through the proxy)",
        x_cpu * 1e6 / through.delays.len().max(1) as f64,
        r_cpu * 1e6 / relayed.delays.len().max(1) as f64,
        h_cpu * 1e6 / http_relayed.delays.len().max(1) as f64,
        took.as_secs_f64()
    );
    println!(
        "  proxy memory: RSS {rss_idle:.1} MiB before, {rss_open:.1} MiB with every stream open, peak {rss_peak:.1} MiB (target ≤ 64)"
    );
    println!(
        "  bare relay memory: RSS {relay_idle:.1} MiB before, {relay_open:.1} MiB with every stream open; \
         per open stream: proxy {:.1} KiB, relay {:.1} KiB",
        (rss_open - rss_idle) * 1024.0 / streams.max(1) as f64,
        (relay_open - relay_idle) * 1024.0 / streams.max(1) as f64,
    );
    Ok(streams)
}

/// `streams` streams read through `addr`, with the CPU seconds process `pid` spent meanwhile.
async fn streams_cpu(
    addr: SocketAddr,
    request: Vec<u8>,
    pid: u32,
    streams: usize,
    cadence: Duration,
) -> (crate::ticker::Seen, f64) {
    let before = cpu_secs(pid);
    let seen = crate::ticker::read_streams(addr, request, streams, cadence).await;
    (seen, cpu_secs(pid) - before)
}

/// `pid`'s RSS (MiB) read `after` from now, on a thread of its own.
fn rss_after(pid: u32, after: Duration) -> std::thread::JoinHandle<f64> {
    std::thread::spawn(move || {
        std::thread::sleep(after);
        rss_mib(pid).0
    })
}
