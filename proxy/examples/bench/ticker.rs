//! The realistic streaming run: an upstream that answers every chat request with a token every
//! `cadence` for `tokens` tokens (OpenAI's SSE format, usage at the end when asked for), and
//! readers that hold `streams` such answers open at once. Each token's text is the moment the
//! upstream wrote it (CLOCK_MONOTONIC, shared by every process on the machine), so a reader
//! knows how long each chunk took to reach it: direct, that is the sockets and the scheduler;
//! through the proxy, the same plus what the proxy adds.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Nanoseconds on CLOCK_MONOTONIC, the clock every process here reads alike.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes into the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Serves the ticking upstream on one thread until killed. GET (readiness) gets 200 and a
/// closed connection; POST gets a stream.
pub fn serve(addr: SocketAddr, tokens: u32, cadence: Duration) -> anyhow::Result<()> {
    crate::pin_to_cpu(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = TcpListener::bind(addr).await?;
        loop {
            let (conn, _) = listener.accept().await?;
            tokio::spawn(async move {
                let _ = answer(conn, tokens, cadence).await;
            });
        }
    })
}

async fn answer(mut conn: TcpStream, tokens: u32, cadence: Duration) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(4096);
    loop {
        // The head, then as much body as Content-Length says.
        let head_end = loop {
            if let Some(i) = memchr::memmem::find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            if conn.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            if conn.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        }
        if head.starts_with("get") {
            conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .await?;
            return Ok(());
        }
        let close = head.contains("connection: close");
        let include_usage =
            memchr::memmem::find(&buf[head_end..head_end + length], b"\"include_usage\":true")
                .is_some();
        buf.drain(..head_end + length);
        conn.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
        )
        .await?;
        let mut tick = tokio::time::interval(cadence);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut out = Vec::with_capacity(512);
        for _ in 0..tokens {
            tick.tick().await;
            let event = format!(
                "data: {{\"id\":\"chatcmpl-tick\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{}\"}},\"finish_reason\":null}}]}}\n\n",
                now_ns()
            );
            chunk(&mut out, event.as_bytes());
            conn.write_all(&out).await?;
        }
        out.clear();
        let end = b"data: {\"id\":\"chatcmpl-tick\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
        chunk(&mut out, end);
        if include_usage {
            let usage = format!(
                "data: {{\"id\":\"chatcmpl-tick\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{{\"prompt_tokens\":9,\"completion_tokens\":{tokens},\"total_tokens\":{}}}}}\n\n",
                tokens + 9
            );
            let mut more = Vec::new();
            chunk(&mut more, usage.as_bytes());
            out.extend_from_slice(&more);
        }
        let mut done = Vec::new();
        chunk(&mut done, b"data: [DONE]\n\n");
        out.extend_from_slice(&done);
        out.extend_from_slice(b"0\r\n\r\n");
        conn.write_all(&out).await?;
        if close {
            return Ok(());
        }
    }
}

/// `out` = `data` as one chunk of a chunked body.
fn chunk(out: &mut Vec<u8>, data: &[u8]) {
    out.clear();
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// What the readers saw: the delay of every token chunk, and how many streams ended well.
pub struct Seen {
    pub delays: Vec<Duration>,
    pub complete: usize,
}

/// Opens `streams` streams at once (their starts spread over one `cadence`, as independent
/// users' would be), reads each to its end and measures each token's delay.
pub async fn read_streams(
    addr: SocketAddr,
    request: Vec<u8>,
    streams: usize,
    cadence: Duration,
) -> Seen {
    let request = std::sync::Arc::new(request);
    let tasks: Vec<_> = (0..streams)
        .map(|i| {
            let request = request.clone();
            let offset = cadence * i as u32 / streams as u32;
            tokio::spawn(async move {
                tokio::time::sleep(offset).await;
                read_one(addr, &request).await
            })
        })
        .collect();
    let mut seen = Seen {
        delays: Vec::new(),
        complete: 0,
    };
    for t in tasks {
        if let Ok(Ok((delays, complete))) = t.await {
            seen.delays.extend(delays);
            seen.complete += usize::from(complete);
        }
    }
    seen.delays.sort_unstable();
    seen
}

/// One stream on its own connection (`connection: close`), read to its end: each token's
/// delay, and whether `[DONE]` came.
async fn read_one(addr: SocketAddr, request: &[u8]) -> std::io::Result<(Vec<Duration>, bool)> {
    let mut conn = TcpStream::connect(addr).await?;
    conn.set_nodelay(true)?;
    conn.write_all(request).await?;
    let mut buf = Vec::with_capacity(8192);
    let mut delays = Vec::with_capacity(512);
    let mut done = false;
    let marker = b"\"content\":\"";
    loop {
        let n = conn.read_buf(&mut buf).await?;
        let now = now_ns();
        if n == 0 {
            break;
        }
        // Complete lines only; a line cut by the read waits for the rest.
        let Some(last_nl) = memchr::memrchr(b'\n', &buf) else {
            continue;
        };
        for line in buf[..last_nl].split(|&b| b == b'\n') {
            if line.starts_with(b"data: [DONE]") {
                done = true;
            }
            let Some(at) = memchr::memmem::find(line, marker) else {
                continue;
            };
            let digits = &line[at + marker.len()..];
            let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
            if len == 0 {
                continue;
            }
            let sent: u64 = std::str::from_utf8(&digits[..len])
                .ok()
                .and_then(|d| d.parse().ok())
                .unwrap_or(now);
            delays.push(Duration::from_nanos(now.saturating_sub(sent)));
        }
        buf.drain(..=last_nl);
    }
    Ok((delays, done))
}
