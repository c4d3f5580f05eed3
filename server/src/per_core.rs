//! Serving on one single-threaded runtime per core, each accepting on its own socket bound
//! to the same address. A connection, the handlers it runs and the tasks they spawn stay on the
//! thread that accepted it: no work stealing and no cross-thread wake-ups on the hot path,
//! which on a small machine cost more than a proxied request itself.

use axum::Router;
use std::net::SocketAddr;
use tokio::sync::watch;

/// Binds `threads` listening sockets to `addr` with SO_REUSEPORT, so the kernel spreads
/// new connections evenly over the serving threads (one shared socket would let whichever
/// thread wakes first take them all). Fails like a plain bind when another process holds the
/// address, even one that also set SO_REUSEPORT; port 0 picks one port for all of them.
/// Call it inside a tokio runtime.
pub fn bind(addr: SocketAddr, threads: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    if addr.port() != 0 {
        // A plain bind is refused by any listener on the address, ours to share or not.
        drop(std::net::TcpListener::bind(addr)?);
    }
    let mut listeners: Vec<std::net::TcpListener> = Vec::new();
    for _ in 0..threads.max(1) {
        let at = match listeners.first() {
            Some(first) => first.local_addr()?,
            None => addr,
        };
        let socket = match at {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.set_nodelay(true)?;
        socket.bind(at)?;
        listeners.push(socket.listen(1024)?.into_std()?);
    }
    Ok(listeners)
}

/// Serves `app` on one single-threaded runtime per listener until `stop` turns true, then
/// lets each finish its in-flight requests. Blocks the calling thread (use `spawn_blocking`).
pub fn serve(
    listeners: Vec<std::net::TcpListener>,
    app: Router,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut handles = Vec::new();
    for (n, listener) in listeners.into_iter().enumerate() {
        listener.set_nonblocking(true)?;
        let app = app.clone();
        let mut stop = stop.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        handles.push(
            std::thread::Builder::new()
                .name(format!("serve-{n}"))
                .spawn(move || {
                    runtime.block_on(async move {
                        let listener = tokio::net::TcpListener::from_std(listener)?;
                        axum::serve(
                            listener,
                            app.into_make_service_with_connect_info::<SocketAddr>(),
                        )
                        .with_graceful_shutdown(async move {
                            let _ = stop.wait_for(|s| *s).await;
                        })
                        .await
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

/// One serving thread per core the process may use.
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_socket_shares_one_port_and_a_taken_port_is_refused() {
        let listeners = bind("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        let port = listeners[0].local_addr().unwrap().port();
        assert!(listeners
            .iter()
            .all(|l| l.local_addr().unwrap().port() == port));
        let taken = listeners[0].local_addr().unwrap();
        let err = bind(taken, 2).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    }
}
