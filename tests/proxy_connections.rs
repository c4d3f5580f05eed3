//! The proxy keeps its connections to a provider alive and reuses them (a TLS handshake to a
//! provider costs more than the request), and a connection the provider has closed is never
//! used again: the next request goes on a new one, with no error and no retry needed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod proxy_support;

use common::db::TestDb;
use proxy_support as ps;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn provider_connections_are_reused_and_closed_ones_replaced() {
    let db = TestDb::new().await;
    let sandbox = ps::start_sandbox().await;
    let user = ps::user(&db.pool, Some(("pro", "active")), None).await;

    // A provider that keeps connections open between requests.
    let kept = Forwarder::start(sandbox, None).await;
    let mut options = ps::options(&db.url, sandbox);
    options.openai = vec![proxy::Target {
        base_url: format!("http://{}/openai/v1", kept.addr),
        api_key: "sk-sandbox".into(),
    }];
    options.anthropic = vec![proxy::Target {
        base_url: format!("http://{}/anthropic", kept.addr),
        api_key: "sk-ant-sandbox".into(),
    }];
    // No second attempt: a request sent on a dead connection would show as an error.
    options.max_attempts = 1;
    let proxy = ps::RunningProxy::start(options.clone()).await;
    for i in 0..12 {
        let res = ps::post_chat(&proxy, &user.key, "gpt-4o-mini", i % 2 == 0).await;
        assert_eq!(res.status(), 200);
        if i % 2 == 0 {
            let (text, broke) = ps::read_stream(res).await;
            assert!(
                !broke && text.trim_end().ends_with("data: [DONE]"),
                "{text}"
            );
        } else {
            res.bytes().await.unwrap();
        }
        let res = ps::post_chat(&proxy, &user.key, "claude-3-5-haiku-latest", false).await;
        assert_eq!(res.status(), 200);
        res.bytes().await.unwrap();
    }
    // 24 requests; each serving thread opens one connection and reuses it.
    let threads = std::thread::available_parallelism().unwrap().get();
    let opened = kept.accepted();
    assert!(
        (1..=threads).contains(&opened),
        "{opened} connections for 24 requests"
    );
    proxy.stop().await;

    // A provider that closes a connection after 100 ms without traffic, as servers close
    // idle keep-alive connections.
    let closing = Forwarder::start(sandbox, Some(Duration::from_millis(100))).await;
    options.openai[0].base_url = format!("http://{}/openai/v1", closing.addr);
    let proxy = ps::RunningProxy::start(options).await;
    for i in 0..4 {
        let res = ps::post_chat(&proxy, &user.key, "gpt-4o-mini", false).await;
        assert_eq!(res.status(), 200);
        res.bytes().await.unwrap();
        // The pause: the provider closes the idle connection before the next request.
        closing.wait_closed(i + 1).await;
    }
    assert_eq!(
        closing.accepted(),
        4,
        "each request after a pause needed a new connection"
    );
    proxy.stop().await;

    // Every request above was metered once.
    let rows = ps::wait_usage(&db.pool, user.id, 28, Duration::from_secs(5)).await;
    assert_eq!(rows.len(), 28);
    db.drop().await;
}

/// A TCP forwarder in front of the sandbox that counts the connections it accepts and, with
/// `idle`, closes a connection that carried nothing for that long.
struct Forwarder {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    /// Connections it has closed (both sides), counted after the close.
    closed: Arc<AtomicUsize>,
}

impl Forwarder {
    async fn start(to: SocketAddr, idle: Option<Duration>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let (counted, ended) = (accepted.clone(), closed.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let ended = ended.clone();
                tokio::spawn(async move {
                    if let Ok(server) = tokio::net::TcpStream::connect(to).await {
                        relay(client, server, idle).await;
                    }
                    ended.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            addr,
            accepted,
            closed,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Waits until it has closed `n` connections.
    async fn wait_closed(&self, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.closed.load(Ordering::SeqCst) < n {
            assert!(
                std::time::Instant::now() < deadline,
                "the provider never closed the idle connection"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Copies both ways until either side closes, or nothing moved for `idle`; then both close.
async fn relay(
    mut client: tokio::net::TcpStream,
    mut server: tokio::net::TcpStream,
    idle: Option<Duration>,
) {
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    let (mut up, mut down) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    let quiet = idle.unwrap_or(Duration::from_secs(3600));
    loop {
        tokio::select! {
            n = cr.read(&mut up) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => if sw.write_all(&up[..n]).await.is_err() { return },
            },
            n = sr.read(&mut down) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => if cw.write_all(&down[..n]).await.is_err() { return },
            },
            () = tokio::time::sleep(quiet) => return,
        }
    }
}
