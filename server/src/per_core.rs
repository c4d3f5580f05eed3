//! Serving on one single-threaded runtime per core. A connection, the handlers it runs and the
//! tasks they spawn stay on the thread it was handed to: no work stealing and no cross-thread
//! wake-ups on the hot path, which on a small machine cost more than a proxied request itself.
//!
//! One thread accepts and hands connections out in turn. The kernel's SO_REUSEPORT spreading
//! hashes each connection's addresses instead, so a client with a few long-lived connections
//! (64 in the benchmark split 27 / 37) could load one core and leave another idle.

use axum::Router;
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

/// Serves `app` on `threads` single-threaded runtimes until `stop` turns true, then lets each
/// finish its in-flight requests for up to `grace`; what still runs then is dropped with its
/// runtime (a long stream would otherwise hold the process until its supervisor kills it,
/// and whatever it would have done on the way out with it). Blocks the calling thread (use
/// `spawn_blocking`).
pub fn serve(
    listener: std::net::TcpListener,
    threads: usize,
    app: Router,
    stop: watch::Receiver<bool>,
    grace: Duration,
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
        let mut stop = stop.clone();
        let accept = acceptor.take();
        let accept_stop = stop.clone();
        let mut cut = stop.clone();
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
                        let draining = axum::serve(Handoff(rx), app.into_make_service())
                            .with_graceful_shutdown(async move {
                                let _ = stop.wait_for(|s| *s).await;
                            });
                        tokio::select! {
                            served = draining => served,
                            () = async {
                                let _ = cut.wait_for(|s| *s).await;
                                tokio::time::sleep(grace).await;
                            } => {
                                tracing::warn!(grace_s = grace.as_secs_f64(), "requests still running at the end of the shutdown grace; cutting them");
                                Ok(())
                            }
                        }
                    })
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

/// The connections handed to one serving thread, as axum's listener.
struct Handoff(mpsc::UnboundedReceiver<Handed>);

impl axum::serve::Listener for Handoff {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Some((stream, peer)) = self.0.recv().await else {
                // Accepting stopped: the graceful shutdown ends this server.
                return std::future::pending().await;
            };
            // Registers the socket with this thread's runtime.
            if let Ok(stream) = tokio::net::TcpStream::from_std(stream) {
                return (stream, peer);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Err(std::io::Error::other(
            "handed-off connections have no one listener",
        ))
    }
}

/// One serving thread per core the process may use.
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let serving =
            std::thread::spawn(move || serve(listener, 2, app, stopped, Duration::from_secs(5)));
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
        stop.send(true).unwrap();
        serving.join().unwrap().unwrap();
    }
}
