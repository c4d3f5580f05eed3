//! Serving on one single-threaded runtime per core. A connection, the handlers it runs and the
//! tasks they spawn stay on the thread it was handed to: no work stealing and no cross-thread
//! wake-ups on the hot path, which on a small machine cost more than a proxied request itself.
//!
//! One thread accepts and hands connections out in turn. The kernel's SO_REUSEPORT spreading
//! hashes each connection's addresses instead, so a client with a few long-lived connections
//! (64 in the benchmark split 27 / 37) could load one core and leave another idle.

use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

type Handed = (std::net::TcpStream, SocketAddr);

/// Binds the listening socket (TCP_NODELAY, inherited by every accepted connection).
/// Call it inside a tokio runtime.
pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(1024)?.into_std()
}

/// How long serving may wait on a connection: for in-flight requests after the stop, and
/// for a request's head on an open connection.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// After `stop`, in-flight requests may run this long; what still runs then is dropped
    /// with its runtime (a long stream would otherwise hold the process until its supervisor
    /// kills it, and whatever it would have done on the way out with it).
    pub grace: Duration,
    /// A connection that does not deliver a complete request head within this is closed:
    /// an idle keep-alive connection, or a client dribbling its headers, would otherwise hold
    /// a connection and a file descriptor for as long as it liked.
    pub idle: Duration,
}

/// What a serving thread answers each request with (`routes::direct::Lanes`).
pub trait Answer: Clone + Send + 'static {
    fn call(
        &self,
        req: http::Request<Incoming>,
    ) -> impl std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send + use<Self>;
}

/// Serves `app` on `threads` single-threaded runtimes until `stop` turns true, then lets each
/// finish its in-flight requests within `limits.grace`. Blocks the calling thread (use
/// `spawn_blocking`).
pub fn serve<A: Answer>(
    listener: std::net::TcpListener,
    threads: usize,
    app: A,
    stop: watch::Receiver<bool>,
    limits: Limits,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..threads.max(1))
        .map(|_| mpsc::unbounded_channel())
        .unzip();
    // The first thread also accepts.
    let mut acceptor = Some((listener, senders));
    let mut handles = Vec::new();
    for (n, rx) in receivers.into_iter().enumerate() {
        let app = app.clone();
        let stop = stop.clone();
        let accept = acceptor.take();
        let accept_stop = stop.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        handles.push(
            std::thread::Builder::new()
                .name(format!("serve-{n}"))
                .spawn(move || {
                    runtime.block_on(async move {
                        if let Some((listener, senders)) = accept {
                            let listener = tokio::net::TcpListener::from_std(listener)?;
                            tokio::spawn(hand_out(listener, senders, accept_stop));
                        }
                        serve_handed(rx, app, stop, limits).await;
                        Ok(())
                    })
                    // The runtime is dropped here, with any request the grace did not see end.
                })?,
        );
    }
    let mut result = Ok(());
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(_) => result = Err(std::io::Error::other("a serving thread panicked")),
        }
    }
    result
}

/// Serves the connections handed to this thread until `stop`, then drains them.
async fn serve_handed<A: Answer>(
    mut handed: mpsc::UnboundedReceiver<Handed>,
    app: A,
    mut stop: watch::Receiver<bool>,
    limits: Limits,
) {
    // HTTP/1.1 only: the AI SDKs speak it, and the auto-detecting builder waits for a
    // connection's first bytes (to tell HTTP/2 from HTTP/1) with no timeout at all.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle);
    let graceful = GracefulShutdown::new();
    tokio::spawn(keep_a_timer_due_soon());
    loop {
        let (stream, peer) = tokio::select! {
            next = handed.recv() => match next {
                Some(next) => next,
                None => break,
            },
            _ = stop.wait_for(|s| *s) => break,
        };
        // Registers the socket with this thread's runtime.
        let Ok(stream) = tokio::net::TcpStream::from_std(stream) else {
            continue;
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |req: http::Request<Incoming>| app.call(req));
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(limits.grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_s = limits.grace.as_secs_f64(),
            "requests still running at the end of the shutdown grace; cutting them"
        );
    }
}

/// Keeps a timer due within half a second in this thread's runtime, for as long as it runs.
/// Tokio wakes its own driver (an eventfd write, then an extra `epoll_wait`) whenever a
/// timer is registered that falls due before everything already in its wheel, even from the
/// thread that drives it. Each request registers a far-off one (hyper's header-read timer,
/// 60 s; the upstream headers timeout, 600 s), and with nothing nearer in the wheel most of
/// them were "sooner": 0.5–0.8 eventfd writes per request under load, each followed by an
/// extra `epoll_wait` (counted with strace, traced with `perf record`). With this tick in the
/// wheel none are.
async fn keep_a_timer_due_soon() {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
    }
}

/// Accepts until `stop`, giving each connection to the next thread in turn.
async fn hand_out(
    listener: tokio::net::TcpListener,
    threads: Vec<mpsc::UnboundedSender<Handed>>,
    mut stop: watch::Receiver<bool>,
) {
    for next in (0..threads.len()).cycle() {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        match accepted.and_then(|(stream, peer)| Ok((stream.into_std()?, peer))) {
            Ok(handed) => {
                // A thread that is gone is shutting down; the connection just closes.
                let _ = threads[next].send(handed);
            }
            // A connection reset before it was accepted; nothing to do.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => {}
            // Out of file descriptors, say: give the process a moment.
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// One serving thread per core the process may use.
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::Router;
    use tower::ServiceExt;

    impl Answer for Router {
        fn call(
            &self,
            req: http::Request<Incoming>,
        ) -> impl std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send + use<>
        {
            self.clone().oneshot(req.map(Body::new))
        }
    }

    /// Connections go to the threads in turn, whatever their addresses hash to.
    #[test]
    fn connections_are_dealt_to_the_threads_in_turn() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let listener = rt
            .block_on(async { bind("127.0.0.1:0".parse().unwrap()) })
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route(
            "/",
            axum::routing::get(|| async { std::thread::current().name().unwrap_or("").to_owned() }),
        );
        let (stop, stopped) = watch::channel(false);
        let limits = Limits {
            grace: Duration::from_secs(5),
            idle: Duration::from_millis(300),
        };
        let serving = std::thread::spawn(move || serve(listener, 2, app, stopped, limits));
        let names: Vec<String> = (0..6)
            .map(|_| {
                use std::io::{Read, Write};
                let mut c = std::net::TcpStream::connect(addr).unwrap();
                c.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                    .unwrap();
                let mut answer = String::new();
                c.read_to_string(&mut answer).unwrap();
                answer.rsplit("\r\n").next().unwrap().to_owned()
            })
            .collect();
        assert_eq!(
            names,
            ["serve-0", "serve-1", "serve-0", "serve-1", "serve-0", "serve-1"]
        );
        // A taken address is refused.
        let taken = rt.block_on(async { bind(addr) });
        assert_eq!(taken.unwrap_err().kind(), std::io::ErrorKind::AddrInUse);

        // A connection that sends nothing, or half a request head, is closed after the idle
        // limit (300 ms here) rather than held open.
        let full = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";
        for sent in [&b""[..], b"GET / HTTP/1.1\r\nhost: x\r\n", full] {
            use std::io::{Read, Write};
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.write_all(sent).unwrap();
            if sent == full {
                // Answered, then kept alive: idle from then on.
                let mut answer = [0u8; 1024];
                let n = c.read(&mut answer).unwrap();
                assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
            }
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let started = std::time::Instant::now();
            let mut rest = Vec::new();
            let closed = c.read_to_end(&mut rest);
            assert!(closed.is_ok(), "still open after 5 s: {closed:?}");
            let took = started.elapsed();
            assert!(
                took >= Duration::from_millis(250) && took < Duration::from_secs(3),
                "{took:?}"
            );
        }
        stop.send(true).unwrap();
        serving.join().unwrap().unwrap();
    }
}
